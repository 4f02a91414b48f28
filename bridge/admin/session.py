"""The admin page's session: a signed cookie, and the CSRF token every form carries.

The cookie holds ``{"auth": bool, "csrf": str, "lang": str, "flash": …}``, signed (not encrypted:
nothing in it is secret to its holder) with a key derived from ``BRIDGE_ADMIN_TOKEN``, so changing
the token ends every session. It is ``HttpOnly``, ``SameSite=Strict``, scoped to ``/admin/ui``,
lasts ``MAX_AGE`` seconds, and is ``Secure`` when the request came over https (behind a proxy, run
uvicorn with ``--proxy-headers`` and ``--forwarded-allow-ips`` so that the scheme is known).

Every POST carries the session's CSRF token in a hidden field ``csrf``, compared in constant
time; the login form too, so that a session starts only from the bridge's own form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "bridge_admin"
PATH = "/admin/ui"
MAX_AGE = 8 * 3600
_SALT = "facturation-bridge.admin-session"


def _serializer(admin_token: str) -> URLSafeTimedSerializer:
    key = hmac.new(admin_token.encode("utf-8"), _SALT.encode(), hashlib.sha256).hexdigest()
    return URLSafeTimedSerializer(key, salt=_SALT)


@dataclass
class AdminSession:
    data: dict[str, Any] = field(default_factory=dict)
    changed: bool = False

    @property
    def authenticated(self) -> bool:
        return self.data.get("auth") is True

    @property
    def csrf(self) -> str:
        token = self.data.get("csrf")
        if not isinstance(token, str) or not token:
            token = secrets.token_urlsafe(32)
            self.set("csrf", token)
        return token

    def csrf_matches(self, given: str) -> bool:
        expected = self.data.get("csrf")
        if not isinstance(expected, str) or not expected or not given:
            return False
        return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.changed = True

    def pop(self, key: str) -> Any:
        if key in self.data:
            self.changed = True
        return self.data.pop(key, None)

    def log_in(self) -> None:
        """A fresh session (new CSRF token), authenticated; the language is kept."""
        lang = self.data.get("lang")
        self.data = {"auth": True, "csrf": secrets.token_urlsafe(32)}
        if lang:
            self.data["lang"] = lang
        self.changed = True

    def log_out(self) -> None:
        self.log_in()
        self.data["auth"] = False


def load(request: Request, admin_token: str) -> AdminSession:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return AdminSession()
    try:
        data = _serializer(admin_token).loads(raw, max_age=MAX_AGE)
    except BadSignature:  # tampered, expired, or signed with a former token
        return AdminSession(changed=True)
    return AdminSession(data if isinstance(data, dict) else {})


def save(response: Response, request: Request, session: AdminSession, admin_token: str) -> None:
    if not session.changed:
        return
    response.set_cookie(
        COOKIE,
        _serializer(admin_token).dumps(session.data),
        max_age=MAX_AGE,
        path=PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
