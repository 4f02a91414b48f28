"""Sample events with their expected outcome: the golden files, shared by tests and ``mappings check``.

A golden file (``tests/golden/*.json``) names a stored payload, how it arrives (source, event type,
shop domain), what a Stripe or Shopify look-up would answer, and the outcome the built-in mappings
give: commands, a skip reason, or an error. :class:`FixedStripeApi` and :class:`FixedShopifyLookup`
answer look-ups from the file, so mapping a sample needs neither network nor database.

A golden file may name settings its outcome depends on, by their environment names
(``"settings": {"BRIDGE_VAT_REGIME": "franchise"}``): the sample is mapped with the settings in use
overridden by those (:meth:`Sample.settings_over`); :class:`SampleEngines` loads one engine per
distinct set. Files without ``settings`` are mapped with the settings in use as they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.config import Settings
from bridge.inbound.events import InboundEvent, Source, parse_json
from bridge.mapping.engine import MappingEngine, MappingError
from bridge.mapping.enrichment import payment_details_of
from bridge.mapping.shopify_lookup import CUSTOMER_GID, Metafields

SHOP_HEADER = "x-shopify-shop-domain"
# Settings by environment name (BRIDGE_OSS) -> field name (oss)
_SETTING_NAMES = {field.alias or name: name for name, field in Settings.model_fields.items()}


class FixedStripeApi:
    """The Stripe look-ups, answered from fixed data (an in-memory fake of the HTTP one)."""

    def __init__(
        self,
        line_items: dict[str, list[dict[str, Any]]] | None = None,
        sessions_by_payment_intent: dict[str, str] | None = None,
        invoices_by_payment_intent: dict[str, str] | None = None,
        credit_notes_by_refund: dict[str, str] | None = None,
        refunds_by_charge: dict[str, list[dict[str, Any]]] | None = None,
        *,
        payment_intents: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.line_items = line_items or {}
        self.sessions = sessions_by_payment_intent or {}
        self.invoices = invoices_by_payment_intent or {}
        self.credit_notes = credit_notes_by_refund or {}
        self.refunds = refunds_by_charge or {}
        self.payment_intents = payment_intents or {}  # as retrieved, latest_charge expanded
        self.calls: list[str] = []

    @classmethod
    def of(cls, data: dict[str, Any]) -> FixedStripeApi:
        """From a golden file's ``stripe`` object (keys named as this class's arguments)."""
        return cls(**{k: v for k, v in data.items() if not k.startswith("_")})

    def checkout_line_items(self, session_id: str) -> list[dict[str, Any]]:
        self.calls.append(f"line_items:{session_id}")
        return self.line_items.get(session_id, [])

    def checkout_session_for_payment_intent(self, payment_intent: str) -> str | None:
        self.calls.append(f"session:{payment_intent}")
        return self.sessions.get(payment_intent)

    def invoice_for_payment_intent(self, payment_intent: str) -> str | None:
        self.calls.append(f"invoice_payment:{payment_intent}")
        return self.invoices.get(payment_intent)

    def credit_note_for_refund(self, invoice: str, refund: str) -> str | None:
        self.calls.append(f"credit_notes:{invoice}")
        return self.credit_notes.get(refund)

    def charge_refunds(self, charge: str) -> list[dict[str, Any]]:
        self.calls.append(f"refunds:{charge}")
        return self.refunds.get(charge, [])

    def payment_intent_of_invoice(self, invoice: str) -> str | None:
        self.calls.append(f"invoice_payments:{invoice}")
        return next((pi for pi, paid in self.invoices.items() if paid == invoice), None)

    def payment_details(self, payment_intent: str) -> dict[str, Any]:
        """Read from the intent as Stripe gives it; one not given looks like one with no charge."""
        self.calls.append(f"payment_intent:{payment_intent}")
        return payment_details_of(self.payment_intents.get(payment_intent, {}))


class FixedShopifyLookup:
    """The Shopify look-ups, answered from fixed data: a golden file's ``shopify`` object,
    ``{"metafields": {"<customer id>": {"custom.vat_number": "DE…"}}}``; a customer not listed
    does not exist."""

    def __init__(self, metafields: dict[str, dict[str, str]] | None = None) -> None:
        self.metafields = metafields or {}
        self.calls: list[str] = []

    def customer_metafields(
        self, shop: str | None, customer: str, metafields: Metafields
    ) -> dict[str, str | None] | None:
        self.calls.append(f"customer_metafields:{customer}")
        found = self.metafields.get(customer.removeprefix(CUSTOMER_GID))
        if found is None:
            return None
        return {name: found.get(f"{ns}.{key}") for name, (ns, key) in metafields.items()}


@dataclass
class Sample:
    path: Path  # the golden file
    fixture: Path
    source: str
    event_type: str
    shop: str | None = None
    unwrap: str | None = None  # a REST example's wrapper key ("order")
    stripe: dict[str, Any] = field(default_factory=dict)
    shopify: dict[str, Any] | None = None  # what the Shopify look-ups answer (none: no token)
    expected: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)  # by environment name

    @classmethod
    def read(cls, path: Path) -> Sample:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
        settings = data.get("settings") or {}
        if not isinstance(settings, dict) or set(settings) - set(_SETTING_NAMES):
            raise ValueError(
                f"{path.name}: settings must be an object of known settings by their environment "
                f"names (BRIDGE_VAT_REGIME…), not {settings!r}"
            )
        return cls(
            path=path,
            fixture=(path.parent / data["fixture"]).resolve(),
            source=data["source"],
            event_type=data["event_type"],
            shop=data.get("shop"),
            unwrap=data.get("unwrap"),
            stripe=parse_json(text).get("stripe") or {},  # exact: a rate stays a Decimal
            shopify=data.get("shopify"),
            expected=data.get("expected") or {},
            settings={name: str(value) for name, value in settings.items()},
        )

    def settings_over(self, base: Settings) -> Settings:
        """``base`` with this sample's settings on top (``base`` itself when it names none)."""
        if not self.settings:
            return base
        changes = {_SETTING_NAMES[name]: value for name, value in self.settings.items()}
        return Settings(**{**base.model_dump(), **changes})

    def event(self) -> InboundEvent:
        payload = parse_json(self.fixture.read_bytes())
        if self.unwrap:
            payload = payload[self.unwrap]
        headers = {SHOP_HEADER: self.shop} if self.shop else {}
        event_id = str(payload.get("id", self.fixture.stem))
        return InboundEvent(
            Source(self.source),
            event_id,
            self.event_type,
            payload,
            datetime(2026, 1, 1, tzinfo=UTC),
            headers,
        )

    def stripe_api(self) -> FixedStripeApi:
        return FixedStripeApi.of(self.stripe)

    def use_lookups(self, engine: MappingEngine) -> None:
        """Make ``engine`` answer look-ups as this sample says (no Shopify look-up unless given)."""
        engine.stripe_api = self.stripe_api()
        shopify = self.shopify
        engine.shopify_lookup = None if shopify is None else FixedShopifyLookup(**shopify)


class SampleEngines:
    """The engines that map samples: one per distinct set of sample settings over ``base``."""

    def __init__(self, base: Settings) -> None:
        self.base = base
        self._engines: dict[tuple[tuple[str, str], ...], MappingEngine] = {}

    def for_sample(self, sample: Sample) -> MappingEngine:
        """The engine for ``sample``, its look-ups answered from the sample."""
        which = tuple(sorted(sample.settings.items()))
        if which not in self._engines:
            settings = sample.settings_over(self.base)
            self._engines[which] = MappingEngine.load(settings, network=False)
        engine = self._engines[which]
        sample.use_lookups(engine)
        return engine


def outcome_json(engine: MappingEngine, event: InboundEvent) -> dict[str, Any]:
    """The outcome as plain JSON: ``{"commands": [...]}``, ``{"skipped": ...}`` or ``{"error": ...}``."""
    try:
        outcome = engine.map_event(event)
    except MappingError as exc:
        return {"error": _portable(str(exc))}
    if outcome.skipped is not None:
        return {"skipped": outcome.skipped}
    return {
        "commands": json.loads(json.dumps([c.to_json() for c in outcome.commands], default=str))
    }


def _portable(message: str) -> str:
    """Error messages name mapping files; keep only the part under ``mappings/``."""
    marker = "/mappings/"
    while marker in message:
        start = message.index(marker)
        head = message[:start]
        cut = max(head.rfind(" "), head.rfind("("), -1)
        message = message[: cut + 1] + message[start + 1 :]
    return message


def read_samples(directory: Path) -> list[Sample]:
    return [Sample.read(path) for path in sorted(directory.glob("*.json"))]
