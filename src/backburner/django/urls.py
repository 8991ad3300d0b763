"""`path("jobs/", include("backburner.django.urls"))`: the dashboard at the prefix and the
JSON job router under `api/` (`jobs/api/jobs/{id}`), for settings.BACKBURNER_APP with the
default role (`backburner.django.mount.staff_role`). For other roles or options, include
`mount.dashboard_urls(...)` and `mount.jobs_urls(...)` yourself."""

from __future__ import annotations

from typing import Any

from django.urls import include, path

from backburner.django.mount import dashboard_urls, jobs_urls

app_name = "backburner"
urlpatterns: list[Any] = [
    path("api/", include(jobs_urls())),
    *dashboard_urls(),
]
