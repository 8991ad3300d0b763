"""Checking task arguments against the function's signature, and turning them into JSON.

Enqueue validates each argument with pydantic against its annotation and stores the JSON form
(so a `datetime` or a pydantic model travels as JSON); the worker validates the JSON back
into those types before the call. A parameter annotated `JobContext` is injected by the
worker and is never part of the payload.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError

from backburner.context import JobContext
from backburner.errors import InvalidArgumentsError

_ANY_ADAPTER: TypeAdapter[Any] = TypeAdapter(Any)


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
class _Parameter:
    name: str
    kind: inspect._ParameterKind
    adapter: TypeAdapter[Any]
    json_native: type | None
    """When the annotation is str/int/float/bool, values of exactly that type skip pydantic."""


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
        params: dict[str, _Parameter] = {}
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
            params[p.name] = _Parameter(p.name, p.kind, _adapter(element), native)
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

    # -- enqueue side ----------------------------------------------------------------------
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

    def _first_positional(self) -> str:
        for p in self._signature.parameters.values():
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                return p.name
            break
        raise InvalidArgumentsError(
            self.task_name, None,
            "a piped task needs a first positional parameter to receive the result",
        )

    def _to_json(self, param: _Parameter, label: str, value: Any) -> Any:
        if param.json_native is not None and type(value) is param.json_native:
            return value
        try:
            validated = param.adapter.validate_python(value)
            return param.adapter.dump_python(validated, mode="json")
        except ValidationError as exc:
            raise InvalidArgumentsError(self.task_name, label, _first_error(exc)) from None
        except (PydanticSerializationError, TypeError, ValueError) as exc:
            raise InvalidArgumentsError(
                self.task_name, label, f"not JSON-serialisable ({type(value).__name__}): {exc}"
            ) from None

    # -- worker side -----------------------------------------------------------------------
    def decode(self, args: Any, kwargs: Any) -> tuple[list[Any], dict[str, Any]]:
        """Stored JSON back to the annotated types. Raises `InvalidArgumentsError`."""
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise InvalidArgumentsError(
                self.task_name, None, "stored arguments must be a JSON array and a JSON object"
            )
        if not args and not kwargs and not self._required:
            return [], {}  # nothing to bind (common for notification-style tasks)
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

    def _from_json(self, param: _Parameter, label: str, value: Any) -> Any:
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


def _adapter(annotation: Any) -> TypeAdapter[Any]:
    if annotation is Any or annotation is inspect.Parameter.empty:
        return _ANY_ADAPTER
    return TypeAdapter(annotation)


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
