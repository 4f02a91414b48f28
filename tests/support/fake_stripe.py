"""A local Stripe API over real HTTP, for the mapping stage's look-ups, backfill and reconcile.

Serves what :mod:`bridge.mapping.enrichment` calls, the way Stripe documents it: Bearer key,
``GET /v1/checkout/sessions/{id}/line_items`` paginated with ``limit`` / ``starting_after`` /
``has_more`` (and ``expand[]`` or ``expand[N]``), ``GET /v1/checkout/sessions?payment_intent=``,
``GET /v1/invoice_payments?payment[type]=payment_intent&payment[payment_intent]=`` (API 2025-03-31
"basil" and later), ``GET /v1/credit_notes?invoice=``, ``GET /v1/refunds?charge=`` (newest first),
``GET /v1/payment_intents/{id}`` (``latest_charge`` and its ``balance_transaction`` collapsed to
their ids unless ``expand[]`` names them), and ``404 resource_missing`` for an unknown session or
payment intent. Items are sent as the test gives them, so it
can put integers beyond 2**53 or decimals in them.

For :mod:`bridge.recovery`: the Events API ``GET /v1/events`` (``types[]``, ``created[gte]``/
``created[lt]``) and the lists ``/v1/invoices`` (``status``), ``/v1/refunds``
(``expand[]=data.charge``), ``/v1/credit_notes``, ``/v1/checkout/sessions`` (``status``), newest
first. ``fail_after`` makes every request past that many answer 500 (an interrupted backfill).
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
LISTS = {
    "/v1/invoices",
    "/v1/refunds",
    "/v1/credit_notes",
    "/v1/checkout/sessions",
    "/v1/charges",
    "/v1/webhook_endpoints",
}


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
    payment_intents: dict[str, dict[str, Any]] = field(default_factory=dict)  # fully expanded
    page_size: int = 100  # at most this many items per page, whatever ``limit`` asks
    status: int | None = None  # answer every request with this error status instead
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)  # for the Events API
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # list path -> objects
    fail_after: int | None = None

    def add(self, path: str, obj: dict[str, Any]) -> None:
        self.objects.setdefault(path, []).append(obj)

    @property
    def paths(self) -> list[str]:
        return [s.path for s in self.seen]

    def answer(self, path: str, query: dict[str, list[str]], key: str) -> tuple[int, Any]:
        if key != f"Bearer {API_KEY}":
            return 401, _error("invalid_request_error", None, "Invalid API Key provided")
        if self.status is not None or (
            self.fail_after is not None and len(self.seen) > self.fail_after
        ):
            return self.status or 500, _error("api_error", None, "Something went wrong")
        parts = path.strip("/").split("/")
        if (
            parts[:3] == ["v1", "checkout", "sessions"]
            and len(parts) == 5
            and parts[4] == "line_items"
        ):
            return self._line_items(path, parts[3], query)
        if parts[:2] == ["v1", "payment_intents"] and len(parts) == 3:
            return self._payment_intent(parts[2], query)
        if path == "/v1/events" or (path in LISTS and "payment_intent" not in query):
            return 200, self._list(path, query)
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
        if "invoice" in query:  # the payments of one invoice
            paid = query["invoice"][0]
            intents = [pi for pi, inv in self.invoices_by_payment_intent.items() if inv == paid]
            query = {"payment[type]": ["payment_intent"], "payment[payment_intent]": intents[:1]}
        if query.get("payment[type]") != ["payment_intent"] or not query["payment[payment_intent]"]:
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

    def _payment_intent(self, intent_id: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        intent = self.payment_intents.get(intent_id)
        if intent is None:
            message = f"No such payment_intent: '{intent_id}'"
            return 404, _error("invalid_request_error", "resource_missing", message)
        expand = {v for k, vs in query.items() if k.startswith("expand[") for v in vs}
        charge = intent.get("latest_charge")
        if not isinstance(charge, dict):
            return 200, intent
        balance = charge.get("balance_transaction")
        if "latest_charge.balance_transaction" not in expand and isinstance(balance, dict):
            charge = {**charge, "balance_transaction": balance["id"]}
        if not expand & {"latest_charge", "latest_charge.balance_transaction"}:
            return 200, {**intent, "latest_charge": charge["id"]}
        return 200, {**intent, "latest_charge": charge}

    def _line_items(self, path: str, session: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if session not in self.line_items:
            message = f"No such checkout.session: '{session}'"
            return 404, _error("invalid_request_error", "resource_missing", message)
        items = self.line_items[session]
        after = query.get("starting_after", [None])[0]
        start = next((i + 1 for i, item in enumerate(items) if item["id"] == after), 0)
        size = min(int(query.get("limit", ["10"])[0]), self.page_size)
        return 200, _page(items[start : start + size], start + size < len(items), path)

    def _list(self, path: str, query: dict[str, list[str]]) -> dict[str, Any]:
        def one(name: str) -> str | None:
            return query.get(name, [None])[0]

        if path == "/v1/events":
            types = {v for k, vs in query.items() if k.startswith("types[") for v in vs}
            rows = [e for e in self.events if not types or e["type"] in types]
        else:
            status = one("status")
            rows = [
                o for o in self.objects.get(path, []) if status is None or o.get("status") == status
            ]
        gte, lt = one("created[gte]"), one("created[lt]")
        rows = [
            r
            for r in rows
            if (gte is None or r["created"] >= int(gte)) and (lt is None or r["created"] < int(lt))
        ]
        rows.sort(key=lambda r: (r["created"], r["id"]), reverse=True)
        after = one("starting_after")
        start = next((i + 1 for i, r in enumerate(rows) if r["id"] == after), 0)
        size = min(int(one("limit") or "10"), self.page_size)
        data = rows[start : start + size]
        if "data.charge" in {v for k, vs in query.items() if k.startswith("expand[") for v in vs}:
            charges = {c["id"]: c for c in self.objects.get("/v1/charges", [])}
            data = [{**r, "charge": charges.get(r["charge"], r["charge"])} for r in data]
        return _page(data, start + size < len(rows), path)


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


def succeeded_intent(
    intent: str, method: str, amount: int, currency: str = "eur"
) -> dict[str, Any]:
    """A succeeded payment intent paid by ``method``, its charge and balance transaction
    expanded (the fake collapses them unless asked), settled in its own currency."""
    balance = {"id": f"txn_{intent}", "object": "balance_transaction", "amount": amount,
               "currency": currency, "exchange_rate": None, "type": "charge"}  # fmt: skip
    charge = {"id": f"ch_{intent}", "object": "charge", "amount": amount, "currency": currency,
              "payment_method_details": {"type": method, method: {}},
              "balance_transaction": balance, "status": "succeeded"}  # fmt: skip
    return {"id": intent, "object": "payment_intent", "amount": amount, "currency": currency,
            "status": "succeeded", "latest_charge": charge}  # fmt: skip


def paid_invoice_event(order: int, customer: str, cents: int, created: int) -> dict[str, Any]:
    """An ``invoice.paid`` event for ``order``: a French consumer's sale, VAT 20 % included
    (see bridge_procs.stripe_sale)."""
    from tests.support.bridge_procs import stripe_sale

    event: dict[str, Any] = json.loads(stripe_sale(order, customer, cents).body)
    event["created"] = created
    invoice = event["data"]["object"]
    invoice["created"] = created
    invoice["status"] = "paid"
    invoice.setdefault("status_transitions", {})["paid_at"] = created
    return event
