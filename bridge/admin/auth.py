"""The admin token, compared in constant time: shared by the admin API, the page and ``/metrics``."""

from __future__ import annotations

import hmac

from starlette.requests import Request


def token_matches(given: str, token: str) -> bool:
    """``given`` is the configured admin token (never true when none is configured)."""
    if not token:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode("utf-8"))


def bearer_matches(request: Request, token: str) -> bool:
    """The request carries ``Authorization: Bearer <token>``."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and token_matches(given.strip(), token)
