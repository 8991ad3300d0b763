"""The Django application `backburner.django` (INSTALLED_APPS): it holds no models; being
installed makes the `backburner_worker` management command available and keeps the
project's Backburner app (settings.BACKBURNER_APP) once loaded."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class BackburnerConfig(AppConfig):  # type: ignore[misc]  # Django has no bundled types
    name = "backburner.django"
    # Not the default "django" (the last part of the name): clearer in messages, and no
    # clash with anything a project calls "django".
    label = "backburner"
    verbose_name = "Backburner"
    backburner_app: Any = None
    """The loaded Backburner app, set by `backburner.django.get_app` on first use."""
