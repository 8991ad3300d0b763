"""mypy plugin: leave `JobContext` parameters out of `enqueue`, `call` and `pipe`.

A task's `JobContext` parameter is injected by the worker, so `Task[P, R].enqueue` must not
ask for it. A JobContext FIRST is dropped without this plugin (`@app.task` types it with
`Concatenate`); ParamSpec cannot drop one that is not first, so this plugin removes it from
the checked signature. Enable it with `plugins = ["backburner.mypy"]`.
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.plugin import MethodSigContext, Plugin
from mypy.types import CallableType, Instance, get_proper_type

_CONTEXT = "backburner.context.JobContext"
_METHODS = frozenset(
    {
        "backburner.task.Task.enqueue",
        "backburner.task.Task.enqueue_sync",
        "backburner.task.Task.call",
        "backburner.task.BoundTask.enqueue",
        "backburner.task.BoundTask.enqueue_sync",
        "backburner.task.BoundTask.call",
        "backburner.task.Task.pipe",
        "backburner.task.BoundTask.pipe",
    }
)


def _without_context(ctx: MethodSigContext) -> CallableType:
    sig = ctx.default_signature
    keep = [
        i
        for i, arg_type in enumerate(sig.arg_types)
        if not (
            isinstance(t := get_proper_type(arg_type), Instance) and t.type.fullname == _CONTEXT
        )
    ]
    if len(keep) == len(sig.arg_types):
        return sig
    return sig.copy_modified(
        arg_types=[sig.arg_types[i] for i in keep],
        arg_kinds=[sig.arg_kinds[i] for i in keep],
        arg_names=[sig.arg_names[i] for i in keep],
    )


class BackburnerPlugin(Plugin):
    def get_method_signature_hook(
        self, fullname: str
    ) -> Callable[[MethodSigContext], CallableType] | None:
        return _without_context if fullname in _METHODS else None


def plugin(version: str) -> type[Plugin]:
    return BackburnerPlugin
