"""The Lua scripts of the Redis backend (files in `lua/`), run by SHA.

Every state transition that touches more than one key is one script: Redis runs a script
without interleaving any other command, which is what makes a claim, an acknowledgement or a
rescue atomic. Queue scripts get `lua/_queue.lua` prepended, scripts on the keys shared by all
queues get `lua/_global.lua`; the SHA covers the whole text.

Scripts are loaded once at `open()` and then called with EVALSHA (only the SHA travels).
A server that forgot them (restarted without persistence of its script cache, SCRIPT FLUSH,
failover to a replica) answers NOSCRIPT; the script did not run, so it is loaded again and
called again, transparently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis import exceptions as rx
from redis.asyncio import Redis

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

    async def load(self, client: Redis) -> None:
        """SCRIPT LOAD every script (one round trip); the server must agree on each SHA."""
        async with client.pipeline(transaction=False) as pipe:
            for script in self.by_name.values():
                pipe.script_load(script.text)
            shas = await pipe.execute()
        for script, sha in zip(self.by_name.values(), shas, strict=True):
            if sha != script.sha:
                raise RuntimeError(f"Redis hashed script {script.name} as {sha}, not {script.sha}")

    async def run(self, client: Redis, call: Call) -> Any:
        try:
            return await _evalsha(client, call)
        except rx.NoScriptError:
            await self.load(client)
            return await _evalsha(client, call)

    async def run_many(self, client: Redis, calls: Sequence[Call]) -> list[Any]:
        """Run scripts in one pipeline (one round trip), not as one transaction: each script
        is atomic on its own. Calls that met NOSCRIPT did not run; they run again after a
        reload. Any other error is raised after the whole pipeline was read."""
        if not calls:
            return []
        if len(calls) == 1:
            return [await self.run(client, calls[0])]
        results = await _pipeline(client, calls)
        missing = [i for i, r in enumerate(results) if isinstance(r, rx.NoScriptError)]
        if missing:
            await self.load(client)
            again = await _pipeline(client, [calls[i] for i in missing])
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results


async def _evalsha(client: Redis, call: Call) -> Any:
    # A typed name instead of a type: ignore, which a redis-py release typing the method
    # would turn into an "unused ignore" error.
    execute: Callable[..., Awaitable[Any]] = client.execute_command
    return await execute("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)


async def _pipeline(client: Redis, calls: Sequence[Call]) -> list[Any]:
    async with client.pipeline(transaction=False) as pipe:
        for call in calls:
            pipe.execute_command("EVALSHA", call.script.sha, len(call.keys), *call.keys,
                                 *call.args)
        return list(await pipe.execute(raise_on_error=False))
