"""After an unknown outcome: is the object the earlier attempt may have created there already?

Creates carry ``api_id``, so the object is searched by it (exact search, documented); invoices come
with their lines and settlements. Settlements have no ``api_id``: the invoice's settlements are
read and compared instead. Other commands are not looked up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.facturation.errors import RateInfo
from bridge.facturation.protocol import ApiAnswer, FacturationApi, Resource
from bridge.facturation.totals import decimal_or_none
from bridge.outbox.commands import CommandKind, api_id_for
from bridge.outbox.queue import Claimed

NO_RATE = RateInfo(None, None)


@dataclass(frozen=True, slots=True)
class Found:
    """A lookup's answer, shaped like an API answer so it goes through the same failure handling."""

    data: dict[str, Any] | None
    status: int = 200
    rate: RateInfo = NO_RATE


@dataclass(frozen=True, slots=True)
class Lookup:
    """One read (``call``) and how its answer becomes the object found (``found``), or ``None``."""

    call: Callable[[], ApiAnswer]
    found: Callable[[Any], dict[str, Any] | None]


def lookup_for(
    api: FacturationApi, c: Claimed, body: dict[str, Any], resource: Resource | None
) -> Lookup | None:
    """How to look up what ``c`` may have created (``resource``: what its create makes)."""
    if resource is not None:
        api_id = api_id_for(c.key)
        return Lookup(lambda: Found(api.find_by_api_id(resource, api_id)), _as_record)
    if c.kind is CommandKind.CREATE_SETTLEMENT:
        invoice_id = int(body["invoice_id"])
        return Lookup(
            lambda: api.get_invoice(invoice_id), lambda data: matching_settlement(data, body)
        )
    return None


def _as_record(data: Any) -> dict[str, Any] | None:
    return data if isinstance(data, dict) else None


def matching_settlement(invoice: Any, body: dict[str, Any]) -> dict[str, Any] | None:
    """The settlement of ``invoice`` that ``body`` describes, if it was recorded already."""
    if not isinstance(invoice, dict):
        return None
    total = decimal_or_none(body.get("total"))
    for settlement in invoice.get("settlements") or []:
        if not isinstance(settlement, dict):
            continue
        if (
            decimal_or_none(settlement.get("total")) == total
            and str(settlement.get("paid_on")) == str(body.get("paid_on"))
            and settlement.get("payment_ref") == body.get("payment_ref")
        ):
            return settlement
    return None
