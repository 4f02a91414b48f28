"""What stands in front of every API route: quota, authentication, firm scoping, faults.

Order, outermost first: the quota (429 "Retry later" with ``Retry-After``; a refused request does
not count), HTTP Basic authentication (401), the firm in ``/firms/N/…`` (403 for a firm the key
can't reach), then, on writes, the fault injector. Every request that passes the quota counts,
401s included: the reference counts requests, not successful ones, so the bridge must too.
``X-RateLimit-Limit`` and ``X-RateLimit-Remaining`` are added to every API answer. ``/__sandbox/…``
is outside the API: no quota, no authentication, not counted.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import anyio
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge.logging import get_logger
from facturation_sandbox.state import Sandbox

log = get_logger("bridge.sandbox")

ABORT_KEY = "bridge.sandbox.abort"  # scope key: closes the connection without an answer
_FIRM = re.compile(r"^/firms/(\d+)(/|$)")
WRITES = frozenset({"POST", "PATCH"})  # the faults apply to writes; reads are never faulted


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return JSONResponse(data, status, headers, media_type="application/json; charset=utf-8")


class Gate:
    """Quota, Basic auth and firm scoping; counts answers and adds the quota headers."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/__sandbox/"):
            await self.app(scope, receive, send)
            return
        sandbox = self.sandbox
        headers = Headers(scope=scope)
        decision = sandbox.quota.take()

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out["X-RateLimit-Limit"] = str(decision.limit)
                out["X-RateLimit-Remaining"] = str(decision.remaining)
                sandbox.count_answer(message["status"])
            await send(message)

        sandbox.count_request(headers.get("x-user-agent") or headers.get("user-agent"))
        response: Response | None = None
        if not decision.allowed:
            response = PlainTextResponse(
                "Retry later", 429, headers={"Retry-After": str(decision.retry_after)}
            )
        elif not self._authorised(headers.get("authorization")):
            response = PlainTextResponse(
                "HTTP Basic: Access denied.\n",
                401,
                headers={"WWW-Authenticate": 'Basic realm="Application"'},
            )
        else:
            firm = _FIRM.match(scope["path"])
            if firm and int(firm[1]) != sandbox.config.firm_id:
                response = json_response(
                    {"errors": "Vous n'avez pas accès à cette entreprise"}, 403
                )
        if response is not None:
            await response(scope, receive, send_counted)
            return
        await self.app(scope, receive, send_counted)

    def _authorised(self, header: str | None) -> bool:
        scheme, _, encoded = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            login, _, key = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        config = self.sandbox.config
        login_ok = hmac.compare_digest(login.encode(), config.login.encode())
        key_ok = hmac.compare_digest(key.encode(), config.key.encode())
        return login_ok and key_ok


class FaultInjector:
    """Applies the drawn fault to a write (see faults.py)."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in WRITES
            or scope["path"].startswith("/__sandbox/")
        ):
            await self.app(scope, receive, send)
            return
        faults = self.sandbox.faults
        kind = faults.draw()
        if kind is None:
            await self.app(scope, receive, send)
            return
        if kind == "error_before":
            faults.record(kind)
            log.info("sandbox.fault", kind=kind, method=scope["method"], path=scope["path"])
            await json_response({"errors": "Service Unavailable"}, 503)(scope, receive, send)
            return
        messages: list[Message] = []

        async def keep(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, keep)
        status = messages[0]["status"] if messages else 500
        if not 200 <= status < 300:
            await _replay(messages, send)
            return
        faults.record(kind)
        log.info("sandbox.fault", kind=kind, method=scope["method"], path=scope["path"])
        if kind == "error_after":
            await json_response({"errors": "Bad Gateway"}, 502)(scope, receive, send)
        elif kind == "drop_after":
            await _drop(scope, receive)
        elif not await _client_left_within(faults.slow_seconds, receive):
            await _replay(messages, send)


async def _replay(messages: list[Message], send: Send) -> None:
    for message in messages:
        await send(message)


async def _client_left_within(seconds: float, receive: Receive) -> bool:
    """Wait ``seconds`` for the answer's delay; True as soon as the client has gone (timed out)."""
    with anyio.move_on_after(seconds):
        while (await receive())["type"] != "http.disconnect":
            pass
        return True
    return False


async def _drop(scope: Scope, receive: Receive) -> None:
    """Close the connection without answering, then wait for the server to notice."""
    abort: Callable[[], None] | None = scope.get(ABORT_KEY)
    if abort is None:
        raise RuntimeError("drop_after needs the sandbox server or SandboxTransport")
    abort()
    with anyio.move_on_after(5):
        while (await receive())["type"] != "http.disconnect":
            pass


def pagination_header(page: int, per_page: int, total: int) -> str:
    pages = -(-total // per_page)
    return json.dumps(
        {"current_page": page, "total_pages": pages, "per_page": per_page, "total_entries": total},
        separators=(",", ":"),
    )
