"""`TaskSignature.encode` binds the usual signatures without `inspect.Signature.bind`: the
fast path must give exactly what `bind` gives for a valid call (same payload, same order)
and leave every other call to `bind`, so the error is the same one."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from backburner import InvalidArgumentsError, JobContext
from backburner.signature import TaskSignature

KINDS = ("positional_only", "either", "keyword_only")


def make_function(spec: list[tuple[str, bool]], context_at: int | None) -> Any:
    """A function whose parameters are `spec` (kind, has a default) named p0, p1...,
    ordered as Python requires, with a `JobContext` parameter at `context_at`."""
    order = {kind: i for i, kind in enumerate(KINDS)}
    ordered = sorted(spec, key=lambda item: order[item[0]])
    parts: list[str] = []
    defaulted = False
    slash_done = False
    star_done = False
    for index, (kind, has_default) in enumerate(ordered):
        if kind != "positional_only" and not slash_done:
            if index > 0:
                parts.append("/")
            slash_done = True
        if kind == "keyword_only" and not star_done:
            parts.append("*")
            star_done = True
        # Once a positional parameter has a default, the following positional ones need one.
        if kind != "keyword_only":
            has_default = has_default or defaulted
            defaulted = has_default
        parts.append(f"p{index}: int" + (f" = {100 + index}" if has_default else ""))
    if ordered and not slash_done:
        parts.append("/")
    if context_at is not None:
        ctx = "ctx: JobContext"
        # Keep it where it cannot disturb the kinds: first, or among the keyword-only.
        if context_at == 0 or "*" in parts:
            parts.insert(0 if context_at == 0 else len(parts), ctx)
    source = f"def f({', '.join(parts)}) -> None: ...\n"
    namespace: dict[str, Any] = {"JobContext": JobContext}
    exec(source, namespace)
    return namespace["f"]


def bind_only(signature: TaskSignature) -> TaskSignature:
    """The same signature with the fast path off: every call goes through `bind`."""
    slow = copy.copy(signature)
    slow._binder = None
    return slow


def outcome(signature: TaskSignature, args: tuple[Any, ...], kwargs: dict[Any, Any],
            leave_first: bool) -> Any:
    try:
        return ("ok", signature.encode(args, kwargs, leave_first=leave_first))
    except InvalidArgumentsError as exc:
        return ("error", str(exc), exc.argument, exc.reason)


specs = st.lists(
    st.tuples(st.sampled_from(KINDS), st.booleans()), min_size=0, max_size=6
)
values = st.one_of(st.integers(-5, 5), st.text(max_size=2))
keywords = st.dictionaries(
    st.one_of(st.sampled_from([f"p{i}" for i in range(8)] + ["ctx", "other"]), st.just(1)),
    values, max_size=5,
)


@settings(max_examples=600, deadline=None)
@given(
    spec=specs,
    context_at=st.one_of(st.none(), st.just(0), st.just(99)),
    args=st.lists(values, max_size=7).map(tuple),
    kwargs=keywords,
    leave_first=st.booleans(),
)
def test_fast_path_matches_bind(
    spec: list[tuple[str, bool]], context_at: int | None, args: tuple[Any, ...],
    kwargs: dict[Any, Any], leave_first: bool,
) -> None:
    signature = TaskSignature(make_function(spec, context_at), "t")
    assert signature._binder is not None
    fast = outcome(signature, args, kwargs, leave_first)
    event(fast[0])
    slow = outcome(bind_only(signature), args, kwargs, leave_first)
    assert fast == slow
    if fast[0] == "ok":
        # Same order of keys too: the stored payload is the same text.
        assert list(fast[1][1]) == list(slow[1][1])


def test_valid_calls_take_the_fast_path_and_irregular_ones_fall_back() -> None:
    def f(a: int, /, b: int, c: int = 3, *, d: int, e: int = 5) -> None: ...

    binder = TaskSignature(f, "t")._binder
    assert binder is not None
    assert binder.bind((1, 2), {"d": 4}) is not None
    assert binder.bind((1,), {"b": 2, "d": 4, "e": 6}) is not None
    assert binder.bind((1, 2, 3, 4), {"d": 4}) is None  # too many positional
    assert binder.bind((1, 2), {}) is None  # d missing
    assert binder.bind((1, 2), {"d": 4, "b": 2}) is None  # b twice
    assert binder.bind((1, 2), {"d": 4, "a": 1}) is None  # a is positional only
    assert binder.bind((1, 2), {"d": 4, "z": 1}) is None  # unknown


def test_defaults_are_not_stored_and_keywords_keep_parameter_order() -> None:
    def f(a: int, b: int = 2, *, c: int = 3, d: int) -> None: ...

    s = TaskSignature(f, "t")
    assert s.encode((1,), {"d": 4}) == ([], {"a": 1, "d": 4})
    assert list(s.encode((), {"d": 4, "c": 3, "a": 1})[1]) == ["a", "c", "d"]


def test_irregular_calls_raise_binds_errors() -> None:
    def f(a: int, /, b: int, *, c: int = 3) -> None: ...

    s = TaskSignature(f, "t")
    with pytest.raises(InvalidArgumentsError, match="too many positional arguments"):
        s.encode((1, 2, 3), {})
    with pytest.raises(InvalidArgumentsError, match="missing a required argument: 'b'") as info:
        s.encode((1,), {})
    assert info.value.argument == "b"
    with pytest.raises(InvalidArgumentsError, match="multiple values for argument 'b'"):
        s.encode((1, 2), {"b": 2})
    with pytest.raises(InvalidArgumentsError, match="unexpected keyword argument 'z'"):
        s.encode((1, 2), {"z": 2})
    with pytest.raises(InvalidArgumentsError, match="'a'"):
        s.encode((), {"a": 1, "b": 2})


def test_leave_first_skips_the_piped_parameter() -> None:
    def step(previous: int, factor: int = 2, *, label: str) -> None: ...

    s = TaskSignature(step, "t")
    assert s.encode((3,), {"label": "x"}, leave_first=True) == ([], {"factor": 3, "label": "x"})
    assert s.encode((), {"label": "x"}, leave_first=True) == ([], {"label": "x"})
    with pytest.raises(InvalidArgumentsError, match="multiple values for argument 'previous'"):
        s.encode((), {"previous": 1, "label": "x"}, leave_first=True)


def test_variadic_signatures_always_bind() -> None:
    def f(a: int, *rest: int) -> None: ...
    def g(a: int, **extra: int) -> None: ...

    assert TaskSignature(f, "t")._binder is None
    assert TaskSignature(g, "t")._binder is None


@settings(max_examples=300, deadline=None)
@given(spec=specs, context_at=st.one_of(st.none(), st.just(0), st.just(99)), data=st.data())
def test_fast_path_matches_bind_for_valid_calls(
    spec: list[tuple[str, bool]], context_at: int | None, data: st.DataObject
) -> None:
    signature = TaskSignature(make_function(spec, context_at), "t")
    params = list(signature._signature.parameters.values())
    positional = [p for p in params if p.kind is not p.KEYWORD_ONLY]
    needs_position = sum(
        1 for p in positional if p.kind is p.POSITIONAL_ONLY and p.default is p.empty
    )
    given = data.draw(st.integers(needs_position, len(positional)), label="positional")
    args = tuple(range(given))
    kwargs: dict[str, Any] = {}
    for p in params[given:]:
        if p.kind is p.POSITIONAL_ONLY:
            continue  # has a default (else it is within `given`)
        if p.default is p.empty or data.draw(st.booleans(), label=p.name):
            kwargs[p.name] = len(kwargs) + 50
    names = data.draw(st.permutations(list(kwargs)), label="keyword order")
    kwargs = {name: kwargs[name] for name in names}
    assert signature._binder is not None and signature._binder.bind(args, kwargs) is not None
    for leave_first in (False, True):
        fast = outcome(signature, args, kwargs, leave_first)
        slow = outcome(bind_only(signature), args, kwargs, leave_first)
        assert fast == slow
        if fast[0] == "ok":
            assert list(fast[1][1]) == list(slow[1][1])


def decoded(signature: TaskSignature, args: Any, kwargs: Any) -> Any:
    try:
        return ("ok", signature.decode(args, kwargs))
    except InvalidArgumentsError as exc:
        return ("error", str(exc), exc.argument, exc.reason)


@settings(max_examples=600, deadline=None)
@given(
    spec=specs,
    context_at=st.one_of(st.none(), st.just(0), st.just(99)),
    args=st.lists(values, max_size=7),
    kwargs=keywords,
)
def test_decode_fast_path_matches_bind(
    spec: list[tuple[str, bool]], context_at: int | None, args: list[Any],
    kwargs: dict[Any, Any],
) -> None:
    """The worker's side: stored arguments (anything a row may hold, R20) decode to the
    same call, or fail with the same error, with and without the fast binder."""
    signature = TaskSignature(make_function(spec, context_at), "t")
    fast = decoded(signature, args, kwargs)
    event(fast[0])
    slow = decoded(bind_only(signature), args, kwargs)
    assert fast == slow
    if fast[0] == "ok":
        assert list(fast[1][1]) == list(slow[1][1])
