"""The sandbox's state and the API's rules: one firm, in memory, safe to share between threads.

Every public method takes the lock, checks the request the way the API documents it and raises
:class:`~facturation_sandbox.validate.InvalidError` (422) or :class:`RecordNotFoundError` (404).
Methods return the API's JSON shapes (see render.py).

Rules emulated: a customer needs a name; an invoice needs a known customer and at least one line,
with a known VAT rate; totals are computed here, never taken from the request; a finalised invoice
is numbered in sequence and its amounts are frozen; a credit note (``refund``) copies a finalised
invoice with negated quantities and points back to it with ``refund_id``; settlements mark an
invoice paid once they cover it and can't exceed what is due; only finalised invoices are e-mailed.
Two credit notes of one invoice are allowed on purpose: the ledger must show a duplicate, not hide it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from facturation_sandbox.pdf import invoice_pdf
from facturation_sandbox.records import Customer, Email, Invoice, Settlement, term_on
from facturation_sandbox.render import customer_json, invoice_json, settlement_json
from facturation_sandbox.rules import check_customer, check_invoice, read_items
from facturation_sandbox.search import customer_matches, invoice_matches
from facturation_sandbox.validate import BLANK, Errors, InvalidError, read_fields
from facturation_sandbox.values import (
    CUSTOMER_FIELDS,
    FROZEN_WHEN_FINAL,
    INVOICE_FIELDS,
    PAYMENT_MODES,
    SETTLEMENT_FIELDS,
)

PARIS = ZoneInfo("Europe/Paris")
CREDIT_NOTE_PAYMENT_MODE = 99  # as in the reference's refund example


class RecordNotFoundError(Exception):
    """404 "The record could not be found"."""


class Store:
    def __init__(
        self, now: Callable[[], datetime] | None = None, *, vat_rounding: str = "per-rate"
    ) -> None:
        self._lock = threading.RLock()
        self._vat_per_line = vat_rounding == "per-line"
        self._now = now or (lambda: datetime.now(PARIS))
        self._ids = {"customer": 0, "invoice": 0, "item": 0, "settlement": 0, "email": 0}
        self._number = 0
        self.customers: dict[int, Customer] = {}
        self.invoices: dict[int, Invoice] = {}
        self.settlements: dict[int, Settlement] = {}
        self.emails: dict[int, Email] = {}

    def _next(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    def _today(self) -> date:
        return self._now().astimezone(PARIS).date()

    # -- customers -------------------------------------------------------------------------------

    def find_customers(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        with self._lock:
            found = [c for c in self.customers.values() if customer_matches(c, query)]
            found.sort(key=lambda c: (str(c.fields.get("short_name") or "").lower(), c.id))
            return [customer_json(c) for c in found]

    def create_customer(self, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            errors = Errors()
            fields = read_fields(body, CUSTOMER_FIELDS, errors)
            check_customer(fields, errors)
            errors.check()
            name = fields.get("company_name") or " ".join(
                str(fields[k]) for k in ("first_name", "last_name") if fields.get(k)
            )
            fields["company_name"] = name
            fields.setdefault("individual", False)
            fields["currency"] = fields.get("currency") or "EUR"
            fields["short_name"] = fields.get("short_name") or name
            if not fields.get("account_code"):
                fields["account_code"] = "411" + re.sub(r"[^A-Z0-9]", "", name.upper())[:8]
            now = self._now()
            customer = Customer(self._next("customer"), fields, now, now)
            self.customers[customer.id] = customer
            return customer_json(customer)

    def get_customer(self, customer_id: int) -> dict[str, Any]:
        with self._lock:
            return customer_json(self._customer(customer_id))

    def update_customer(self, customer_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            customer = self._customer(customer_id)
            errors = Errors()
            changes = read_fields(body, CUSTOMER_FIELDS, errors)
            check_customer({**customer.fields, **changes}, errors)
            errors.check()
            customer.fields.update(changes)
            customer.updated_at = self._now()
            return customer_json(customer)

    def _customer(self, customer_id: int) -> Customer:
        customer = self.customers.get(customer_id)
        if customer is None:
            raise RecordNotFoundError
        return customer

    # -- invoices --------------------------------------------------------------------------------

    def find_invoices(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        with self._lock:
            found = [
                i
                for i in self.invoices.values()
                if invoice_matches(i, self.customers.get(i.fields.get("customer_id") or 0), query)
            ]
            found.sort(key=lambda i: (not i.draft, -(i.number or 0), -i.id))
            details = query.get("with_details") == "1"
            settled = query.get("with_settlements") == "1"
            return [
                self._invoice_json(i, with_items=details, with_settlements=settled) for i in found
            ]

    def create_invoice(self, body: Mapping[str, Any], *, draft: bool) -> dict[str, Any]:
        with self._lock:
            errors = Errors()
            fields = read_fields(body, INVOICE_FIELDS, errors)
            items = read_items(
                body.get("items"), fields, errors, existing={}, next_id=lambda: self._next("item")
            )
            customer = self.customers.get(fields.get("customer_id") or 0)
            check_invoice(fields, errors, customer_exists=customer is not None, required=True)
            errors.check()
            if customer is None:  # check_invoice has reported it
                raise InvalidError({"customer": ["doit exister"]})
            fields["currency"] = fields.get("currency") or customer.fields.get("currency") or "EUR"
            fields["language"] = fields.get("language") or customer.fields.get("language") or "fr"
            fields["invoiced_on"] = fields.get("invoiced_on") or self._today()
            fields["pay_before"] = fields.get("pay_before") or customer.fields.get("pay_before")
            fields["term_on"] = fields.get("term_on") or term_on(
                fields["invoiced_on"], fields["pay_before"]
            )
            fields["payment_mode"] = fields.get("payment_mode") or 0
            fields.setdefault("rebate_percentage", Decimal(0))
            fields.setdefault("service_personne", False)
            now = self._now()
            invoice = Invoice(self._next("invoice"), fields, items, draft, now, now)
            invoice.vat_per_line = self._vat_per_line
            if not draft:
                self._finalise(invoice)
            self.invoices[invoice.id] = invoice
            if fields.get("paid_on"):
                customer.last_paid_on = fields["paid_on"]
            return self._invoice_json(invoice)

    def get_invoice(self, invoice_id: int) -> dict[str, Any]:
        with self._lock:
            return self._invoice_json(self._invoice(invoice_id))

    def update_invoice(
        self, invoice_id: int, body: Mapping[str, Any], *, type_doc: str | None
    ) -> dict[str, Any]:
        with self._lock:
            invoice = self._invoice(invoice_id)
            errors = Errors()
            changes = read_fields(body, INVOICE_FIELDS, errors)
            items = None
            if type_doc not in (None, "", "final", "draft"):
                errors.add("type_doc", "n'est pas inclus(e) dans la liste")
            if invoice.draft:
                if "items" in body:
                    existing = {item["id"]: item for item in invoice.items}
                    items = read_items(
                        body["items"],
                        changes,
                        errors,
                        existing=existing,
                        next_id=lambda: self._next("item"),
                    )
            else:
                if type_doc == "draft":
                    errors.add("type_doc", "une facture finalisée ne peut pas changer de statut")
                if "items" in body:
                    errors.add("items", "une facture finalisée ne peut plus être modifiée")
                for field in FROZEN_WHEN_FINAL & changes.keys():
                    if changes[field] != invoice.fields.get(field):
                        errors.add(field, "une facture finalisée ne peut plus être modifiée")
            merged = {**invoice.fields, **changes}
            exists = merged.get("customer_id") in self.customers
            check_invoice(merged, errors, customer_exists=exists, required=False)
            errors.check()
            invoice.fields = merged
            if items is not None:
                invoice.items = items
            if invoice.draft and type_doc == "final":
                self._finalise(invoice)
            invoice.updated_at = self._now()
            customer = self.customers.get(merged.get("customer_id") or 0)
            if customer and changes.get("paid_on"):
                customer.last_paid_on = changes["paid_on"]
            return self._invoice_json(invoice)

    def delete_invoice(self, invoice_id: int) -> None:
        """Only a draft can be deleted; a finalised invoice is cancelled by a credit note."""
        with self._lock:
            invoice = self._invoice(invoice_id)
            if not invoice.draft:
                raise InvalidError(
                    {"base": ["une facture finalisée ne peut pas être supprimée : faites un avoir"]}
                )
            del self.invoices[invoice_id]

    def refund_invoice(
        self, invoice_id: int, api_id: str | None, api_custom: str | None
    ) -> dict[str, Any]:
        """A full credit note of a finalised invoice: same lines, negated quantities."""
        with self._lock:
            original = self._invoice(invoice_id)
            errors = Errors()
            if original.draft:
                errors.add("base", "seule une facture finalisée peut faire l'objet d'un avoir")
            if original.refund_id is not None:
                errors.add("base", "un avoir ne peut pas faire l'objet d'un avoir")
            tags = read_fields(
                {
                    k: v
                    for k, v in (("api_id", api_id), ("api_custom", api_custom))
                    if v is not None
                },
                {"api_id": "bigint", "api_custom": "str:255"},
                errors,
            )
            errors.check()
            today = self._today()
            fields = {
                **original.fields,
                "api_id": tags.get("api_id"),
                "api_custom": tags.get("api_custom"),
                "invoiced_on": today,
                "term_on": today,
                "paid_on": today,
                "payment_mode": CREDIT_NOTE_PAYMENT_MODE,
                "payment_ref": None,
            }
            items = [
                {**item, "id": self._next("item"), "quantity": -item["quantity"]}
                for item in original.items
            ]
            now = self._now()
            note = Invoice(self._next("invoice"), fields, items, False, now, now)
            note.refund_id = original.id
            note.vat_per_line = self._vat_per_line
            self._finalise(note)
            self.invoices[note.id] = note
            return self._invoice_json(note)

    def _invoice(self, invoice_id: int) -> Invoice:
        invoice = self.invoices.get(invoice_id)
        if invoice is None:
            raise RecordNotFoundError
        return invoice

    def _invoice_json(
        self, invoice: Invoice, *, with_items: bool = True, with_settlements: bool = True
    ) -> dict[str, Any]:
        return invoice_json(
            invoice,
            customer=self.customers.get(invoice.fields.get("customer_id") or 0),
            settlements=self._settlements_of(invoice.id),
            with_items=with_items,
            with_settlements=with_settlements,
        )

    def _finalise(self, invoice: Invoice) -> None:
        self._number += 1
        invoice.draft = False
        invoice.number = self._number
        invoice.invoice_ref = f"{invoice.fields['invoiced_on']:%Y%m}-{self._number}"
        customer = self.customers.get(invoice.fields.get("customer_id") or 0)
        if customer is not None:
            customer.last_invoiced_on = invoice.fields["invoiced_on"]

    # -- settlements, e-mails, PDF ---------------------------------------------------------------

    def _settlements_of(self, invoice_id: int) -> list[Settlement]:
        return [s for s in self.settlements.values() if s.invoice_id == invoice_id]

    def list_settlements(self, invoice_id: int) -> list[dict[str, Any]]:
        with self._lock:
            self._invoice(invoice_id)
            return [settlement_json(s) for s in self._settlements_of(invoice_id)]

    def get_settlement(self, invoice_id: int, settlement_id: int) -> dict[str, Any]:
        with self._lock:
            settlement = self.settlements.get(settlement_id)
            if settlement is None or settlement.invoice_id != invoice_id:
                raise RecordNotFoundError
            return settlement_json(settlement)

    def create_settlement(self, invoice_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            invoice = self._invoice(invoice_id)
            errors = Errors()
            fields = read_fields(body, SETTLEMENT_FIELDS, errors)
            if fields.get("payment_mode") not in (None, *PAYMENT_MODES):
                errors.add("payment_mode", "n'est pas inclus(e) dans la liste")
            total = fields.get("total")
            due = invoice.balance(self._settlements_of(invoice_id))
            if invoice.draft:
                errors.add("base", "une facture brouillon ne peut pas être réglée")
            elif due == 0:
                errors.add("base", "la facture est déjà réglée")
            if total is None and "total" not in errors.by_field:
                errors.add("total", BLANK)
            elif total is not None and total <= 0:
                errors.add("total", "doit être supérieur à 0")
            elif total is not None and due and total > due:
                errors.add("total", f"dépasse le montant restant dû ({due})")
            errors.check()
            if total is None:  # reported above
                raise InvalidError({"total": [BLANK]})
            settlement = Settlement(
                id=self._next("settlement"),
                invoice_id=invoice_id,
                total=total,
                payment_mode=fields.get("payment_mode"),
                paid_on=fields.get("paid_on") or self._today(),
                payment_ref=fields.get("payment_ref"),
            )
            self.settlements[settlement.id] = settlement
            if invoice.balance(self._settlements_of(invoice_id)) == 0:
                invoice.fields["paid_on"] = settlement.paid_on
                invoice.fields["payment_mode"] = settlement.payment_mode
                customer = self.customers.get(invoice.fields.get("customer_id") or 0)
                if customer is not None:
                    customer.last_paid_on = settlement.paid_on
            return settlement_json(settlement)

    def send_email(self, bill_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            invoice = self._invoice(bill_id)
            errors = Errors()
            spec = {k: "text" for k in ("to", "cc", "bcc", "subject", "message")}
            fields = read_fields(body, spec, errors)
            if invoice.draft:
                errors.add("base", "seules les factures finalisées peuvent être envoyées")
            customer = self.customers.get(invoice.fields.get("customer_id") or 0)
            default_to = customer and (
                customer.fields.get("invoice_email") or customer.fields.get("email")
            )
            to = fields.get("to") or default_to
            if not to:
                errors.add("to", BLANK)
            errors.check()
            email = Email(
                id=self._next("email"),
                bill_id=bill_id,
                to=str(to),
                cc=fields.get("cc"),
                bcc=fields.get("bcc"),
                subject=fields.get("subject"),
                message=fields.get("message"),
                sent_at=self._now(),
            )
            self.emails[email.id] = email
            return email.to_json()

    def invoice_pdf(self, invoice_id: int) -> bytes:
        with self._lock:
            invoice = self._invoice(invoice_id)
            title = f"Facture {invoice.invoice_ref or 'brouillon'} - {invoice.total_with_vat}"
            return invoice_pdf(title)

    # -- ledger ----------------------------------------------------------------------------------

    def ledger(self) -> dict[str, Any]:
        """Everything the firm holds, for tests and demos (read-only)."""
        with self._lock:
            invoices = self.invoices

            def tags(invoice_id: int) -> dict[str, Any]:
                invoice = invoices.get(invoice_id)
                fields = invoice.fields if invoice else {}
                return {
                    "invoice_api_id": fields.get("api_id"),
                    "invoice_api_custom": fields.get("api_custom"),
                }

            return {
                "customers": [customer_json(c) for c in self.customers.values()],
                "invoices": [self._invoice_json(i) for i in invoices.values()],
                "settlements": [
                    {**settlement_json(s), **tags(s.invoice_id)} for s in self.settlements.values()
                ],
                "emails": [{**e.to_json(), **tags(e.bill_id)} for e in self.emails.values()],
            }
