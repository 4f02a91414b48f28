"""The HTTP server of ``serve`` and ``web``: uvicorn, hardened against slow and hostile clients.

What a client can hold, and for how long (each bound is a setting, see docs/configuration.md):

==========================  ======================================================================
headers                     complete within ``BRIDGE_HTTP_HEADER_TIMEOUT`` of the connection (or of
                            the previous answer on a keep-alive connection), else the connection
                            is closed; at most ``BRIDGE_HTTP_MAX_HEADER_BYTES`` (else 400)
body                        read within ``BRIDGE_HTTP_BODY_TIMEOUT`` (else 408, in the ingress)
idle keep-alive             closed after ``BRIDGE_HTTP_KEEP_ALIVE_TIMEOUT``
connections                 beyond ``BRIDGE_HTTP_MAX_CONNECTIONS`` open at once, requests get 503
shutdown (SIGTERM)          no new connections; idle ones closed; requests in flight finish within
                            ``BRIDGE_HTTP_SHUTDOWN_TIMEOUT``; one still running then gets 503
==========================  ======================================================================

uvicorn has no header timeout of its own (its keep-alive timer stops at the first byte), so a
client sending nothing, or a header a byte at a time, would hold its connection forever: hundreds
of them exhaust the connection limit or the process's open files. :class:`GuardedH11Protocol`
adds the deadline. The process's soft open-files limit is raised to its hard limit at start, so
that the connection limit, not ``EMFILE``, is what a flood meets.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from bridge.config import Settings
from bridge.logging import get_logger

log = get_logger("bridge.process.server")

# Open files the process needs beside its connections: database, logs, libraries, the worker pipe.
SPARE_FILES = 64
SHUTDOWN_BODY = b'{"error":"the server is shutting down; retry later"}'


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for a request's headers.

    The deadline is armed when the connection opens and again when an answer is complete (the
    next request on a keep-alive connection), and disarmed once a request's headers are parsed.
    """

    header_timeout = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before:  # a request's headers were complete
            self._disarm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is under way: its body has its own deadline
        log.info("http.header_timeout", client=_client(self.client), after_s=self.header_timeout)
        self.transport.close()


def _client(address: tuple[str, int] | None) -> str | None:
    return f"{address[0]}:{address[1]}" if address else None


def guarded_protocol(header_timeout: float) -> type[GuardedH11Protocol]:
    """The protocol class to give uvicorn (it builds one instance per connection)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"header_timeout": header_timeout})


class ShutdownGuard:
    """Answer 503, never 500, for a request still running when the graceful shutdown times out.

    uvicorn cancels such a request's task and, if no answer was started, sends a 500. The
    sender must retry instead: nothing was stored.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except asyncio.CancelledError:
            if not started:
                log.warning("http.cancelled_at_shutdown", path=scope.get("path"))
                await send(
                    {
                        "type": "http.response.start",
                        "status": 503,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(SHUTDOWN_BODY)).encode()),
                            (b"retry-after", b"5"),
                            (b"connection", b"close"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": SHUTDOWN_BODY})
            raise


def raise_open_files_limit(needed: int) -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; warn if it stays below ``needed``.

    Returns the soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning(
            "server.open_files_limit_low",
            limit=soft,
            needed=needed,
            hint="raise LimitNOFILE (systemd) or ulimit -n, or lower BRIDGE_HTTP_MAX_CONNECTIONS",
        )
    return int(soft)


def uvicorn_options(settings: Settings, limit_concurrency: int | None = None) -> dict[str, Any]:
    """The keyword arguments for ``uvicorn.run`` that bound what clients can hold."""
    limit = limit_concurrency or settings.http_max_connections
    return {
        "http": guarded_protocol(settings.http_header_timeout),
        "h11_max_incomplete_event_size": settings.http_max_header_bytes,
        "timeout_keep_alive": settings.http_keep_alive_timeout,
        "limit_concurrency": limit,
        "timeout_graceful_shutdown": settings.http_shutdown_timeout,
    }
