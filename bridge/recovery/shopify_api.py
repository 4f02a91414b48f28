"""Shopify's Admin GraphQL API for backfill and reconcile (httpx; version ``SHOPIFY_API_VERSION``).

Orders are read with cursor pagination (``pageInfo { hasNextPage endCursor }``), oldest first, with
their refunds. Shopify limits GraphQL by *query cost*: each answer's ``extensions.cost`` gives the
query's cost and the bucket's ``throttleStatus`` (``currentlyAvailable``, ``restoreRate`` points per
second). Before each request the client waits until the bucket holds the last query's cost, so it
never gets throttled in a steady run; a ``THROTTLED`` error or an HTTP 429 waits for the bucket
(or ``Retry-After``) and tries again. Numbers stay exact: bodies are parsed with ``parse_json``.

Errors: :class:`ShopifyApiError` when the shop can't be read (network, 401/403, GraphQL errors,
repeated 5xx): the backfill stops and can be resumed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx

from bridge.config import ConfigError, Settings
from bridge.inbound.events import parse_json
from bridge.recovery.shopify_query import ORDERS_QUERY

ATTEMPTS = 5


class ShopifyApiError(Exception):
    """The Shopify Admin API could not be read."""


class ShopifyAdmin:
    """One shop's Admin GraphQL endpoint. One per command run."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        attempts: int = ATTEMPTS,
    ) -> None:
        self._client = httpx.Client(
            headers={"X-Shopify-Access-Token": token, "Content-Type": "application/json"},
            timeout=timeout,
            transport=transport,
        )
        self._url = url
        self._sleep = sleep
        self._attempts = attempts  # 1: no retry here (the mapping stage retries the event)
        self._need = Decimal(0)  # points the next query is expected to cost
        self._available: Decimal | None = None
        self._restore = Decimal(50)
        self.calls = 0
        self.throttled_s = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ShopifyAdmin:
        if not settings.shopify_shop_domain:
            raise ConfigError("SHOPIFY_SHOP_DOMAIN: required to read Shopify (backfill, reconcile)")
        token = settings.shopify_admin_token.get_secret_value()
        if not token:
            raise ConfigError("SHOPIFY_ADMIN_TOKEN: required to read Shopify (backfill, reconcile)")
        return cls(settings.shopify_graphql_url, token)

    def close(self) -> None:
        self._client.close()

    def orders(
        self, search: str, *, after: str | None = None, first: int = 50
    ) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
        """Pages of order nodes matching ``search`` (Shopify search syntax), each with its end cursor."""
        cursor = after
        while True:
            data = self.query(ORDERS_QUERY, {"first": first, "after": cursor, "query": search})
            orders = data.get("orders") or {}
            nodes = [n for n in orders.get("nodes") or [] if isinstance(n, dict)]
            info = orders.get("pageInfo") or {}
            cursor = info.get("endCursor") or cursor
            yield nodes, cursor
            if not info.get("hasNextPage") or not nodes:
                return

    def query(self, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        """The ``data`` of one GraphQL query, within the cost limit."""
        last = self._attempts
        for attempt in range(1, last + 1):
            self._wait_for_bucket()
            self.calls += 1
            try:
                response = self._client.post(
                    self._url, json={"query": document, "variables": variables}
                )
            except httpx.HTTPError as exc:
                if attempt == last:
                    raise ShopifyApiError(f"shopify graphql: {type(exc).__name__}") from None
                self._pause(2.0**attempt)
                continue
            if response.status_code in (429, 502, 503, 504, 520) and attempt < last:
                retry_after = response.headers.get("retry-after")
                self._pause(float(retry_after) if retry_after else 2.0**attempt)
                continue
            if response.status_code != 200:
                raise ShopifyApiError(f"shopify graphql: HTTP {response.status_code}")
            body = parse_json(response.content)
            if not isinstance(body, dict):
                raise ShopifyApiError("shopify graphql: the answer is not a JSON object")
            self._note_cost(body.get("extensions"))
            errors = body.get("errors") or []
            if any(_code(e) == "THROTTLED" for e in errors) and attempt < last:
                continue  # the bucket status just read says how long to wait
            if errors:
                raise ShopifyApiError(f"shopify graphql: {_messages(errors)}")
            data = body.get("data")
            if not isinstance(data, dict):
                raise ShopifyApiError("shopify graphql: no data in the answer")
            return data
        raise ShopifyApiError(f"shopify graphql: still throttled after {last} attempt(s)")

    def _note_cost(self, extensions: Any) -> None:
        cost = extensions.get("cost") if isinstance(extensions, dict) else None
        if not isinstance(cost, dict):
            return
        self._need = Decimal(str(cost.get("requestedQueryCost") or 0))
        status = cost.get("throttleStatus") or {}
        if "currentlyAvailable" in status:
            self._available = Decimal(str(status["currentlyAvailable"]))
        if status.get("restoreRate"):
            self._restore = Decimal(str(status["restoreRate"]))
        self._read_at = time.monotonic()

    def _wait_for_bucket(self) -> None:
        if self._available is None or self._available >= self._need:
            return
        refilled = self._available + self._restore * Decimal(str(time.monotonic() - self._read_at))
        if refilled < self._need:
            self._pause(float((self._need - refilled) / self._restore))
        self._available = None

    def _pause(self, seconds: float) -> None:
        self.throttled_s += seconds
        self._sleep(seconds)


def _code(error: Any) -> str | None:
    extensions = error.get("extensions") if isinstance(error, dict) else None
    code = extensions.get("code") if isinstance(extensions, dict) else None
    return str(code) if code else None


def _messages(errors: list[Any]) -> str:
    return "; ".join(str(e.get("message") if isinstance(e, dict) else e) for e in errors)[:500]
