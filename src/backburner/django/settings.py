"""The project's Backburner app, named by `settings.BACKBURNER_APP` ("module:attribute", as
for `backburner worker`; a factory is called once)."""

from __future__ import annotations

import threading
from typing import Any

from backburner.app import Backburner
from backburner.errors import ConfigurationError
from backburner.loading import load_app

_loading = threading.Lock()


def get_app() -> Backburner:
    """The Backburner app of `settings.BACKBURNER_APP`, loaded once per process and kept on
    the `backburner.django` AppConfig (so a factory's app is made once, not per request).
    A missing setting or a path that names no app is a ConfigurationError."""
    from django.apps import apps
    from django.conf import settings

    spec: Any = getattr(settings, "BACKBURNER_APP", None)
    if isinstance(spec, Backburner):
        return spec  # the object itself in settings works too
    if not isinstance(spec, str) or not spec:
        raise ConfigurationError(
            'settings.BACKBURNER_APP must name your Backburner app, e.g. "myproject.jobs:app"'
        )
    try:
        config: Any = apps.get_app_config("backburner")
    except LookupError:
        # Not in INSTALLED_APPS: nowhere to keep it, and a module-level app is the same
        # object at every import anyway.
        return load_app(spec)
    with _loading:
        if config.backburner_app is None:
            config.backburner_app = load_app(spec)
        app: Backburner = config.backburner_app
    return app
