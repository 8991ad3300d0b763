"""What the demo's routes accept, in forms the OpenAPI schema can state exactly, and the
error answers every demo route documents (the library's problem details)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from backburner.fastapi import problem_responses

# An address the schema can say: ASCII, one @, a dotted host name. (pydantic's EmailStr
# also refuses reserved domains such as .test, which `format: email` allows: a client
# following the schema would be told no for an address it was promised.)
EMAIL_PATTERN = (r"^[!-?A-~]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                 r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
Email = Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=254,
                             examples=["ada@example.com"])]

# An http(s) URL without credentials, as the SSRF guard's syntax check takes it; where it
# points (an internal address) is checked after, and refused with 403.
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
_CHAR = r"[!-\"$-~]"  # visible ASCII but "#": the client percent-encodes the rest
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
# A dotted quad in its plain form, or a name whose last label starts with a letter (so no
# octal, hex or single-number spelling of an address, which the URL parser refuses).
_HOST = (rf"(?:{_OCTET}(?:\.{_OCTET}){{3}}|(?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)*"
         r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)")
URL_PATTERN = rf"^https?://{_HOST}(?::{_PORT})?(?:[/?]{_CHAR}*)?$"

ERRORS = problem_responses(s400="the body is not what its content type says (not JSON)",
                           s503="the job store is unreachable")
"""400, 422 (the request does not fit the schema) and 503, as problems: every demo
router's."""
