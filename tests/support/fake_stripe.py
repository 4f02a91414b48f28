"""A small Stripe API over real HTTP: list objects, the Events API and Checkout look-ups.

Speaks what the bridge reads: ``GET /v1/events`` (``types[]``, ``created[gte]``/``created[lt]``),
``/v1/invoices`` (``status``), ``/v1/refunds`` (``expand[]=data.charge``), ``/v1/credit_notes``,
``/v1/checkout/sessions`` (``status``, ``payment_intent``) and
``/v1/checkout/sessions/ID/line_items`` — list objects newest first, ``limit``, ``starting_after``,
``has_more`` — behind ``Authorization: Bearer <key>``. ``fail_after`` makes every request past
that many answer 500 (an interrupted backfill).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlparse

from tests.support.procs import free_port

LISTS = {"/v1/invoices", "/v1/refunds", "/v1/credit_notes", "/v1/checkout/sessions", "/v1/charges"}


@dataclass
class FakeStripe:
    key: str = "sk_test_fake"
    url: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # path -> objects
    line_items: list[dict[str, Any]] = field(default_factory=list)  # every session's
    session_for_intent: str | None = None
    page_size: int | None = None  # smaller pages than ``limit`` asks for
    fail_after: int | None = None
    calls: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, path: str, obj: dict[str, Any]) -> None:
        self.objects.setdefault(path, []).append(obj)

    def answer(self, path: str, query: list[tuple[str, str]]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.calls.append(path)
            if self.fail_after is not None and len(self.calls) > self.fail_after:
                return 500, {"error": {"type": "api_error", "message": "down"}}
        params = dict(query)
        if path.endswith("/line_items"):
            return 200, self._page(self.line_items, params)
        if path == "/v1/checkout/sessions" and "payment_intent" in params:
            data = [{"id": self.session_for_intent}] if self.session_for_intent else []
            return 200, {"object": "list", "data": data, "has_more": False}
        if path == "/v1/events":
            types = {v for k, v in query if k.startswith("types[")}
            rows = [e for e in self.events if not types or e["type"] in types]
        elif path in LISTS:
            rows = [
                o
                for o in self.objects.get(path, [])
                if all(o.get(f) == params[f] for f in ("status",) if f in params)
            ]
        else:
            return 404, {"error": {"type": "invalid_request_error", "message": "no such path"}}
        gte, lt = params.get("created[gte]"), params.get("created[lt]")
        rows = [
            r
            for r in rows
            if (gte is None or r["created"] >= int(gte)) and (lt is None or r["created"] < int(lt))
        ]
        rows.sort(key=lambda r: (r["created"], r["id"]), reverse=True)
        page = self._page(rows, params)
        if "data.charge" in {v for k, v in query if k.startswith("expand[")}:
            charges = {c["id"]: c for c in self.objects.get("/v1/charges", [])}
            page["data"] = [
                {**r, "charge": charges.get(r["charge"], r["charge"])} for r in page["data"]
            ]
        return 200, page

    def _page(self, rows: list[dict[str, Any]], params: dict[str, str]) -> dict[str, Any]:
        size = min(int(params.get("limit", 10)), self.page_size or 100)
        start = 0
        if after := params.get("starting_after"):
            ids = [r["id"] for r in rows]
            start = ids.index(after) + 1 if after in ids else len(rows)
        data = rows[start : start + size]
        return {"object": "list", "data": data, "has_more": start + size < len(rows), "url": ""}


def _handler(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            if self.headers.get("Authorization") != f"Bearer {fake.key}":
                with fake.lock:
                    fake.calls.append(url.path)
                self._send(401, {"error": {"type": "invalid_request_error", "message": "bad key"}})
                return
            status, body = fake.answer(url.path, parse_qsl(url.query))
            self._send(status, body)

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", "req_fake")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextlib.contextmanager
def fake_stripe_server(fake: FakeStripe | None = None) -> Iterator[FakeStripe]:
    fake = fake or FakeStripe()
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def paid_invoice_event(order: int, customer: str, cents: int, created: int) -> dict[str, Any]:
    """An ``invoice.paid`` event for ``order`` from the fixture (see bridge_procs.stripe_sale)."""
    from tests.support.bridge_procs import stripe_sale

    event: dict[str, Any] = json.loads(stripe_sale(order, customer, cents).body)
    event["created"] = created
    invoice = event["data"]["object"]
    invoice["created"] = created
    invoice["status"] = "paid"
    invoice.setdefault("status_transitions", {})["paid_at"] = created
    return event
