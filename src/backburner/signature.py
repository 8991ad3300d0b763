"""Checking task arguments against the function's signature, and turning them into JSON.

Enqueue validates each argument with pydantic against its annotation and stores the JSON form
(so a `datetime` or a pydantic model travels as JSON); the worker validates the JSON back
into those types before the call. A parameter annotated `JobContext` is injected by the
worker and is never part of the payload.

JSON in, the same value out: where nothing converts a value back (a parameter typed `Any`,
`dict`, `list[Any]`...), it must already be plain JSON, so a task never runs with something
other than what it was given. A set, a tuple, bytes, a float that is not finite, a non-string
dict key or any other object there is refused at enqueue (`InvalidArgumentsError` naming the
argument and the path inside it), and so is, anywhere, an integer outside the signed 64-bit
range (orjson cannot write it, and SQLite, PostgreSQL's bigint and most JSON readers would
not keep it exact) or nesting deeper than `MAX_DEPTH`.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError

from backburner.context import JobContext
from backburner.errors import InvalidArgumentsError

_ANY_ADAPTER: TypeAdapter[Any] = TypeAdapter(Any)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_DEPTH = 200
"""Nesting allowed in one argument: orjson writes at most 254 levels, and a stored payload
wraps arguments in a few more (the argument list, a chain's steps)."""


def _is_context(annotation: Any) -> bool:
    """`JobContext`, `Annotated[JobContext, ...]` or `JobContext | None`."""
    if annotation is JobContext:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_context(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return len(members) == 1 and _is_context(members[0])
    return False


@dataclass(frozen=True, slots=True)
class Parameter:
    """One parameter of a task as its arguments are checked and converted."""

    name: str
    kind: inspect._ParameterKind
    adapter: TypeAdapter[Any]
    json_native: type | None
    """When the annotation is str/int/float/bool, values of exactly that type skip pydantic."""
    plain: bool
    """Annotated `Any` (or not at all): nothing converts the value, it must be JSON as it is."""
    json_shaped: bool
    """Built only of JSON types (`dict[str, Any]`, `list[int] | None`...): what pydantic
    validated is already the JSON form, so it is checked as it is instead of dumped."""


_NATIVE = (str, int, float, bool)


class TaskSignature:
    def __init__(self, func: Callable[..., Any], task_name: str) -> None:
        self.task_name = task_name
        try:
            hints = typing.get_type_hints(func, include_extras=True)
        except Exception as exc:  # unresolvable forward references
            raise TypeError(f"cannot resolve the annotations of task {task_name}: {exc}") from exc
        full = inspect.signature(func)
        self.context_parameter: str | None = None
        kept: list[inspect.Parameter] = []
        params: dict[str, Parameter] = {}
        for p in full.parameters.values():
            annotation = hints.get(p.name, Any)
            if _is_context(annotation):
                if self.context_parameter is not None:
                    raise TypeError(f"task {task_name} declares more than one JobContext")
                self.context_parameter = p.name
                continue
            kept.append(p)
            element = annotation
            if p.kind is p.VAR_POSITIONAL or p.kind is p.VAR_KEYWORD:
                element = annotation  # annotation of *args / **kwargs is per element
            native = element if element in _NATIVE else None
            params[p.name] = Parameter(
                p.name, p.kind, _adapter(element), native,
                plain=_is_any(element), json_shaped=_json_shaped(element),
            )
        self._signature = full.replace(parameters=kept)
        self._params = params
        self._required = any(
            p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            for p in kept
        )
        # With *args present, parameters before it can only be given by position.
        has_var_positional = any(p.kind is p.VAR_POSITIONAL for p in kept)
        self._positional = {
            p.name for p in kept
            if p.kind is p.POSITIONAL_ONLY
            or (has_var_positional and p.kind is p.POSITIONAL_OR_KEYWORD)
        }
        returns = hints.get("return", Any)
        self.returns: TypeAdapter[Any] = _adapter(returns)
        self._binder = _FastBinder.of(kept, params)

    # -- enqueue side ----------------------------------------------------------------------

    @property
    def parameters(self) -> Mapping[str, Parameter]:
        """The task's own parameters (the job context left out), by name."""
        return self._params
    def encode(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], *, leave_first: bool = False
    ) -> tuple[list[Any], dict[str, Any]]:
        """Validate and convert to JSON-ready values: positional-only and *args stay
        positional; everything else is stored by name, so equal calls store equal payloads.

        `leave_first`: the arguments of every parameter but the first, which is filled in
        later by position (`task.pipe`: the result of what the job follows)."""
        first: str | None = None
        if leave_first:
            first = self._first_positional()
            args = (None, *args)
        binder = self._binder
        if binder is not None:
            bound_fast = binder.bind(args, kwargs)
            if bound_fast is not None:
                return self._encode_bound(bound_fast, first)
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidArgumentsError(self.task_name, _argument_in(str(exc)), str(exc)) from None
        out_args: list[Any] = []
        out_kwargs: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            if name == first:
                continue
            param = self._params[name]
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                out_args.extend(
                    self._to_json(param, f"{name}[{i}]", v) for i, v in enumerate(value)
                )
            elif param.kind is inspect.Parameter.VAR_KEYWORD:
                for key, v in value.items():
                    out_kwargs[key] = self._to_json(param, key, v)
            elif name in self._positional:
                out_args.append(self._to_json(param, name, value))
            else:
                out_kwargs[name] = self._to_json(param, name, value)
        return out_args, out_kwargs

    def _encode_bound(
        self, bound: Iterable[tuple[Parameter, Any]], first: str | None
    ) -> tuple[list[Any], dict[str, Any]]:
        """`encode`'s conversion for what `_FastBinder` bound: no *args or **kwargs, so a
        positional-only parameter is stored by position and every other one by name."""
        out_args: list[Any] = []
        out_kwargs: dict[str, Any] = {}
        positional = self._positional
        to_json = self._to_json
        for param, value in bound:
            name = param.name
            if name == first:
                continue
            if name in positional:
                out_args.append(to_json(param, name, value))
            else:
                out_kwargs[name] = to_json(param, name, value)
        return out_args, out_kwargs

    def _first_positional(self) -> str:
        for p in self._signature.parameters.values():
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                return p.name
            break
        raise InvalidArgumentsError(
            self.task_name, None,
            "a piped task needs a first positional parameter to receive the result",
        )

    def _to_json(self, param: Parameter, label: str, value: Any) -> Any:
        kind = type(value)
        if kind is param.json_native:
            if kind is int and not INT64_MIN <= value <= INT64_MAX:
                raise InvalidArgumentsError(self.task_name, label, _int_reason(value))
            if kind is float and not math.isfinite(value):
                raise InvalidArgumentsError(self.task_name, label, _float_reason(value))
            return value
        try:
            if param.plain:
                out = value  # pydantic's Any would convert what JSON cannot hold: check instead
            else:
                validated = param.adapter.validate_python(value)
                out = (
                    validated if param.json_shaped
                    else param.adapter.dump_python(validated, mode="json")
                )
        except ValidationError as exc:
            raise InvalidArgumentsError(self.task_name, label, _first_error(exc)) from None
        except (PydanticSerializationError, TypeError, ValueError) as exc:
            raise InvalidArgumentsError(
                self.task_name, label, f"not JSON-serialisable ({type(value).__name__}): {exc}"
            ) from None
        problem = json_problem(out)
        if problem is not None:
            raise InvalidArgumentsError(self.task_name, label, problem.describe(label))
        return out

    # -- worker side -----------------------------------------------------------------------
    def decode(self, args: Any, kwargs: Any) -> tuple[list[Any], dict[str, Any]]:
        """Stored JSON back to the annotated types. Raises `InvalidArgumentsError`."""
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise InvalidArgumentsError(
                self.task_name, None, "stored arguments must be a JSON array and a JSON object"
            )
        if not args and not kwargs and not self._required:
            return [], {}  # nothing to bind (common for notification-style tasks)
        binder = self._binder
        if binder is not None:
            bound_fast = binder.bind(args, kwargs)
            if bound_fast is not None:
                # As below, for the shapes the fast binder takes (no *args, no **kwargs).
                positional = self._positional
                from_json = self._from_json
                out_args: list[Any] = []
                out_kwargs: dict[str, Any] = {}
                for param, value in bound_fast:
                    if param.name in positional:
                        out_args.append(from_json(param, param.name, value))
                    else:
                        out_kwargs[param.name] = from_json(param, param.name, value)
                return out_args, out_kwargs
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidArgumentsError(self.task_name, _argument_in(str(exc)), str(exc)) from None
        call_args: list[Any] = []
        call_kwargs: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            param = self._params[name]
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                call_args.extend(self._from_json(param, name, v) for v in value)
            elif param.kind is inspect.Parameter.VAR_KEYWORD:
                for key, v in value.items():
                    call_kwargs[key] = self._from_json(param, key, v)
            elif name in self._positional:
                call_args.append(self._from_json(param, name, value))
            else:
                call_kwargs[name] = self._from_json(param, name, value)
        return call_args, call_kwargs

    def _from_json(self, param: Parameter, label: str, value: Any) -> Any:
        if param.json_native is not None and type(value) is param.json_native:
            return value
        try:
            return param.adapter.validate_python(value)
        except ValidationError as exc:
            raise InvalidArgumentsError(self.task_name, label, _first_error(exc)) from None

    def encode_result(self, value: Any) -> Any:
        """The return value, JSON-ready. Raises TypeError when it cannot be."""
        try:
            return self.returns.dump_python(value, mode="json")
        except (PydanticSerializationError, ValueError) as exc:
            raise TypeError(
                f"the result of {self.task_name} is not JSON-serialisable: {exc}"
            ) from None

    def decode_result(self, value: Any) -> Any:
        try:
            return self.returns.validate_python(value)
        except ValidationError:
            return value

    def json_schema(self) -> dict[str, Any]:
        """JSON schema of the keyword form of the arguments (for forms and OpenAPI)."""
        properties: dict[str, Any] = {}
        required: list[str] = []
        for name, param in self._params.items():
            if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                continue
            properties[name] = param.adapter.json_schema()
            if self._signature.parameters[name].default is inspect.Parameter.empty:
                required.append(name)
        return {"type": "object", "properties": properties, "required": required}


class _FastBinder:
    """`Signature.bind` for the usual shapes (parameters by position or keyword and
    keyword-only ones, positional-only ones too; no *args, no **kwargs) without building a
    `BoundArguments`: a valid call's arguments, in parameter order as `bind` orders them.
    Any call it is not sure of (too many positional arguments, an unknown or repeated
    keyword, a missing required argument) answers None, and `Signature.bind` then decides,
    raising its own error: a fast path only for calls that bind."""

    __slots__ = ("_by_position", "_keyword_slot", "_max_positional", "_required", "_rest")

    def __init__(self, kept: Sequence[inspect.Parameter], params: Mapping[str, Parameter]) -> None:
        positional = [p for p in kept if p.kind is not p.KEYWORD_ONLY]
        self._by_position = tuple(params[p.name] for p in positional)
        """Parameters a positional argument fills, in order."""
        self._max_positional = len(positional)
        self._rest = tuple((p.name, params[p.name]) for p in kept)
        """Every parameter in order; `_rest[n:]` are those after n positional arguments
        (keyword-only parameters come after every positional one)."""
        self._keyword_slot = {
            p.name: index for index, p in enumerate(kept) if p.kind is not p.POSITIONAL_ONLY
        }
        """Names a keyword may give, to the parameter's index: a keyword for one of the
        first n parameters repeats a positional argument."""
        self._required = tuple(
            (p.name, index) for index, p in enumerate(kept) if p.default is p.empty
        )

    @classmethod
    def of(
        cls, kept: Sequence[inspect.Parameter], params: Mapping[str, Parameter]
    ) -> _FastBinder | None:
        if any(p.kind is p.VAR_POSITIONAL or p.kind is p.VAR_KEYWORD for p in kept):
            return None
        return cls(kept, params)

    def bind(
        self, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> Iterable[tuple[Parameter, Any]] | None:
        given = len(args)
        if given > self._max_positional:
            return None
        if kwargs:
            slots = self._keyword_slot
            for key in kwargs:
                slot = slots.get(key)
                if slot is None or slot < given:
                    return None
        for name, index in self._required:
            if index >= given and name not in kwargs:
                return None
        if not kwargs:
            return zip(self._by_position, args, strict=False)
        bound = list(zip(self._by_position, args, strict=False))
        for name, param in self._rest[given:]:
            if name in kwargs:
                bound.append((param, kwargs[name]))
        return bound


def _adapter(annotation: Any) -> TypeAdapter[Any]:
    if _is_any(annotation):
        return _ANY_ADAPTER
    return TypeAdapter(annotation)


def _is_any(annotation: Any) -> bool:
    return annotation is Any or annotation is object or annotation is inspect.Parameter.empty


_SCALARS = (str, int, float, bool, type(None), None)


def _json_shaped(annotation: Any) -> bool:
    """Whether every value pydantic validates for `annotation` is its own JSON form (or would
    be, were it plain JSON: `json_problem` says): Any, str/int/float/bool/None, dict[str, X],
    list[X], unions and `Annotated` of those."""
    if _is_any(annotation) or annotation in _SCALARS or annotation in (dict, list):
        return True
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _json_shaped(args[0])
    if origin in (typing.Union, types.UnionType):
        return all(_json_shaped(a) for a in args)
    if origin is dict:
        return not args or ((args[0] is str or _is_any(args[0])) and _json_shaped(args[1]))
    if origin is list:
        return not args or _json_shaped(args[0])
    return False  # models, datetime, tuples, sets...: dumped by pydantic, then checked


@dataclass(slots=True)
class JsonProblem:
    """Why a value is not plain JSON, and where: `path` holds the keys and indexes from the
    argument down to it, innermost first (filled in on the way back up, so a value without
    a problem costs no path)."""

    reason: str
    path: list[Any]

    def describe(self, label: str) -> str:
        if not self.path:
            return self.reason
        inner = "".join(f"[{part!r}]" for part in reversed(self.path))
        return f"{self.reason} (at {label}{inner})"


def json_problem(value: Any, depth: int = 0) -> JsonProblem | None:
    """None when `value` comes back from JSON (orjson, every store) as it is; otherwise why
    not. Subclasses of str/int/float/dict/list (enums, OrderedDict) come back equal."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return None
    if kind is int or (isinstance(value, int) and not isinstance(value, bool)):
        if INT64_MIN <= value <= INT64_MAX:
            return None
        return JsonProblem(_int_reason(value), [])
    if kind is float or isinstance(value, float):
        return None if math.isfinite(value) else JsonProblem(_float_reason(value), [])
    if isinstance(value, str):
        return None
    if kind is list or kind is dict or isinstance(value, (dict, list)):
        if depth >= MAX_DEPTH:
            return JsonProblem(f"nested deeper than {MAX_DEPTH} levels", [])
        # Scalars are most of a payload: checked here, without a call each.
        if isinstance(value, list):
            for index, item in enumerate(value):
                item_kind = type(item)
                if item_kind is str or item_kind is bool or item is None or (
                    item_kind is int and INT64_MIN <= item <= INT64_MAX
                ) or (item_kind is float and item - item == 0.0):  # finite
                    continue
                problem = json_problem(item, depth + 1)
                if problem is not None:
                    problem.path.append(index)
                    return problem
            return None
        for key, item in value.items():
            if not isinstance(key, str):
                return JsonProblem(_key_reason(key), [])
            item_kind = type(item)
            if item_kind is str or item_kind is bool or item is None or (
                item_kind is int and INT64_MIN <= item <= INT64_MAX
            ) or (item_kind is float and item - item == 0.0):
                continue
            problem = json_problem(item, depth + 1)
            if problem is not None:
                problem.path.append(key)
                return problem
        return None
    return JsonProblem(_other_reason(value), [])


def _key_reason(key: Any) -> str:
    return (
        f"dict key {key!r} ({type(key).__name__}) is not a string: JSON object keys are "
        f"strings, so it would come back as {str(key)!r}"
    )


def _int_reason(value: int) -> str:
    return (
        f"integer {value} is outside the signed 64-bit range "
        f"[{INT64_MIN}, {INT64_MAX}] that every store keeps exactly; pass it as a string"
    )


def _float_reason(value: float) -> str:
    return f"{value} is not a finite number, which JSON cannot hold (it would come back null)"


def _other_reason(value: Any) -> str:
    if isinstance(value, (set, frozenset)):
        return (
            f"a {type(value).__name__} is not JSON (it would come back as a list): pass a "
            "list, or annotate the parameter as set[...]"
        )
    if isinstance(value, tuple):
        return (
            "a tuple is not JSON (it would come back as a list): pass a list, or annotate "
            "the parameter as tuple[...]"
        )
    if isinstance(value, (bytes, bytearray, memoryview)):
        return (
            f"{type(value).__name__} is not JSON: decode it to a str (or base64), or annotate "
            "the parameter as bytes"
        )
    return (
        f"a {type(value).__name__} object is not JSON: pass plain JSON values (str, int, "
        "float, bool, None, list, dict with str keys), or annotate the parameter with its "
        "type so pydantic converts it (datetime, UUID, models...)"
    )


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    if not errors:
        return str(exc)
    first = errors[0]
    location = ".".join(str(part) for part in first.get("loc", ()))
    where = f" at {location}" if location else ""
    return f"{first.get('msg', 'invalid value')}{where} (got {first.get('input')!r:.80})"


def _argument_in(message: str) -> str | None:
    # inspect's messages quote the parameter name: "missing a required argument: 'width'"
    if "'" in message:
        return message.split("'")[1]
    return None
