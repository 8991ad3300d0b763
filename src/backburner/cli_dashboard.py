"""`backburner dashboard URL`: the web dashboard on its own, over a store, under uvicorn.

Without users it has no authentication, so it listens on loopback only and refuses any
other address; with `--user NAME:PASSWORD:ROLE` (HTTP Basic, role admin or read) it may
listen anywhere (put TLS in front of it)."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import typer

from backburner.app import Backburner
from backburner.backends import open_backend
from backburner.errors import ConfigurationError
from backburner.loading import load_app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_users(specs: list[str]) -> dict[str, tuple[str, Any]]:
    """`NAME:PASSWORD:ROLE` items (also comma-separated, as from the environment)."""
    users: dict[str, tuple[str, Any]] = {}
    for item in (part for spec in specs for part in spec.split(",") if part):
        name, sep, rest = item.partition(":")
        password, sep2, role = rest.rpartition(":")
        if not (sep and sep2 and name and password) or role not in ("admin", "read"):
            raise ConfigurationError(
                f"--user {item.split(':')[0]!r}: expected NAME:PASSWORD:ROLE with role "
                "admin or read")
        users[name] = (password, role)
    return users


async def check_store(url: str) -> None:
    """Raise StoreNotFoundError when no store exists at `url`: the dashboard never creates
    one (a mistyped URL would show an empty store that no worker uses). Checked before the
    server starts, on a backend of its own, so the error is one line, not a failed startup."""
    backend = open_backend(url)
    try:
        await backend.open(create=False)
    finally:
        await backend.close()


def build(url: str | None, app_spec: str | None, users: dict[str, tuple[str, Any]],
          prefix: str = "") -> Any:
    """The standalone FastAPI app: the dashboard at `prefix`, the store opened and closed
    with the server (no worker runs here)."""
    from fastapi import FastAPI

    from backburner.dashboard import basic_auth, mount_dashboard

    if app_spec:
        jobs = load_app(app_spec)
    elif url:
        jobs = Backburner(url)
    else:
        raise ConfigurationError("give a store URL (sqlite:///jobs.db, redis://, postgresql://)"
                                 " or --app module:attribute")

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        await jobs.open()
        try:
            yield
        finally:
            await jobs.close()

    api = FastAPI(title="Backburner dashboard", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)
    mount_dashboard(api, jobs, prefix=prefix, auth=basic_auth(users) if users else None)
    api.state.backburner = jobs
    return api


def register(cli: typer.Typer) -> None:
    """Add the `dashboard` command to the `backburner` CLI."""

    @cli.command()
    def dashboard(
        url: Annotated[str | None, typer.Argument(
            envvar="BACKBURNER_URL", metavar="URL",
            help="The store: sqlite:///jobs.db, redis://..., postgresql://...")] = None,
        app: Annotated[str | None, typer.Option(
            "--app", envvar="BACKBURNER_APP", metavar="MODULE:ATTR",
            help="The app as module:attribute (its tasks and schedules show too).")] = None,
        host: Annotated[str, typer.Option("--host", metavar="HOST",
                                          help="Address to listen on.")]
        = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=0, max=65535, metavar="PORT",
                                          help="Port to listen on.")] = 8765,
        prefix: Annotated[str, typer.Option("--prefix", metavar="PATH",
                                            help="Mount path, e.g. /dashboard.")]
        = "",
        user: Annotated[list[str] | None, typer.Option(
            "--user", envvar="BACKBURNER_DASHBOARD_USERS", metavar="NAME:PASSWORD:ROLE",
            help="NAME:PASSWORD:ROLE (admin or read), repeatable: HTTP Basic auth.")] = None,
    ) -> None:
        """Serve the web dashboard for a store (no worker runs here)."""
        try:
            users = parse_users(user or [])
            if not users and not is_loopback(host):
                raise ConfigurationError(
                    f"refusing to listen on {host} without authentication: anyone reaching "
                    "it could change every job. Add --user NAME:PASSWORD:admin (and "
                    "NAME:PASSWORD:read), or listen on 127.0.0.1")
            api = build(url, app, users, prefix.rstrip("/"))
            asyncio.run(check_store(api.state.backburner.url))
        except ConfigurationError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        import uvicorn

        shown = "localhost" if host in ("127.0.0.1", "::1") else host
        typer.echo(f"Backburner dashboard: http://{shown}:{port}{prefix or '/'}")
        uvicorn.run(api, host=host, port=port, log_level="warning")
