"""Stripe's list endpoints for backfill and reconcile, through the ``stripe`` SDK.

Every list is read page after page (``limit=100``, ``starting_after`` the last id, until
``has_more`` is false), newest first, as Stripe documents. Bodies are parsed from the raw JSON
with :func:`bridge.inbound.events.parse_json`, so amounts and ids stay exact and the objects are
the very dicts a webhook would carry. Requests are paced under ``STRIPE_BACKFILL_RATE`` per second;
the SDK retries connection errors and 429s (``max_network_retries``).

Errors: :class:`StripeListError` when Stripe can't be read (network, 401, 5xx after retries).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import stripe

from bridge.config import ConfigError, Settings
from bridge.inbound.events import parse_json
from bridge.recovery.pacing import Pacer

PAGE = 100


class StripeListError(Exception):
    """Stripe could not be read; the backfill stops and can be resumed."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: its objects, and whether more follow."""

    data: list[dict[str, Any]]
    has_more: bool


class StripeLists:
    """Reads Stripe lists for one account. One per command run; not thread-safe (the pacer)."""

    def __init__(self, api_key: str, base_url: str, *, rate: float, retries: int = 3) -> None:
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": base_url.rstrip("/")},
            max_network_retries=retries,
        )
        self._pacer = Pacer(rate)
        self.calls = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeLists:
        key = settings.stripe_api_key.get_secret_value()
        if not key:
            raise ConfigError("STRIPE_API_KEY: required to read Stripe (backfill, reconcile)")
        return cls(key, settings.stripe_api_base, rate=settings.stripe_backfill_rate)

    def page(self, path: str, params: dict[str, Any], *, starting_after: str | None = None) -> Page:
        """One page of ``GET path`` with ``params`` (nested dicts and lists as Stripe encodes them)."""
        query = {**params, "limit": PAGE}
        if starting_after:
            query["starting_after"] = starting_after
        self._pacer.wait()
        self.calls += 1
        try:
            response = self._client.raw_request("get", path, **query)
        except stripe.StripeError as exc:
            status = getattr(exc, "http_status", None)
            raise StripeListError(f"stripe GET {path}: {type(exc).__name__} ({status})") from None
        body = parse_json(response.body)
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise StripeListError(f"stripe GET {path}: not a list object")
        return Page([o for o in body["data"] if isinstance(o, dict)], bool(body.get("has_more")))

    def iterate(
        self, path: str, params: dict[str, Any], *, starting_after: str | None = None
    ) -> Iterator[tuple[Page, str | None]]:
        """Pages from ``starting_after`` on, each with the cursor that resumes *after* it."""
        cursor = starting_after
        while True:
            page = self.page(path, params, starting_after=cursor)
            if page.data:
                cursor = str(page.data[-1]["id"])
            yield page, cursor
            if not page.has_more or not page.data:
                return
