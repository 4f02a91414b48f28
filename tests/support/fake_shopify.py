"""A small Shopify Admin GraphQL API over real HTTP: orders with refunds, cursors and query cost.

``POST /admin/api/<version>/graphql.json`` with ``X-Shopify-Access-Token``. It answers the
``orders(first:, after:, query:, sortKey: CREATED_AT)`` connection: ``query`` understands
``updated_at:>='<iso>'``, and ``webhookSubscriptions(first:)`` (nodes ``{id topic uri}``); pages carry ``pageInfo { hasNextPage endCursor }`` (opaque cursors). Every
answer has ``extensions.cost`` as Shopify documents it: ``requestedQueryCost`` (here 2 + one point
per order asked for), ``actualQueryCost`` and ``throttleStatus`` (``maximumAvailable``,
``currentlyAvailable``, ``restoreRate`` points per second); a query costing more than is available
gets a ``THROTTLED`` error and no data, as the real API does.

It also answers ``customer(id:)`` with aliased ``metafield(namespace:, key:) { value }`` fields
(``metafields``: values by customer gid and ``namespace.key``; ``customer: null`` for a customer it
does not know, as Shopify does). ``failures`` answers that many next requests with HTTP 503.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.procs import free_port

TOKEN = "shpat_fake_token"
SHOP = "fake-shop.myshopify.com"
_SINCE = re.compile(r"updated_at:>='([^']+)'")
_METAFIELD = re.compile(r"(\w+): metafield\(namespace: \$(\w+), key: \$(\w+)\)")


@dataclass
class FakeShopify:
    token: str = TOKEN
    url: str = ""
    orders: list[dict[str, Any]] = field(default_factory=list)  # GraphQL order nodes
    subscriptions: list[dict[str, Any]] = field(default_factory=list)  # {id, topic, uri}
    metafields: dict[str, dict[str, str]] = field(default_factory=dict)  # gid -> ns.key -> value
    queries: list[dict[str, Any]] = field(default_factory=list)  # customer queries' variables
    failures: int = 0  # the next N requests get HTTP 503
    maximum: float = 1000.0
    restore_rate: float = 50.0
    available: float = 1000.0
    refilled_at: float = field(default_factory=time.monotonic)
    calls: int = 0
    throttled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        variables = body.get("variables") or {}
        first = int(variables.get("first") or 10)
        cost = 2 + first
        with self.lock:
            self.calls += 1
            now = time.monotonic()
            self.available = min(
                self.maximum, self.available + (now - self.refilled_at) * self.restore_rate
            )
            self.refilled_at = now
            if cost > self.available:
                self.throttled += 1
                return {
                    "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                    "extensions": {"cost": self._cost(cost, 0)},
                }
            if "webhookSubscriptions(" in str(body.get("query")):
                page = self.subscriptions[:first]
                return {
                    "data": {
                        "webhookSubscriptions": {
                            "nodes": page,
                            "pageInfo": {
                                "hasNextPage": len(self.subscriptions) > first,
                                "endCursor": None,
                            },
                        }
                    },
                    "extensions": {"cost": self._cost(cost, 2 + len(page))},
                }
            if "customer(id:" in str(body.get("query")):
                return self._customer(str(body["query"]), variables)
            if "orders(" not in str(body.get("query")):
                return {"errors": [{"message": "unsupported query"}]}
            nodes, info = self._orders(first, variables.get("after"), variables.get("query"))
            self.available -= 2 + len(nodes)
            return {
                "data": {"orders": {"nodes": nodes, "pageInfo": info}},
                "extensions": {"cost": self._cost(cost, 2 + len(nodes))},
            }

    def _customer(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        self.queries.append(variables)
        known = self.metafields.get(str(variables.get("id")))
        customer = None
        if known is not None:
            customer = {}
            for alias, namespace, key in _METAFIELD.findall(query):
                value = known.get(f"{variables[namespace]}.{variables[key]}")
                customer[alias] = None if value is None else {"value": value}
        self.available -= 1
        return {"data": {"customer": customer}, "extensions": {"cost": self._cost(1, 1)}}

    def _cost(self, requested: int, actual: int) -> dict[str, Any]:
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": self.maximum,
                "currentlyAvailable": int(self.available),
                "restoreRate": self.restore_rate,
            },
        }

    def _orders(
        self, first: int, after: str | None, search: str | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        rows = sorted(self.orders, key=lambda o: (o["createdAt"], o["id"]))
        if search and (match := _SINCE.search(search)):
            since = datetime.fromisoformat(match.group(1))
            rows = [o for o in rows if datetime.fromisoformat(o["updatedAt"]) >= since]
        start = int(base64.b64decode(after).decode()) if after else 0
        page = rows[start : start + first]
        end = start + len(page)
        cursor = base64.b64encode(str(end).encode()).decode()
        return page, {"hasNextPage": end < len(rows), "endCursor": cursor if page else after}


def _handler(fake: FakeShopify) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if not re.fullmatch(r"/admin/api/\d{4}-\d{2}/graphql\.json", self.path):
                self._send(404, {"errors": "Not Found"})
                return
            if self.headers.get("X-Shopify-Access-Token") != fake.token:
                self._send(401, {"errors": "[API] Invalid API key or access token"})
                return
            with fake.lock:
                failing, fake.failures = fake.failures > 0, max(0, fake.failures - 1)
            if failing:
                self._send(503, {"errors": "Service Unavailable"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            self._send(200, fake.answer(json.loads(self.rfile.read(length))))

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextlib.contextmanager
def fake_shopify_server(fake: FakeShopify | None = None) -> Iterator[FakeShopify]:
    fake = fake or FakeShopify()
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


def _money(amount: Decimal | str, currency: str = "EUR") -> dict[str, Any]:
    money = {"amount": str(amount), "currencyCode": currency}
    return {"shopMoney": money, "presentmentMoney": dict(money)}


def order_node(order_id: int, amount: str, at: datetime, *, customer: int = 7001) -> dict[str, Any]:
    """A paid order of one line at ``amount`` EUR, VAT 20 % included."""
    total = Decimal(amount)
    tax = (total - total / Decimal("1.2")).quantize(Decimal("0.01"))
    return {
        "id": f"gid://shopify/Order/{order_id}",
        "name": f"#{order_id}",
        "email": f"client{customer}@example.com",
        "test": False,
        "createdAt": at.isoformat(),
        "updatedAt": at.isoformat(),
        "processedAt": at.isoformat(),
        "cancelledAt": None,
        "currencyCode": "EUR",
        "presentmentCurrencyCode": "EUR",
        "taxesIncluded": True,
        "displayFinancialStatus": "PAID",
        "paymentGatewayNames": ["shopify_payments"],
        "totalPriceSet": _money(total),
        "customer": {
            "id": f"gid://shopify/Customer/{customer}",
            "firstName": "Camille",
            "lastName": f"Client {customer}",
            "email": f"client{customer}@example.com",
        },
        "billingAddress": {
            "firstName": "Camille",
            "lastName": f"Client {customer}",
            "company": None,
            "phone": None,
            "address1": "1 rue de la Paix",
            "address2": None,
            "zip": "75002",
            "city": "Paris",
            "countryCodeV2": "FR",
        },
        "lineItems": {
            "nodes": [
                {
                    "id": f"gid://shopify/LineItem/{order_id}1",
                    "name": "Affiche",
                    "title": "Affiche",
                    "quantity": 1,
                    "isGiftCard": False,
                    "originalUnitPriceSet": _money(total),
                    "discountAllocations": [],
                    "taxLines": [{"rate": 0.2, "priceSet": _money(tax)}],
                }
            ]
        },
        "shippingLines": {"nodes": []},
        "refunds": [],
    }


def refund(order: dict[str, Any], refund_id: int, amount: str, at: datetime) -> None:
    """Refund ``amount`` of ``order``'s line (VAT included), as Shopify records it; updates it."""
    total = Decimal(amount)
    tax = (total - total / Decimal("1.2")).quantize(Decimal("0.01"))
    order["refunds"].append(
        {
            "id": f"gid://shopify/Refund/{refund_id}",
            "createdAt": at.isoformat(),
            "note": None,
            "refundLineItems": {
                "nodes": [
                    {
                        "quantity": 1,
                        "subtotalSet": _money(total),
                        "totalTaxSet": _money(tax),
                        "lineItem": {"name": "Affiche", "title": "Affiche", "taxLines": [{"rate": 0.2}]},
                    }
                ]
            },
            "refundShippingLines": {"nodes": []},
            "orderAdjustments": {"nodes": []},
            "transactions": {
                "nodes": [
                    {"kind": "REFUND", "status": "SUCCESS", "gateway": "shopify_payments", "amountSet": _money(total)}
                ]
            },
        }
    )  # fmt: skip
    order["updatedAt"] = at.isoformat()
    paid = Decimal(order["totalPriceSet"]["shopMoney"]["amount"])
    order["displayFinancialStatus"] = "REFUNDED" if total >= paid else "PARTIALLY_REFUNDED"
