"""A local Stripe API over real HTTP, for the mapping stage's look-ups.

Serves what :mod:`bridge.mapping.enrichment` calls, the way Stripe documents it: Bearer key,
``GET /v1/checkout/sessions/{id}/line_items`` paginated with ``limit`` / ``starting_after`` /
``has_more`` (and ``expand[]`` or ``expand[N]``), ``GET /v1/checkout/sessions?payment_intent=``,
``GET /v1/invoice_payments?payment[type]=payment_intent&payment[payment_intent]=`` (API 2025-03-31
"basil" and later), ``GET /v1/credit_notes?invoice=``, ``GET /v1/refunds?charge=`` (newest first),
and ``404 resource_missing`` for an unknown session. Items are sent as the test gives them, so it
can put integers beyond 2**53 or decimals in them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.support.procs import free_port

API_KEY = "sk_test_fake"


@dataclass
class Seen:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class FakeStripe:
    line_items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sessions_by_payment_intent: dict[str, str] = field(default_factory=dict)
    invoices_by_payment_intent: dict[str, str] = field(default_factory=dict)
    credit_notes: list[dict[str, Any]] = field(default_factory=list)  # credit_note objects
    refunds: list[dict[str, Any]] = field(default_factory=list)  # refund objects, oldest first
    page_size: int = 100  # at most this many items per page, whatever ``limit`` asks
    status: int | None = None  # answer every request with this error status instead
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    @property
    def paths(self) -> list[str]:
        return [s.path for s in self.seen]

    def answer(self, path: str, query: dict[str, list[str]], key: str) -> tuple[int, Any]:
        if key != f"Bearer {API_KEY}":
            return 401, _error("invalid_request_error", None, "Invalid API Key provided")
        if self.status is not None:
            return self.status, _error("api_error", None, "Something went wrong")
        parts = path.strip("/").split("/")
        if (
            parts[:3] == ["v1", "checkout", "sessions"]
            and len(parts) == 5
            and parts[4] == "line_items"
        ):
            return self._line_items(path, parts[3], query)
        if path == "/v1/checkout/sessions":
            found = self.sessions_by_payment_intent.get(query.get("payment_intent", [""])[0])
            sessions = [{"id": found, "object": "checkout.session"}] if found else []
            return 200, _page(sessions, False, path)
        if path == "/v1/invoice_payments":
            return 200, _page(self._invoice_payments(query), False, path)
        if path == "/v1/credit_notes":
            invoice = query.get("invoice", [""])[0]
            return 200, _page(
                [n for n in self.credit_notes if n["invoice"] == invoice], False, path
            )
        if path == "/v1/refunds":
            charge = query.get("charge", [""])[0]
            found = [r for r in reversed(self.refunds) if r.get("charge") == charge]
            return 200, _page(found, False, path)
        return 404, _error("invalid_request_error", "resource_missing", f"Unrecognized URL {path}")

    def _invoice_payments(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        if query.get("payment[type]") != ["payment_intent"]:
            return []
        intent = query.get("payment[payment_intent]", [""])[0]
        invoice = self.invoices_by_payment_intent.get(intent)
        if invoice is None:
            return []
        payment = {"type": "payment_intent", "payment_intent": intent}
        return [
            {"id": f"inpay_{intent}", "object": "invoice_payment", "invoice": invoice,
             "payment": payment, "status": "paid", "is_default": True}
        ]  # fmt: skip

    def _line_items(self, path: str, session: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if session not in self.line_items:
            message = f"No such checkout.session: '{session}'"
            return 404, _error("invalid_request_error", "resource_missing", message)
        items = self.line_items[session]
        after = query.get("starting_after", [None])[0]
        start = next((i + 1 for i, item in enumerate(items) if item["id"] == after), 0)
        size = min(int(query.get("limit", ["10"])[0]), self.page_size)
        return 200, _page(items[start : start + size], start + size < len(items), path)


def _page(data: list[Any], has_more: bool, url: str) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def _error(kind: str, code: str | None, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "code": code, "message": message}}


@contextmanager
def serve_fake_stripe(fake: FakeStripe | None = None) -> Iterator[FakeStripe]:
    fake = fake or FakeStripe()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            fake.seen.append(Seen(url.path, query, dict(self.headers.items())))
            status, body = fake.answer(url.path, query, self.headers.get("Authorization", ""))
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
