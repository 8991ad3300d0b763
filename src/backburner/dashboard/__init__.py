"""The web dashboard: see and steer every job of a Backburner app from a browser.

Mount it inside your FastAPI app in two lines, with your own auth and a read-only role:

    from backburner.dashboard import mount_dashboard

    mount_dashboard(api, jobs, prefix="/dashboard", auth=current_role)  # "admin" | "read"

or run it standalone on a store: `backburner dashboard sqlite:///jobs.db`. Pages are
server-rendered (Jinja2, autoescaped) with one small script for live refresh; the CSS and
JS ship inside the package, so there is no build step. Needs the `dashboard` extra.
"""

from backburner.dashboard.routes import dashboard_router, mount_dashboard
from backburner.dashboard.security import Role, basic_auth

__all__ = ["Role", "basic_auth", "dashboard_router", "mount_dashboard"]
