"""Finding a user's app from a `module:attribute` string (CLI, worker processes)."""

from __future__ import annotations

import importlib
import os
import sys

from backburner.app import Backburner
from backburner.errors import ConfigurationError


def load_app(spec: str) -> Backburner:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"expected 'module:attribute', got {spec!r}")
    # Like uvicorn: the current directory is importable, so `backburner worker app:jobs` works.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r}: {exc}") from exc
    target: object = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigurationError(f"{module_name!r} has no attribute {attribute!r}") from None
    if callable(target) and not isinstance(target, Backburner):
        target = target()  # a factory
    if not isinstance(target, Backburner):
        raise ConfigurationError(f"{spec!r} is {type(target).__name__}, not a Backburner app")
    return target
