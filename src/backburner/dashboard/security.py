"""What keeps the dashboard safe to expose: roles from the host app's auth, the CSRF token,
the response headers (a Content-Security-Policy without 'unsafe-inline'), CSV cells that a
spreadsheet will not run, and a check that a redirect stays inside the dashboard."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Mapping
from typing import Literal
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException
from fastapi.security import HTTPBasic, HTTPBasicCredentials

Role = Literal["admin", "read"]
"""What a dashboard user may do: `admin` sees and changes everything, `read` only sees."""

ROLES: frozenset[str] = frozenset({"admin", "read"})

# Scripts and styles from the dashboard's own static files only: no inline script, style or
# event handler can run, so an escaped-but-missed value still cannot execute. The charts are
# inline SVG drawn with presentation attributes, which CSP does not treat as styles.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(cookie: str | None, sent: str | None) -> bool:
    """Double-submit check: the token in the cookie (which another site can neither read nor
    set on our origin) must come back in the form or header. Constant-time comparison."""
    if not cookie or not sent:
        return False
    return hmac.compare_digest(cookie.encode(), sent.encode())


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading quote
    (OWASP's advice for CSV injection)."""
    if value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def safe_next(target: str | None, root: str) -> str | None:
    """`target` if it is a path inside the dashboard (under `root`), else None: a form's
    `next` must never send the browser to another site."""
    if not target or "\\" in target or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    base = root.rstrip("/")
    if parts.path != base and not parts.path.startswith(base + "/"):
        return None
    return target


def basic_auth(
    users: Mapping[str, tuple[str, Role]],
) -> Callable[[HTTPBasicCredentials | None], Role]:
    """A ready-made `auth` for the dashboard: HTTP Basic against `users` (name ->
    (password, role)). Unknown users and wrong passwords get 401 with a Basic challenge,
    so the browser asks. Use your app's own auth dependency instead when it has one."""
    for name, (_, role) in users.items():
        if role not in ROLES:
            raise ValueError(f"user {name!r}: role must be 'admin' or 'read', not {role!r}")
    security = HTTPBasic(auto_error=False, realm="backburner dashboard")

    # A default, not Annotated: this module's annotations are strings, and FastAPI would
    # resolve them where the closure's `security` is not visible.
    def role_of(
        credentials: HTTPBasicCredentials | None = Depends(security),  # noqa: B008
    ) -> Role:
        if credentials is not None:
            entry = users.get(credentials.username)
            # Compare even for an unknown user, so timing does not tell which names exist.
            password, role = entry if entry is not None else ("", "read")
            good = hmac.compare_digest(credentials.password.encode(), password.encode())
            if entry is not None and good:
                return role
        raise HTTPException(401, "credentials required",
                            headers={"WWW-Authenticate": 'Basic realm="backburner dashboard"'})

    return role_of
