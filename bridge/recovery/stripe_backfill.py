"""Stripe as a backfill source: the Events API for the last 30 days, object lists before that.

Stripe keeps events for 30 days. For that part of the period the events themselves are stored,
under their own ids (a webhook already received is the same row). Before it, paid invoices,
refunds, credit notes and complete Checkout sessions are listed and wrapped in the event the
webhook would have carried (``invoice.paid``, ``charge.refunded``, ``credit_note.created``,
``checkout.session.completed``), under the id ``backfill_<type>_<object id>``. A refund becomes
its charge (expanded) with that one refund, ``refunded`` only when this refund alone returned the
whole charge: the sense ``charge.refunded``'s mapping gives it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bridge.inbound.events import Source
from bridge.inbound.sources import Delivery
from bridge.recovery.backfill import ORIGIN, Batch, covered_share
from bridge.recovery.jsonbody import dump_body
from bridge.recovery.stripe_api import StripeLists

EVENTS_KEPT = timedelta(days=30)
MARGIN = timedelta(hours=1)  # events close to Stripe's 30-day horizon may be gone already


def invoice_event(invoice: dict[str, Any]) -> dict[str, Any]:
    paid_at = (invoice.get("status_transitions") or {}).get("paid_at")
    return _event("invoice.paid", invoice, paid_at)


def checkout_event(session: dict[str, Any]) -> dict[str, Any]:
    return _event("checkout.session.completed", session)


def credit_note_event(note: dict[str, Any]) -> dict[str, Any]:
    return _event("credit_note.created", note)


def refund_event(refund: dict[str, Any]) -> dict[str, Any] | None:
    charge = refund.get("charge")
    if not isinstance(charge, dict):
        return None  # not expanded: cannot tell which sale it refunds
    whole = refund.get("amount") == charge.get("amount")
    charge = {
        **charge,
        "refunded": bool(whole and refund.get("status") == "succeeded"),
        # This one refund, as if it were the charge's only one: the mapping picks it from the
        # embedded list (complete: has_more false) without asking Stripe.
        "amount_refunded": refund.get("amount"),
        "refunds": {
            "object": "list",
            "data": [{**refund, "charge": charge.get("id")}],
            "has_more": False,
        },
    }
    event = _event("charge.refunded", charge, refund.get("created"))
    event["id"] = f"backfill_charge.refunded_{refund.get('id')}"
    return event


def _event(kind: str, obj: dict[str, Any], created: Any = None) -> dict[str, Any]:
    return {
        "id": f"backfill_{kind}_{obj.get('id')}",
        "object": "event",
        "type": kind,
        "created": created or obj.get("created"),
        "livemode": obj.get("livemode", False),
        "data": {"object": obj},
    }


@dataclass(frozen=True, slots=True)
class _Phase:
    name: str
    path: str
    params: dict[str, Any]
    to_event: Callable[[dict[str, Any]], dict[str, Any] | None]


class StripeBackfill:
    """Batches of Stripe deliveries since a date; the cursor is ``{"phase", "after"}``."""

    name = "stripe"

    def __init__(
        self,
        lists: StripeLists,
        event_types: list[str],
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        use_events: bool = True,  # reconcile lists objects for the whole period instead
    ) -> None:
        self.lists = lists
        self.event_types = event_types
        self.now = now
        self.use_events = use_events

    def phases(self, since: date) -> tuple[list[_Phase], float, float]:
        end = self.now()
        start = datetime(since.year, since.month, since.day, tzinfo=UTC)
        horizon = max(start, end - EVENTS_KEPT + MARGIN) if self.use_events else end
        s, h = int(start.timestamp()), int(horizon.timestamp())
        phases: list[_Phase] = []
        if s < h:
            window = {"created": {"gte": s, "lt": h}}
            phases += [
                _Phase("invoices", "/v1/invoices", {**window, "status": "paid"}, invoice_event),
                _Phase(
                    "refunds", "/v1/refunds", {**window, "expand": ["data.charge"]}, refund_event
                ),
                _Phase("credit_notes", "/v1/credit_notes", window, credit_note_event),
                _Phase(
                    "checkout",
                    "/v1/checkout/sessions",
                    {**window, "status": "complete"},
                    checkout_event,
                ),
            ]
        if self.use_events:
            events = {"created": {"gte": h}, "types": self.event_types}
            phases.append(_Phase("events", "/v1/events", events, lambda e: e))
        return phases, float(s), end.timestamp()

    def batches(self, since: date, resume: dict[str, Any] | None) -> Iterator[Batch]:
        phases, start, end = self.phases(since)
        first = int((resume or {}).get("phase", 0))
        for index, phase in enumerate(phases):
            if index < first:
                continue
            after = (resume or {}).get("after") if index == first else None
            for page, cursor in self.lists.iterate(phase.path, phase.params, starting_after=after):
                deliveries = [
                    _delivery(event) for o in page.data if (event := phase.to_event(o)) is not None
                ]
                oldest = min((float(o.get("created") or end) for o in page.data), default=start)
                # phases run one after the other over the period: share each its slice
                share = (index + covered_share(start, end, oldest, newest_first=True)) / len(phases)
                yield Batch(
                    deliveries, {"phase": index, "after": cursor}, share, seen=len(page.data)
                )


def _delivery(event: dict[str, Any]) -> Delivery:
    return Delivery(
        Source.STRIPE, str(event["id"]), str(event["type"]), dump_body(event), dict(ORIGIN)
    )
