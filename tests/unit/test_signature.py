from __future__ import annotations

from typing import Annotated

import pytest

from backburner import InvalidArgumentsError, JobContext
from backburner.signature import TaskSignature


def sig(func: object) -> TaskSignature:
    return TaskSignature(func, "t")  # type: ignore[arg-type]


def test_context_parameter_is_left_out_wherever_it_stands() -> None:
    def f(ctx: JobContext, a: int) -> None: ...
    def g(a: int, ctx: Annotated[JobContext, "injected"], b: str = "x") -> None: ...

    assert sig(f).context_parameter == "ctx"
    assert sig(f).encode((1,), {}) == ([], {"a": 1})
    assert sig(g).encode((1,), {}) == ([], {"a": 1})  # defaults are not stored
    def h(c1: JobContext, c2: JobContext) -> None: ...

    with pytest.raises(TypeError, match="more than one"):
        sig(h)


def test_positional_only_and_variadic_parameters_keep_their_shape() -> None:
    def f(a: int, /, b: int, *rest: int, **extra: str) -> None: ...

    s = sig(f)
    args, kwargs = s.encode((1, 2, 3, 4), {"k": "v"})
    assert (args, kwargs) == ([1, 2, 3, 4], {"k": "v"})
    assert s.decode(args, kwargs) == ([1, 2, 3, 4], {"k": "v"})
    with pytest.raises(InvalidArgumentsError, match=r"rest\[1\]"):
        s.encode((1, 2, 3, "x"), {})


def test_equal_calls_store_equal_payloads() -> None:
    def f(a: int, b: int = 2) -> None: ...

    s = sig(f)
    assert s.encode((1,), {"b": 2}) == s.encode((), {"a": 1, "b": 2}) == ([], {"a": 1, "b": 2})


def test_decode_refuses_payloads_of_the_wrong_shape() -> None:
    def f(a: int) -> None: ...

    s = sig(f)
    with pytest.raises(InvalidArgumentsError, match="JSON array"):
        s.decode({"a": 1}, {})
    with pytest.raises(InvalidArgumentsError, match="'a'"):
        s.decode([], {"a": "nope"})
    with pytest.raises(InvalidArgumentsError):
        s.decode([], {"zzz": 1})


def test_json_schema_describes_keyword_arguments() -> None:
    def f(email: str, count: int = 1, ctx: JobContext | None = None) -> None: ...

    schema = sig(f).json_schema()
    assert schema["required"] == ["email"]
    assert schema["properties"]["email"] == {"type": "string"}
