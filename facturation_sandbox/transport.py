"""A synchronous ``httpx`` transport that calls an ASGI app in-process (the sandbox, in tests).

httpx's own ``ASGITransport`` is async only, and the client is sync. This transport runs the app on
an event loop in a helper thread (an anyio blocking portal) and gives the client what a real server
would: a read timeout raises ``httpx.ReadTimeout`` (the ``slow_after`` fault), and a connection the
app closes without answering raises ``httpx.RemoteProtocolError`` (the ``drop_after`` fault),
exactly as httpx reports them over a socket.
"""

from __future__ import annotations

import threading
from contextlib import ExitStack
from typing import Any

import anyio
import anyio.from_thread
import httpx
from starlette.types import ASGIApp, Message

from facturation_sandbox.middleware import ABORT_KEY


class SandboxTransport(httpx.BaseTransport):
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._stack: ExitStack | None = None
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._lock = threading.Lock()

    def _get_portal(self) -> anyio.from_thread.BlockingPortal:
        with self._lock:
            if self._portal is None:
                self._stack = ExitStack()
                self._portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())
            return self._portal

    def close(self) -> None:
        with self._lock:
            if self._stack is not None:
                self._stack.close()
            self._stack = None
            self._portal = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        timeout = request.extensions.get("timeout", {}).get("read")
        status, headers, content = self._get_portal().call(self._run, request, body, timeout)
        return httpx.Response(status, headers=headers, content=content, request=request)

    async def _run(
        self, request: httpx.Request, body: bytes, read_timeout: float | None
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        aborted = anyio.Event()
        sent_body = False
        start: dict[str, Any] = {}
        chunks: list[bytes] = []
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "client": ("127.0.0.1", 0),
            "server": (request.url.host, request.url.port or 80),
            ABORT_KEY: aborted.set,
        }

        async def receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await aborted.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        with anyio.move_on_after(read_timeout) as scope_timeout:
            await self.app(scope, receive, send)
        if scope_timeout.cancelled_caught:
            raise httpx.ReadTimeout("timed out waiting for the answer", request=request)
        if aborted.is_set() or not start:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        return start["status"], list(start.get("headers", [])), b"".join(chunks)
