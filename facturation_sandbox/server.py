"""Serving the sandbox with uvicorn, with connections the ``drop_after`` fault can really cut.

ASGI has no way to close a connection without answering (an app that raises gets a 500). The
server's HTTP protocol below hands each request a callable, under :data:`ABORT_KEY` in its scope,
that aborts the TCP connection: the client then sees the server disconnect with no answer at all
(``httpx.RemoteProtocolError`` or ``ReadError``), exactly what a crash after the write looks like.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from facturation_sandbox.middleware import ABORT_KEY


class AbortableH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus the abort callable in each request's scope."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        inner: ASGIApp = self.config.loaded_app

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            scope[ABORT_KEY] = transport.abort
            await inner(scope, receive, send)

        self.app = app


def serve(app: ASGIApp, *, host: str, port: int, **options: Any) -> None:
    uvicorn.run(
        app,
        host=host,
        port=port,
        http=AbortableH11Protocol,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=2,
        **options,
    )
