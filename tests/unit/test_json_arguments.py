"""JSON in, the same value out: an argument that would not come back from the store as it was
given is refused at enqueue, by name and path, on every way in (enqueue, enqueue_many,
options(...).enqueue, chain/group calls and pipes, DurableBackgroundTasks.add_task); typed
parameters keep pydantic's conversion of their own types."""

from __future__ import annotations

import enum
import io
import math
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from backburner import Backburner, InvalidArgumentsError, JobContext
from backburner.fastapi.background import BackgroundJobs
from backburner.signature import INT64_MAX, INT64_MIN, MAX_DEPTH, TaskSignature
from backburner.testing import drain

BIG = 123456789012345678901234567890


def sig(func: object) -> TaskSignature:
    return TaskSignature(func, "t")  # type: ignore[arg-type]


def round_trip(s: TaskSignature, *args: Any, **kwargs: Any) -> tuple[list[Any], dict[str, Any]]:
    """What the worker calls the task with, after the payload went through the store's JSON."""
    import orjson

    stored_args, stored_kwargs = s.encode(args, kwargs)
    return s.decode(orjson.loads(orjson.dumps(stored_args)),
                    orjson.loads(orjson.dumps(stored_kwargs)))


def refused(s: TaskSignature, *args: Any, **kwargs: Any) -> InvalidArgumentsError:
    with pytest.raises(InvalidArgumentsError) as info:
        s.encode(args, kwargs)
    return info.value


def loose(payload: Any) -> None: ...
def unannotated(payload) -> None: ...  # type: ignore[no-untyped-def]
def with_dict(extra: dict) -> None: ...  # type: ignore[type-arg]
def with_dict_any(extra: dict[str, Any]) -> None: ...
def with_list_any(items: list[Any] | None = None) -> None: ...
def with_varargs(*rest: Any, **more: Any) -> None: ...


@pytest.mark.parametrize(("value", "reason"), [
    ({1, 2}, "a set is not JSON"),
    (frozenset({1}), "a frozenset is not JSON"),
    ((1, 2), "a tuple is not JSON"),
    (float("nan"), "not a finite number"),
    (float("inf"), "not a finite number"),
    (-math.inf, "not a finite number"),
    ({1: "a"}, "dict key 1 (int) is not a string"),
    (b"raw", "bytes is not JSON"),
    (datetime(2024, 1, 1, tzinfo=UTC), "a datetime object is not JSON"),
    (Decimal("1.5"), "a Decimal object is not JSON"),
    (object(), "a object object is not JSON"),
    (BIG, "outside the signed 64-bit range"),
    (INT64_MAX + 1, "outside the signed 64-bit range"),
    (INT64_MIN - 1, "outside the signed 64-bit range"),
])
@pytest.mark.parametrize("func", [loose, unannotated, with_dict_any, with_list_any])
def test_what_json_would_change_is_refused_by_name(
    func: Callable[..., None], value: Any, reason: str
) -> None:
    s = sig(func)
    (name,) = list(s._params)
    if func is with_dict_any:
        error, where = refused(s, {"k": value}), f"{name}['k']"
    elif func is with_list_any:
        error, where = refused(s, [0, value]), f"{name}[1]"
    else:
        error, where = refused(s, value), name
    assert error.argument == name
    assert reason in error.reason
    if where != name:
        assert f"(at {where})" in error.reason
    assert name in str(error) and reason in str(error)


def test_the_path_inside_the_argument_is_named() -> None:
    error = refused(sig(with_dict_any), {"a": [1, 2, {3, 4}]})
    assert error.argument == "extra"
    assert error.reason.endswith("(at extra['a'][2])")
    error = refused(sig(with_dict), {"ok": {"deeper": [{7: "x"}]}})
    assert "dict key 7 (int) is not a string" in error.reason
    assert error.reason.endswith("(at extra['ok']['deeper'][0])")
    error = refused(sig(with_varargs), 1, [float("nan")])
    assert error.argument == "rest[1]" and error.reason.endswith("(at rest[1][0])")
    error = refused(sig(with_varargs), k={"x": BIG})
    assert error.argument == "k" and error.reason.endswith("(at k['x'])")


def test_an_open_file_is_refused_not_read() -> None:
    handle = io.StringIO("line 1\nline 2\n")
    error = refused(sig(loose), {"file": handle})
    assert "a StringIO object is not JSON" in error.reason
    assert handle.tell() == 0  # nothing was read from it
    with open(__file__) as real:
        error = refused(sig(with_dict_any), {"file": real})
        assert "TextIOWrapper" in error.reason and real.tell() == 0


def test_plain_json_comes_back_unchanged() -> None:
    class Colour(enum.StrEnum):
        RED = "red"

    payload = {
        "s": "é\u2028", "i": INT64_MAX, "j": INT64_MIN, "f": 0.1, "neg": -0.0, "t": True,
        "n": None, "l": [1, [2, [3]]], "d": {"nested": {"empty": {}}}, "e": [],
        "enum": Colour.RED, "ordered": OrderedDict(b=1, a=2),
    }
    for func in (loose, unannotated, with_dict, with_dict_any):
        _, kwargs = round_trip(sig(func), payload)
        (value,) = list(kwargs.values())
        assert value == payload
    assert round_trip(sig(with_list_any), items=[1, "a", None]) == ([], {"items": [1, "a", None]})
    # list[Any] converts its own container (a tuple is a list to it), not what it holds.
    assert round_trip(sig(with_list_any), items=(1, 2)) == ([], {"items": [1, 2]})
    nested: Any = "leaf"
    for _ in range(MAX_DEPTH):  # MAX_DEPTH lists, one in another
        nested = [nested]
    assert round_trip(sig(loose), nested) == ([], {"payload": nested})
    error = refused(sig(loose), [nested])
    assert f"nested deeper than {MAX_DEPTH} levels" in error.reason


class Order(BaseModel):
    id: uuid.UUID
    at: datetime
    amount: Decimal
    lines: list[str]


def test_typed_parameters_keep_their_conversion() -> None:
    def typed(order: Order, when: datetime, ident: uuid.UUID, tags: set[int],
              pair: tuple[int, str], by_number: dict[int, str], weight: float = 1.0) -> None: ...

    order = Order(id=uuid.uuid4(), at=datetime.now(UTC), amount=Decimal("9.99"), lines=["a"])
    when, ident = datetime(2024, 5, 1, 12, tzinfo=UTC), uuid.uuid4()
    _, kwargs = round_trip(sig(typed), order, when, ident, {3, 1}, (1, "x"), {7: "seven"})
    assert kwargs == {"order": order, "when": when, "ident": ident, "tags": {1, 3},
                      "pair": (1, "x"), "by_number": {7: "seven"}}
    stored = sig(typed).encode((order, when, ident, [1], [2, "y"], {1: "one"}), {})[1]
    assert stored["when"] == "2024-05-01T12:00:00Z" and stored["by_number"] == {"1": "one"}


class Reading(BaseModel):
    value: float
    counter: int


def test_typed_numbers_are_refused_outside_what_json_keeps() -> None:
    def numbers(count: int, ratio: float, when: datetime | None = None) -> None: ...

    s = sig(numbers)
    for count in (INT64_MAX + 1, INT64_MIN - 1, BIG, -BIG):
        error = refused(s, count, 0.5)
        assert error.argument == "count" and "outside the signed 64-bit range" in error.reason
    assert s.encode((INT64_MAX, 0.5), {}) == ([], {"count": INT64_MAX, "ratio": 0.5})
    assert s.encode((INT64_MIN, 1), {}) == ([], {"count": INT64_MIN, "ratio": 1.0})
    for ratio in (math.nan, math.inf):
        error = refused(s, 1, ratio)
        assert error.argument == "ratio" and "not a finite number" in error.reason

    def model(reading: Reading) -> None: ...

    error = refused(sig(model), Reading(value=math.nan, counter=1))
    assert error.argument == "reading"
    assert "not a finite number" in error.reason and "(at reading['value'])" in error.reason
    error = refused(sig(model), Reading(value=1.0, counter=BIG))
    assert "(at reading['counter'])" in error.reason


def test_typed_dicts_and_lists_of_json_types_are_checked_too() -> None:
    def counts(by_name: dict[str, int], ratios: list[float]) -> None: ...

    s = sig(counts)
    error = refused(s, {"a": 1, "b": BIG}, [])
    assert error.argument == "by_name" and error.reason.endswith("(at by_name['b'])")
    error = refused(s, {}, [1.0, math.nan])
    assert error.argument == "ratios" and error.reason.endswith("(at ratios[1])")
    assert round_trip(s, {"a": 1}, (0.5,)) == ([], {"by_name": {"a": 1}, "ratios": [0.5]})


# -- every way in goes through the same check ----------------------------------------------

@pytest.fixture
async def app() -> AsyncIterator[Backburner]:
    jobs = Backburner("memory://")
    async with jobs:
        yield jobs


BAD = {"a": [1, 2, {3}]}


async def test_every_way_to_enqueue_refuses_the_same_argument(app: Backburner) -> None:
    @app.task(name="take")
    async def take(extra: dict[str, Any], ctx: JobContext | None = None) -> int:
        return 1

    @app.task(name="follow")
    async def follow(previous: Any, extra: dict[str, Any] | None = None) -> None: ...

    ways: list[Callable[[], Awaitable[Any] | Any]] = [
        lambda: take.enqueue(BAD),
        lambda: take.enqueue(extra=BAD),
        lambda: take.enqueue_many([take.call(extra={"fine": 1}), take.call(BAD)]),
        lambda: take.enqueue_many([({"fine": 1},), {"extra": BAD}]),
        lambda: take.options(priority=3).enqueue(BAD),
        lambda: take.options(queue="other").enqueue_many([(BAD,)]),
        lambda: app.chain(take.call({"fine": 1}), take.call(BAD)),
        lambda: app.chain(take.call({"fine": 1}), follow.pipe(extra=BAD)),
        lambda: app.chain(take.call({"fine": 1}), take.options(priority=1).call(BAD)),
        lambda: app.group([take.call(BAD)]),
        lambda: app.group([take.call({"fine": 1})], then=follow.pipe(extra=BAD)),
        lambda: BackgroundJobs(app).add_task(take, BAD),
    ]
    async def attempt(way: Callable[[], Awaitable[Any] | Any]) -> None:
        result = way()
        if isinstance(result, Awaitable):
            await result

    for index, way in enumerate(ways):
        with pytest.raises(InvalidArgumentsError) as info:
            await attempt(way)
        assert info.value.argument == "extra", index
        assert info.value.reason.startswith("a set is not JSON"), index
        assert info.value.reason.endswith("(at extra['a'][2])"), index
    assert await app.count_jobs() == 0  # all or none: nothing of a refused batch is stored


async def test_a_plain_function_given_to_add_task_is_checked(app: Backburner) -> None:
    background = BackgroundJobs(app)
    with pytest.raises(InvalidArgumentsError) as info:
        background.add_task(plain_function, {"when": datetime.now(UTC)})
    assert info.value.argument == "payload" and "datetime" in info.value.reason
    background.add_task(plain_function, {"when": "2024-01-01"})
    (job,) = await background.store()
    assert (await app.get_job(job.id)).kwargs == {"payload": {"when": "2024-01-01"}}  # type: ignore[union-attr]


def plain_function(payload: Any) -> None:
    """Module level, as add_task asks of plain functions."""


async def test_what_is_stored_is_what_the_task_receives(app: Backburner) -> None:
    received: list[Any] = []

    @app.task(name="keep")
    async def keep(payload: Any, extra: dict[str, Any]) -> None:
        received.append((payload, extra))

    payload = {"big": INT64_MAX, "small": INT64_MIN, "f": 1e300, "list": [None, True, "x"]}
    job = await keep.enqueue(payload, {"k": [1.5]})
    await drain(app)
    record = await app.wait_for(job.id, timeout=10)
    assert record.state == "completed", record.errors
    assert received == [(payload, {"k": [1.5]})]

