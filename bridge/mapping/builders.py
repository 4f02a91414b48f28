"""From one event's evaluated expressions to commands, one builder per mapping ``kind``.

``sale`` -> ``customer.ensure`` + ``invoice.create``; ``credit_note`` -> ``credit_note.partial``
(negative lines for exactly what was refunded); ``refund`` -> ``credit_note.full`` (full credit note),
or, with ``charged`` (the amount given back), ``credit_note.partial`` split like the sale;
``cancel`` -> ``credit_note.full`` that waits for the invoice like any credit note;
``customer_update`` -> ``customer.update``. Keys and conventions: :mod:`bridge.outbox.commands`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

from bridge.facturation.totals import compute_totals, round_cent
from bridge.mapping.functions import FunctionError, country, currency_exponent, dec, vat
from bridge.mapping.mentions import FIELD as MENTION_FIELD
from bridge.mapping.mentions import FRANCHISE
from bridge.mapping.money import ZERO, MoneyError, SaleLine, build_items
from bridge.mapping.paths import BadValueError, event_roots, item_path, output_field
from bridge.mapping.spec import Expr, LineSpec, MappingError, MappingSpec
from bridge.mapping.taxing import (
    apply_case,
    inherited_refs,
    legal_identity,
    legal_update,
    tax_case,
)
from bridge.outbox.commands import Command, CommandKind, Priority, content_digest
from bridge.tax.nature import NatureError, line_nature

Evaluate = Callable[[Expr, Any], Any]


class Outcome:
    """Commands, or the reason nothing is to be done."""

    def __init__(self, commands: list[Command], skipped: str | None = None) -> None:
        self.commands = commands
        self.skipped = skipped


def build(spec: MappingSpec, ev: Evaluate, ctx: dict[str, Any]) -> Outcome:
    return _BUILDERS[spec.kind](spec, ev, ctx)


def _text(spec: MappingSpec, ev: Evaluate, ctx: Any, name: str) -> str:
    value = ev(spec.exprs[name], ctx)
    if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
        raise BadValueError(spec.exprs[name], ctx, "text", value)
    return str(value)


def _amount(
    expr: Expr | None,
    ev: Evaluate,
    ctx: Any,
    default: Any = 0,
    *,
    required: bool = False,
    convert: Callable[[Any], Any] = dec,
) -> Any:
    """``expr``'s value, converted (a Decimal by default); a bad one, or a missing ``required``
    one, is a :class:`BadValueError` (the caller names the field and the event path)."""
    if expr is None:
        return convert(default)
    value = ev(expr, ctx)
    if value is None and required:
        raise BadValueError(expr, ctx, "an amount", value)
    try:
        return convert(value)
    except FunctionError as exc:
        raise BadValueError(expr, ctx, exc.expected or "a decimal", value) from None


def _fields(exprs: Mapping[str, Expr], ev: Evaluate, ctx: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, expr in exprs.items():
        value = ev(expr, ctx)
        if value is None or value == "":
            continue
        out[name] = str(value) if isinstance(value, Decimal) else value
    return out


def customer_payload(
    spec: MappingSpec, ev: Evaluate, ctx: Any, *, infer_individual: bool = True
) -> dict[str, Any]:
    payload = _fields(spec.customer_fields, ev, ctx)
    if "country" in payload:
        payload["country"] = country(payload["country"])
        if payload["country"] is None:
            del payload["country"]
    if infer_individual and "individual" not in payload:
        payload["individual"] = not (payload.get("company_name") or payload.get("vat_number"))
    return payload


def named(customer: dict[str, Any], binding: str) -> dict[str, Any]:
    """A customer Facturation.pro accepts has a company name or a last name: when the source gave
    neither, the e-mail stands for the name (then the first name, then the source's customer)."""
    if customer.get("company_name") or customer.get("last_name"):
        return customer
    fallback = customer.get("email") or customer.get("first_name") or f"Client {binding}"
    return {**customer, "last_name": str(fallback)}


def sale_lines(spec: MappingSpec, ev: Evaluate, ctx: dict[str, Any]) -> list[SaleLine]:
    """Every charged line, with its gross (VAT and discounts included), VAT and rate."""
    out: list[SaleLine] = []
    for group in spec.lines:
        items = ev(group.each, ctx)
        if items is None:
            continue
        if not isinstance(items, list):
            raise MappingError(f"{group.each.where}: expected a list, got {type(items).__name__}")
        for item in items:
            try:
                line = _sale_line(spec, group, ev, {**ctx, "line": item})
            except BadValueError as exc:  # name the invoice line, its field and the event path
                roots = event_roots(spec.obj)
                roots["line"] = item_path(group.each, ctx, item, roots)
                field = f"lines[{len(out)}].{output_field(exc.expr)}"
                raise MappingError(f"{spec.path}: {exc.describe(field, roots)}") from None
            if line is not None:
                out.append(line)
    return out


def _sale_line(
    spec: MappingSpec, group: LineSpec, ev: Evaluate, ctx: dict[str, Any]
) -> SaleLine | None:
    def get(name: str, default: Any = None) -> Any:
        expr = group.exprs.get(name)
        return default if expr is None else ev(expr, ctx)

    exprs = group.exprs
    amount = _amount(exprs["amount"], ev, ctx, required=True)
    discount = _amount(exprs.get("discount"), ev, ctx, 0)
    tax = _amount(exprs.get("tax"), ev, ctx, 0)
    quantity = _amount(exprs.get("quantity"), ev, ctx, 1)
    rate = Decimal(_amount(exprs.get("rate"), ev, ctx, 0, convert=vat))
    if quantity == 0 and amount == 0:
        return None
    gross = amount - discount if bool(get("includes_tax", False)) else amount - discount + tax
    if tax == 0 and round_cent((gross - tax) * rate) != 0:
        rate = Decimal("0.000")  # a rate was named but no VAT charged (exempt customer or line)
    title = get("title")
    fields = _fields(group.fields, ev, ctx)
    nature = get("nature")
    try:
        kind, code = line_nature(nature, spec.deployment.line_nature)
    except NatureError as exc:
        raise BadValueError(exprs["nature"], ctx, str(exc), nature) from None
    if code is not None:
        fields["nature"] = code
    return SaleLine(
        title=str(title) if title not in (None, "") else "—",
        quantity=quantity if quantity > 0 else Decimal(1),
        gross=gross,
        tax=tax,
        rate=rate,
        fields=fields,
        kind=kind,
    )


def regime_lines(spec: MappingSpec, lines: list[SaleLine]) -> list[SaleLine]:
    """Under the franchise en base every line is at 0 %, for what the customer paid (its gross)."""
    if spec.deployment.vat_regime != FRANCHISE:
        return lines
    return [replace(line, tax=ZERO, rate=ZERO) for line in lines]


def _items(
    spec: MappingSpec, lines: list[SaleLine], currency: str, *, negate: bool
) -> list[dict[str, Any]]:
    lines = regime_lines(spec, lines)
    try:
        return build_items(
            lines,
            negate=negate,
            currency_unit=Decimal(1).scaleb(-currency_exponent(currency)),
            rounding_title=spec.rounding_title,
            vat_gap_title=spec.vat_gap_title,
            keep_source_vat=spec.keep_source_vat or negate,
        )
    except MoneyError as exc:
        raise MappingError(f"{spec.path}: {exc}") from None


def _charged(spec: MappingSpec, ev: Evaluate, ctx: Any, lines: list[SaleLine]) -> Decimal:
    charged: Decimal = _amount(spec.exprs["charged"], ev, ctx, required=True)
    total = sum((line.gross for line in lines), Decimal(0))
    if total != charged:
        raise MappingError(
            f"{spec.path}: lines add up to {total} including VAT but {charged} was charged"
        )
    return charged


def _sale(spec: MappingSpec, ev: Evaluate, ctx: dict[str, Any]) -> Outcome:
    binding = _text(spec, ev, ctx, "binding_key")
    customer = named(legal_identity(customer_payload(spec, ev, ctx)), binding)
    lines = sale_lines(spec, ev, ctx)
    charged = _charged(spec, ev, ctx, lines)
    if spec.skip_zero and charged == 0:
        return Outcome([], "zero-amount invoice (a trial or a 100 % discount): not invoiced")
    payload = _fields(spec.invoice_fields, ev, ctx)
    payload["currency"] = _text(spec, ev, ctx, "currency").upper()
    case, lines = tax_case(spec, ev, ctx, customer, lines, currency=payload["currency"])
    apply_case(case, payload, customer)
    payload["items"] = _items(spec, lines, payload["currency"], negate=False)
    customer_key = f"customer:{binding}"
    invoice_key = _text(spec, ev, ctx, "key")
    legal = legal_update(customer_key, binding, customer)
    commands = [
        Command(CommandKind.ENSURE_CUSTOMER, customer_key, customer, meta={"binding_key": binding}),
        *([] if legal is None else [legal]),
        Command(
            CommandKind.CREATE_INVOICE,
            invoice_key,
            payload,
            refs={"customer_id": customer_key},
            depends_on=() if legal is None else (legal.key,),
            meta=_money_meta(payload, charged),
        ),
    ]
    if spec.send_email:
        # emails.json?bill_id=ID: an empty body sends to the customer's address, with the
        # account's "Confirmation de règlement" template for a paid invoice.
        commands.append(
            Command(
                CommandKind.SEND_EMAIL, f"email:{invoice_key}", {}, refs={"bill_id": invoice_key}
            )
        )
    return Outcome(commands)


def _state_mention(spec: MappingSpec, payload: dict[str, Any]) -> None:
    """Under the franchise en base, a credit note says why it carries no VAT (art. 293 B)."""
    if spec.deployment.vat_regime == FRANCHISE:
        payload[MENTION_FIELD] = spec.mentions[FRANCHISE]


def _money_meta(payload: Mapping[str, Any], expected: Decimal) -> dict[str, Any]:
    computed = compute_totals(payload["items"]).total_with_vat
    if computed != expected:  # build_items guarantees it; a difference is a bug, said loudly
        raise MappingError(f"invoice computes to {computed}, expected {expected}")
    return {"expected_total_with_vat": str(expected), "currency": payload["currency"]}


def _credit_note(spec: MappingSpec, ev: Evaluate, ctx: dict[str, Any]) -> Outcome:
    lines = sale_lines(spec, ev, ctx)
    refunded = _charged(spec, ev, ctx, lines)
    if refunded == 0:
        return Outcome([], "nothing refunded (amount 0)")
    invoice_key = _text(spec, ev, ctx, "invoice_key")
    payload = _fields(spec.invoice_fields, ev, ctx)
    payload["currency"] = _text(spec, ev, ctx, "currency").upper()
    payload["items"] = _items(spec, lines, payload["currency"], negate=True)
    _state_mention(spec, payload)
    payload["information"] = spec.information
    return Outcome(
        [
            Command(
                CommandKind.PARTIAL_CREDIT_NOTE,
                _text(spec, ev, ctx, "key"),
                payload,
                refs=_credit_refs(invoice_key),
                meta={**_money_meta(payload, -refunded), "credit_of": invoice_key},
            )
        ]
    )


def _refund(spec: MappingSpec, ev: Evaluate, ctx: dict[str, Any], **meta: Any) -> Outcome:
    invoice_key = _text(spec, ev, ctx, "invoice_key")
    full = "full" in spec.exprs and ev(spec.exprs["full"], ctx) not in (None, False, "")
    if "charged" in spec.exprs and not full:
        return _split_refund(spec, ev, ctx, invoice_key)
    return Outcome(
        [
            Command(
                CommandKind.FULL_CREDIT_NOTE,
                _text(spec, ev, ctx, "key"),
                _fields(spec.invoice_fields, ev, ctx),
                refs={"invoice_id": invoice_key},
                meta={"credit_of": invoice_key, **meta},
            )
        ]
    )


def _split_refund(
    spec: MappingSpec, ev: Evaluate, ctx: dict[str, Any], invoice_key: str
) -> Outcome:
    """An amount given back, with no lines: a credit note split like the sale's invoice.

    The lines are made when it is sent (:mod:`bridge.outbox.split`), from the invoice's own items,
    once that invoice exists: a refund that arrives before its sale waits for it.
    """
    refunded: Decimal = _amount(spec.exprs["charged"], ev, ctx, required=True)
    if refunded <= 0:
        return Outcome([], "nothing refunded (amount 0)")
    payload = _fields(spec.invoice_fields, ev, ctx)
    payload["currency"] = _text(spec, ev, ctx, "currency").upper()
    payload["information"] = spec.information
    meta = {
        "credit_of": invoice_key,
        "split_of": invoice_key,
        "refunded": str(refunded),
        "expected_total_with_vat": str(-refunded),
        "currency": payload["currency"],
    }
    key = _text(spec, ev, ctx, "key")
    refs = _credit_refs(invoice_key)
    return Outcome([Command(CommandKind.PARTIAL_CREDIT_NOTE, key, payload, refs=refs, meta=meta)])


def _credit_refs(invoice_key: str) -> dict[str, str]:
    """A credit note's customer and number from its invoice, and its VAT country and mention."""
    return {
        "customer_id": f"{invoice_key}#customer_id",
        "information": f"{invoice_key}#invoice_ref",
        **inherited_refs(invoice_key),
    }


def _cancel(spec: MappingSpec, ev: Evaluate, ctx: dict[str, Any]) -> Outcome:
    return _refund(spec, ev, ctx)


def _customer_update(spec: MappingSpec, ev: Evaluate, ctx: dict[str, Any]) -> Outcome:
    binding = _text(spec, ev, ctx, "binding_key")
    payload = customer_payload(spec, ev, ctx, infer_individual=False)
    if not payload:
        return Outcome([], "no customer field to update")
    return Outcome(
        [
            Command(
                CommandKind.UPDATE_CUSTOMER,
                f"customer-update:{binding}:{content_digest(payload)}",
                payload,
                meta={"binding_key": binding},
                priority=Priority.UPDATE,
            )
        ]
    )


_BUILDERS: dict[str, Callable[[MappingSpec, Evaluate, dict[str, Any]], Outcome]] = {
    "sale": _sale,
    "credit_note": _credit_note,
    "refund": _refund,
    "cancel": _cancel,
    "customer_update": _customer_update,
}
