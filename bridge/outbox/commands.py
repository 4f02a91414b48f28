"""Commands: what the mapping stage asks the outbox to do in Facturation.pro.

A command is plain data. The mapping stage produces them from one stored event; the outbox stores
them under their idempotency key (a second mapping of the same sale adds nothing); the worker turns
each into one API call, or into none when the object already exists.

Keys are derived from the *source object*, never from the webhook event id: ``invoice.paid`` and
``invoice.payment_succeeded`` for one Stripe invoice yield the same ``stripe:invoice:in_…`` key.

``refs`` fill payload fields from commands done earlier: ``{"customer_id": "customer:stripe:cus_1"}``
puts that command's remote id into ``payload["customer_id"]``; ``"invoice:…#invoice_ref"`` takes the
``invoice_ref`` field of its stored result instead. When the payload already holds a string with
``{}`` at that field, the value is formatted into it (``"Avoir sur la facture {}"``). A field name
ending in ``?`` (``"invoice:…#vat_country?"``) is optional: the field is left out when the result
has no such value. Every ref is also a
dependency: the command waits until the referenced command is done, even if it does not exist yet.

The worker adds ``api_id`` (:func:`api_id_for` the key) and ``api_custom`` (the key) to every create;
mappings never set them. ``customer.ensure`` and ``customer.update`` carry ``meta["binding_key"]``, the
source customer (``stripe:cus_…``, ``shopify:<shop>:<id>``) bound to a Facturation.pro customer id.
``meta["expected_total_with_vat"]`` (a decimal string) and ``meta["currency"]`` let the worker check the
invoice the API computed against the amount charged.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

API_ID_BITS = 63


class CommandKind(enum.StrEnum):
    """What a command makes in Facturation.pro, with the API call that makes it.

    Renamed in revision 0002 (the stored values too): ``invoice.refund`` became
    ``credit_note.full``, ``credit_note.create`` became ``credit_note.partial`` and
    ``payment.record`` became ``settlement.create``.
    """

    ENSURE_CUSTOMER = "customer.ensure"  # bound? nothing : POST customers.json (binds the id)
    UPDATE_CUSTOMER = "customer.update"  # PATCH customers/ID.json (refs customer_id)
    CREATE_INVOICE = "invoice.create"  # POST invoices.json (refs customer_id)
    FULL_CREDIT_NOTE = "credit_note.full"  # POST invoices/ID/refund.json (refs invoice_id)
    PARTIAL_CREDIT_NOTE = "credit_note.partial"  # POST invoices.json, negative lines
    CREATE_SETTLEMENT = "settlement.create"  # POST invoices/ID/settlements.json (refs invoice_id)
    SEND_EMAIL = "invoice.email"  # POST emails.json?bill_id=ID (refs invoice_id)


class Priority(enum.IntEnum):
    """Lower runs first when the quota is short: live sales before backfills."""

    LIVE = 0
    UPDATE = 5
    BACKFILL = 10


@dataclass(frozen=True, slots=True)
class Command:
    kind: CommandKind
    key: str  # idempotency key, unique across the outbox, readable (sent as api_custom)
    payload: dict[str, Any] = field(default_factory=dict)  # the API body; money as strings
    refs: dict[str, str] = field(default_factory=dict)  # payload field -> "key" or "key#field"
    depends_on: tuple[str, ...] = ()  # further keys that must be done first
    meta: dict[str, Any] = field(default_factory=dict)  # not sent: expected totals, source ids…
    priority: Priority = Priority.LIVE

    @property
    def api_id(self) -> int:
        return api_id_for(self.key)

    def dependency_keys(self) -> tuple[str, ...]:
        """Every key this command waits for: its refs' keys, then ``depends_on``, no repeats."""
        keys = [ref.partition("#")[0] for ref in self.refs.values()]
        keys.extend(self.depends_on)
        return tuple(dict.fromkeys(keys))

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "key": self.key,
            "api_id": self.api_id,
            "payload": self.payload,
            "refs": self.refs,
            "depends_on": list(self.dependency_keys()),
            "meta": self.meta,
            "priority": int(self.priority),
        }


def content_digest(payload: Any) -> str:
    """16 hex digits of ``payload``'s canonical JSON: a key part for commands keyed by content
    (``customer-update:<binding>:<digest>``), so that the same content is one command."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def api_id_for(key: str) -> int:
    """The 63-bit integer sent as ``api_id`` for ``key``: stable across processes and versions."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << API_ID_BITS) - 1)
