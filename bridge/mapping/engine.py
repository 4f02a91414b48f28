"""The mapping engine: one stored event in, the outbox commands for it out.

Mapping files (``mappings/<source>/<event>.yaml``, overridable per file through
``BRIDGE_MAPPINGS_DIR``) are loaded and validated once; :meth:`MappingEngine.map_event` is then
pure, apart from the Stripe and Shopify look-ups a file asks for with ``enrich:``. Every command's texts are
cleaned on the way out (:mod:`bridge.mapping.sanitize`).

Errors::

    MappingConfigError   a mapping file is invalid (at load: the file, the key, the problem)
    MappingError         this event cannot be mapped: the event is marked failed, with the message
    EnrichmentError      the Stripe API could not be reached: retry the mapping later
    ShopifyLookupError   the Shopify Admin API could not be reached: retry the mapping later
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.visitor import TreeInterpreter

from bridge.config import Settings
from bridge.inbound.events import InboundEvent
from bridge.mapping.builders import Evaluate, build
from bridge.mapping.enrichment import (
    EnrichmentError,
    HttpStripeApi,
    StripeApi,
    refund_of_event,
)
from bridge.mapping.files import BUILTIN_DIR, BUILTIN_PACKAGE, all_mapping_files, file_stem
from bridge.mapping.functions import FunctionError, MappingFunctions
from bridge.mapping.paths import BadValueError, event_roots, output_field
from bridge.mapping.sanitize import sanitized
from bridge.mapping.shopify_lookup import (
    HttpShopifyLookup,
    ShopifyLookup,
    customer_gid,
    metafields_of,
)
from bridge.mapping.spec import (
    Deployment,
    Expr,
    MappingConfigError,
    MappingError,
    MappingSpec,
    load_spec,
)
from bridge.outbox.commands import Command
from bridge.tax.vies import registry_from_settings

__all__ = [
    "EnrichmentError",
    "MappingConfigError",
    "MappingEngine",
    "MappingError",
    "MappingOutcome",
]


@dataclass(frozen=True)
class MappingOutcome:
    """The commands for one event; ``skipped`` says why there are none, when that is intended."""

    commands: list[Command] = field(default_factory=list)
    skipped: str | None = None


@dataclass(frozen=True, slots=True)
class _Loaded:
    """A spec (its expressions compiled once, by ``jmespath.compile``) and its interpreter.

    The interpreter is JMESPath's own, with the file's functions (``Options(custom_functions=…)``),
    made once per file: ``ParsedResult.search`` would make a new one per evaluation and lose the
    cache of its node-type dispatch each time, which doubled the mapping time of a large order.
    """

    spec: MappingSpec
    interpreter: TreeInterpreter

    @classmethod
    def of(cls, spec: MappingSpec, zone: ZoneInfo) -> _Loaded:
        functions = MappingFunctions(zone, spec.tables, spec.vat_rates)
        return cls(spec, TreeInterpreter(jmespath.Options(custom_functions=functions)))


class MappingEngine:
    """Every effective mapping file, loaded once; maps events of the types they cover."""

    def __init__(
        self,
        specs: dict[tuple[str, str], MappingSpec],
        zone: ZoneInfo,
        stripe_api: StripeApi | None = None,
        *,
        deployment: Deployment | None = None,
        shopify_lookup: ShopifyLookup | None = None,
    ) -> None:
        deployment = deployment or Deployment()
        self._loaded = {
            key: _Loaded.of(replace(spec, deployment=deployment), zone)
            for key, spec in specs.items()
        }
        self.stripe_api = stripe_api
        self.shopify_lookup = shopify_lookup

    @classmethod
    def load(
        cls, settings: Settings, *, stripe_api: StripeApi | None = None, network: bool = True
    ) -> MappingEngine:
        """Load and validate every mapping file; raise :class:`MappingConfigError` on the first bad one.

        Without ``stripe_api``, one talking to ``STRIPE_API_BASE`` is made when ``STRIPE_API_KEY``
        is set (and ``network`` is true); otherwise mappings that need Stripe look-ups fail the
        event with a clear message. Likewise a Shopify look-up is made when ``SHOPIFY_ADMIN_TOKEN``
        and ``SHOPIFY_SHOP_DOMAIN`` are set; without one, ``customer_metafields`` is null.
        """
        user_dir = settings.mappings_dir
        if user_dir is not None and not user_dir.is_dir():
            raise MappingConfigError(f"BRIDGE_MAPPINGS_DIR: {user_dir} is not a directory")
        found = all_mapping_files(user_dir)
        if not found:
            raise MappingConfigError(
                f"no mapping file found (built-in: {BUILTIN_DIR or BUILTIN_PACKAGE + ' not installed'}"
                f"; BRIDGE_MAPPINGS_DIR: {user_dir or 'not set'}): every event would be ignored"
            )
        specs = {key: load_spec(path, user_dir) for key, path in found.items()}
        if network and stripe_api is None and settings.stripe_api_key.get_secret_value():
            stripe_api = HttpStripeApi(
                settings.stripe_api_base, settings.stripe_api_key.get_secret_value()
            )
        deployment = Deployment(
            vat_regime=settings.vat_regime,
            oss=settings.oss,
            zero_vat_mention=settings.zero_vat_mention.strip() or None,
            line_nature=settings.line_nature,
            registry=registry_from_settings(settings) if network else None,
        )
        shopify = HttpShopifyLookup.from_settings(settings) if network else None
        return cls(
            specs, settings.timezone, stripe_api, deployment=deployment, shopify_lookup=shopify
        )

    @property
    def files(self) -> dict[tuple[str, str], Path]:
        return {key: loaded.spec.path for key, loaded in self._loaded.items()}

    def handles(self, source: str, event_type: str) -> bool:
        return (str(source), file_stem(event_type)) in self._loaded

    def map_event(self, event: InboundEvent) -> MappingOutcome:
        """The commands for ``event`` (an empty outcome with ``skipped`` set if none are due)."""
        loaded = self._loaded.get((str(event.source), file_stem(event.event_type)))
        if loaded is None:
            return MappingOutcome([], f"no mapping for {event.source} {event.event_type}")
        spec, visit = loaded.spec, loaded.interpreter.visit

        def ev(expr: Expr, data: Any) -> Any:
            try:
                return visit(expr.parsed.parsed, data)
            except FunctionError as exc:
                if exc.expected is not None and exc.has_value:
                    raise BadValueError(expr, data, exc.expected, exc.value) from None
                raise MappingError(f"{expr.where}: {exc}") from None
            except (JMESPathError, TypeError, ValueError, ArithmeticError) as exc:
                raise MappingError(f"{expr.where}: {exc}") from None

        try:
            return self._map(spec, ev, event)
        except BadValueError as exc:  # a value of the event, not of a line: name its field and path
            field = output_field(exc.expr)
            raise MappingError(
                f"{spec.path}: {exc.describe(field, event_roots(spec.obj))}"
            ) from None

    def _map(self, spec: MappingSpec, ev: Evaluate, event: InboundEvent) -> MappingOutcome:
        payload = event.payload
        obj = payload if spec.obj is None else ev(spec.obj, payload)
        if not isinstance(obj, dict):
            raise MappingError(f"{spec.path}: object: the event holds no object there")
        ctx: dict[str, Any] = {"o": obj, "event": payload, "shop": event.shop_domain}
        for rule in spec.skip:
            if _truthy(ev(rule.when, ctx)):
                return MappingOutcome([], rule.message)
        for rule in spec.fail:
            if _truthy(ev(rule.when, ctx)):
                raise MappingError(f"{spec.path}: {rule.message}")
        for name, expr in spec.enrich.items():
            ctx[name] = self._enrich(spec, name, ev(expr, ctx), event.shop_domain)
        for rule in spec.skip_found:
            if _truthy(ev(rule.when, ctx)):
                return MappingOutcome([], rule.message)
        outcome = build(spec, ev, ctx)
        try:
            commands = [sanitized(command) for command in outcome.commands]
        except MappingError as exc:
            raise MappingError(f"{spec.path}: {exc}") from None
        return MappingOutcome(commands, outcome.skipped)

    def _enrich(self, spec: MappingSpec, name: str, argument: Any, shop: str | None) -> Any:
        if argument in (None, "", False):
            return None
        if name == "customer_metafields":
            return self._customer_metafields(spec, argument, shop)
        if name == "charge_refund":  # [charge, amount_refunded, previous, embedded refunds]
            if not isinstance(argument, list) or len(argument) != 4:
                raise MappingError(f"{spec.path}: enrich.{name}: expected a list of 4 values")
            charge, amount, previous, embedded = argument
            if isinstance(embedded, dict) and embedded.get("has_more") is False:
                refunds = embedded.get("data")  # versions before basil embed them all
                if isinstance(refunds, list) and refunds:
                    return refund_of_event(refunds, str(charge), amount, previous)
            argument = charge
        api = self.stripe_api
        if api is None:
            if name in _OPTIONAL:
                return None
            raise MappingError(f"{spec.path}: enrich.{name} needs STRIPE_API_KEY to call Stripe")
        match name:
            case "checkout_line_items":
                return api.checkout_line_items(str(argument))
            case "invoice_of_payment":
                return api.invoice_for_payment_intent(str(argument))
            case "charge_refund":
                refunds = api.charge_refunds(str(argument))
                return refund_of_event(refunds, str(argument), amount, previous)
            case "credit_note_of_refund":
                if not isinstance(argument, list) or len(argument) != 2 or not all(argument):
                    return None  # [invoice id, refund id]; nothing to look for without both
                return api.credit_note_for_refund(str(argument[0]), str(argument[1]))
            case "payment_details":  # a payment intent, or [payment intent or null, invoice]
                intent = argument
                if isinstance(argument, list):
                    intent, invoice = (*argument, None, None)[:2]
                    if not intent and invoice:
                        intent = api.payment_intent_of_invoice(str(invoice))
                return api.payment_details(str(intent)) if intent else None
        return api.checkout_session_for_payment_intent(str(argument))

    def _customer_metafields(self, spec: MappingSpec, customer: Any, shop: str | None) -> Any:
        """The customer's metafields named in the file's tables; null without a Shopify look-up."""
        if self.shopify_lookup is None:
            return None
        metafields = metafields_of(spec.tables)
        if not metafields:
            return None
        try:
            gid = customer_gid(customer)
        except ValueError as exc:
            raise MappingError(f"{spec.path}: enrich.customer_metafields: {exc}") from None
        return self.shopify_lookup.customer_metafields(shop, gid, metafields)


# Look-ups a mapping can do without: with no STRIPE_API_KEY their value is null. The shared
# refund key still credits a refund once without its credit note; an invoice falls back on what
# the event says about its payment mode, and carries no euro equivalent.
_OPTIONAL = frozenset(("credit_note_of_refund", "payment_details"))


def _truthy(value: Any) -> bool:
    """JMESPath truth: false, null, "", [] and {} are false; 0 is true (as in JMESPath)."""
    if value is None or value is False:
        return False
    return not isinstance(value, str | list | dict) or bool(value)
