"""The Lua scripts of the Redis backend (files in `lua/`), run by SHA.

Every state transition that touches more than one key is one script: Redis runs a script
without interleaving any other command, which is what makes a claim, an acknowledgement or a
rescue atomic. Queue scripts get `lua/_queue.lua` prepended, scripts on the keys shared by all
queues get `lua/_global.lua`; the SHA covers the whole text.

Scripts are loaded once at `open()` and then called with EVALSHA (only the SHA travels).
A server that forgot them (restarted without persistence of its script cache, SCRIPT FLUSH,
failover to a replica) answers NOSCRIPT; the script did not run, so it is loaded again and
called again, transparently. On a Redis Cluster each primary has its own script cache: they
are loaded into every primary, and again after a failover promoted a replica that never saw
them (NOSCRIPT again).

With `wait_replicas` (url.py) a call that acknowledges something ends with Redis's WAIT on the
same connection as its scripts (in the same pipeline; on a cluster, one WAIT per node the
scripts went to), so the call returns only once that many replicas hold its writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis import exceptions as rx
from redis.asyncio.cluster import ClusterNode, RedisCluster

from backburner.backends.redis import wire
from backburner.backends.redis.client import Client
from backburner.backends.redis.pipelined import PipelinedConnection
from backburner.errors import BackendUnavailableError

QUEUE_SCRIPTS = (
    "insert", "claim", "complete", "fail", "release", "progress", "heartbeat", "cancel",
    "retry", "delete", "rescue", "prune", "set_paused",
)
GLOBAL_SCRIPTS = (
    "reserve", "register_worker", "beat_worker", "deregister_worker", "forget_workers",
    "lead", "resign",
)


@dataclass(frozen=True)
class Script:
    name: str
    text: str
    sha: str


@dataclass(frozen=True)
class Call:
    """One script run: its keys (all in one hash slot) and arguments."""

    script: Script
    keys: Sequence[str]
    args: Sequence[str | int | float]


@dataclass(frozen=True)
class Wait:
    """How many replicas must hold a write before it is acknowledged, and for how long to
    wait for them."""

    replicas: int
    timeout: float

    @property
    def args(self) -> tuple[str, int, int]:
        return ("WAIT", self.replicas, max(1, round(self.timeout * 1000)))

    def check(self, answered: Any) -> None:
        if int(answered) < self.replicas:
            raise BackendUnavailableError(
                f"Redis: only {answered} of {self.replicas} replica(s) confirmed the write "
                f"within {self.timeout:g} s (wait_replicas); it is on the primary and may be "
                "lost in a failover"
            )


def _read(name: str) -> str:
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text()


def _build(name: str, prelude: str) -> Script:
    text = f"{prelude}\n-- {name}.lua\n{_read(name)}"
    return Script(name, text, hashlib.sha1(text.encode()).hexdigest())


def load_all() -> dict[str, Script]:
    queue, shared = _read("_queue"), _read("_global")
    scripts = {n: _build(n, queue) for n in QUEUE_SCRIPTS}
    scripts.update({n: _build(n, shared) for n in GLOBAL_SCRIPTS})
    return scripts


class Scripts:
    def __init__(self) -> None:
        self.by_name = load_all()

    def __getitem__(self, name: str) -> Script:
        return self.by_name[name]

    async def load(self, client: Client) -> None:
        """SCRIPT LOAD every script (one round trip; on a cluster, into every primary); the
        server must agree on each SHA."""
        if isinstance(client, RedisCluster):
            # A pipeline sends each keyless command to one node: every primary needs them.
            shas = [await client.script_load(s.text) for s in self.by_name.values()]
        else:
            async with client.pipeline(transaction=False) as pipe:
                for script in self.by_name.values():
                    pipe.script_load(script.text)
                shas = await pipe.execute()
        for script, sha in zip(self.by_name.values(), shas, strict=True):
            if sha != script.sha:
                raise RuntimeError(f"Redis hashed script {script.name} as {sha}, not {script.sha}")

    async def run(self, client: Client, call: Call, wait: Wait | None = None) -> Any:
        if wait is not None:
            return (await self.run_many(client, [call], wait))[0]
        try:
            return await _evalsha(client, call)
        except rx.NoScriptError:
            await self.load(client)
            return await _evalsha(client, call)

    async def run_piped(self, pipe: PipelinedConnection, client: Client, call: Call) -> Any:
        """`run` on the pipelined connection (pipelined.py); the reload after NOSCRIPT goes
        through `client`, as the scripts' first load did."""
        packed = wire.pack(_evalsha_args(call))
        if packed is None:  # an argument hiredis cannot pack: redis-py's packer takes it
            return await self.run(client, call)
        try:
            return await pipe.call(packed)
        except rx.NoScriptError:
            await self.load(client)
            return await pipe.call(packed)

    async def run_many_piped(
        self, pipe: PipelinedConnection, client: Client, calls: Sequence[Call]
    ) -> list[Any]:
        """`run_many` on the pipelined connection: the calls in one write."""
        if len(calls) == 1:
            return [await self.run_piped(pipe, client, calls[0])]
        packed = [wire.pack(_evalsha_args(call)) for call in calls]
        if any(p is None for p in packed):
            return await self.run_many(client, calls)
        ready = [p for p in packed if p is not None]
        results = await pipe.call_many(ready)
        return await self._reloaded(
            client, results, lambda missing: pipe.call_many([ready[i] for i in missing])
        )

    async def run_many(
        self, client: Client, calls: Sequence[Call], wait: Wait | None = None
    ) -> list[Any]:
        """Run scripts in one pipeline (one round trip), not as one transaction: each script
        is atomic on its own. Calls that met NOSCRIPT did not run; they run again after a
        reload. Any other error is raised after the whole pipeline was read. With `wait`,
        the pipeline ends with WAIT (see the module's docstring)."""
        if not calls:
            return []
        if len(calls) == 1 and wait is None:
            return [await self.run(client, calls[0])]
        results = await _pipeline(client, calls, wait)
        return await self._reloaded(
            client, results, lambda missing: _pipeline(client, [calls[i] for i in missing], wait)
        )

    async def _reloaded(
        self, client: Client, results: list[Any],
        again: Callable[[list[int]], Awaitable[list[Any]]],
    ) -> list[Any]:
        """`results` of a batch once the calls that met NOSCRIPT (they did not run) ran
        again, through `again`, after a reload; any other error is raised."""
        missing = [i for i, r in enumerate(results) if isinstance(r, rx.NoScriptError)]
        if missing:
            await self.load(client)
            for i, result in zip(missing, await again(missing), strict=True):
                results[i] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results


def _evalsha_args(call: Call) -> tuple[Any, ...]:
    return ("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)


async def _evalsha(client: Client, call: Call) -> Any:
    # A typed name instead of a type: ignore, which a redis-py release typing the method
    # would turn into an "unused ignore" error.
    execute: Callable[..., Awaitable[Any]] = client.execute_command
    return await execute("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)


async def _pipeline(client: Client, calls: Sequence[Call], wait: Wait | None) -> list[Any]:
    """The scripts' results (WAIT's answers checked and left out)."""
    async with client.pipeline(transaction=False) as pipe:
        for call in calls:
            pipe.execute_command("EVALSHA", call.script.sha, len(call.keys), *call.keys,
                                 *call.args)
        waits = 0
        if wait is not None:
            for node in _nodes(client, calls):
                if node is None:
                    pipe.execute_command(*wait.args)
                else:
                    pipe.execute_command(*wait.args, target_nodes=node)
                waits += 1
        results = list(await pipe.execute(raise_on_error=False))
    if waits:
        assert wait is not None
        answers, results = results[len(results) - waits :], results[: len(results) - waits]
        # NOSCRIPT calls did not run (they run again, with their own WAIT); the WAIT still
        # covers the writes of the others, so its answer counts unless another error is
        # about to be raised anyway.
        if not any(isinstance(r, Exception) and not isinstance(r, rx.NoScriptError)
                   for r in results):
            for answer in answers:
                if isinstance(answer, Exception):
                    raise answer
                wait.check(answer)
    return results


def _nodes(client: Client, calls: Sequence[Call]) -> list[ClusterNode | None]:
    """Where WAIT must go: the one server, or each cluster node the calls' slots live on
    (as the client's slot map says now, which is where the pipeline sends them)."""
    if not isinstance(client, RedisCluster):
        return [None]
    found: dict[str, ClusterNode] = {}
    for call in calls:
        node = client.get_node_from_key(call.keys[0]) if call.keys else None
        if node is not None:
            found.setdefault(node.name, node)
    return list(found.values())
