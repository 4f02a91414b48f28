"""The sandbox's records: what one firm holds (customers, invoices, settlements, e-mails sent)."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from bridge.facturation.totals import InvoiceTotals, compute_totals

_TERM = re.compile(r"(\d+)(fm(\d+)?)?(-inv)?")


@dataclass
class Customer:
    id: int
    fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    last_invoiced_on: date | None = None
    last_paid_on: date | None = None

    def display_name(self) -> str:
        name = self.fields.get("company_name")
        if name:
            return str(name)
        parts = (self.fields.get("first_name"), self.fields.get("last_name"))
        return " ".join(str(p) for p in parts if p)


@dataclass
class Settlement:
    id: int
    invoice_id: int
    total: Decimal
    payment_mode: int | None
    paid_on: date
    payment_ref: str | None


@dataclass
class Invoice:
    id: int
    fields: dict[str, Any]
    items: list[dict[str, Any]]
    draft: bool
    created_at: datetime
    updated_at: datetime
    number: int | None = None  # the sequence behind ``invoice_ref``, once finalised
    invoice_ref: str | None = None
    refund_id: int | None = None
    vat_per_line: bool = False  # ``--vat-rounding per-line``: a test-only other totals rule

    def totals(self) -> InvoiceTotals:
        """Totals of the lines that count (comment, title… lines don't), per rate or per line."""
        lines = [i for i in self.items if not i.get("style")]
        if not self.vat_per_line:
            return compute_totals(lines)
        each = [compute_totals([line]) for line in lines]
        vat: dict[Decimal, Decimal] = {}
        for part in each:
            for rate, amount in part.vat_by_rate.items():
                vat[rate] = vat.get(rate, Decimal(0)) + amount
        total = sum((part.total for part in each), Decimal(0))
        return InvoiceTotals(total, vat, total + sum(vat.values(), Decimal(0)))

    @property
    def total_with_vat(self) -> Decimal:
        return self.totals().total_with_vat

    def balance(self, settlements: list[Settlement]) -> Decimal:
        """What remains to be paid: nothing once paid (or for a credit note)."""
        if self.fields.get("paid_on") is not None or self.total_with_vat <= 0:
            return Decimal(0)
        paid = sum((s.total for s in settlements), Decimal(0))
        return max(Decimal(0), self.total_with_vat - paid)


@dataclass
class Email:
    id: int
    bill_id: int
    to: str
    cc: str | None
    bcc: str | None
    subject: str | None
    message: str | None
    sent_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "bill_id": self.bill_id,
            "to": self.to,
            "cc": self.cc,
            "bcc": self.bcc,
            "subject": self.subject,
            "message": self.message,
            "sent_at": self.sent_at.isoformat(timespec="milliseconds"),
        }


def term_on(invoiced_on: date, pay_before: str | None) -> date:
    """The due date for a payment term ("30", "60fm", "30fm10", "cash"…), from the invoice date."""
    match = _TERM.fullmatch(pay_before or "0")
    if not match:
        return invoiced_on
    due = invoiced_on + timedelta(days=int(match[1]))
    if match[2]:
        due = due.replace(day=calendar.monthrange(due.year, due.month)[1])
        if match[3]:
            due = (due + timedelta(days=1)).replace(day=int(match[3]))
    return due
