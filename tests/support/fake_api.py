"""An in-memory fake of the Facturation.pro client interface, with faults on demand.

It keeps a ledger of every object created, checks ``api_id`` uniqueness only by *recording*
duplicates (so that tests can assert there are none), and computes invoice totals with the shared
totals rule. Faults are queued with :meth:`FakeApi.fail_next`:

- ``"5xx_before"``: a 503 before any write (nothing created);
- ``"502_after"`` / ``"drop_after"`` / ``"timeout_after"``: the write happens, then the answer is lost;
- ``"429"``, ``"401"``, ``"422"``: the matching refusal, nothing written;
- ``"connect"``: the connection fails, nothing sent;
- ``"crash_before"`` / ``"crash_after"``: :class:`Crash` (a ``BaseException``, like the process
  dying) before or after the write, so that nothing after it runs.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge.facturation.errors import (
    AuthError,
    NotFoundError,
    RateInfo,
    RateLimitedError,
    RejectedError,
    RetryableError,
)
from bridge.facturation.totals import compute_totals


class Crash(BaseException):
    """The process dies here: nothing after this point runs."""


@dataclass(frozen=True)
class Answer:
    status: int
    data: Any
    rate: RateInfo
    location: str | None = None


@dataclass
class FakeApi:
    customers: dict[int, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[int, dict[str, Any]] = field(default_factory=dict)
    settlements: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    emails: list[int] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    faults: deque[str] = field(default_factory=deque)
    limit: int | None = None
    remaining: int | None = None
    total_override: str | None = None  # make the "server" compute a different total
    on_call: dict[str, str] = field(default_factory=dict)  # see fail_on
    today: str = "2026-11-23"  # the date the "server" gives a document sent without one
    unechoed: tuple[str, ...] = ()  # invoice fields kept but left out of the create answer
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    def fail_next(self, *faults: str) -> None:
        self.faults.extend(faults)

    def fail_on(self, call: str, fault: str) -> None:
        """The next ``call`` (e.g. ``"update_invoice"``) meets ``fault``; other calls go through."""
        self.on_call[call] = fault

    # -- the client interface ---------------------------------------------------------------------

    def account(self) -> Answer:
        return self._read("account", lambda: {"id": 1})

    def find_customers(self, **params: Any) -> Answer:
        """``email`` is a partial match, as the API documents."""
        email = str(params.get("email", "")).lower()
        return self._read(
            "find_customers",
            lambda: [
                dict(c) for c in self.customers.values() if email in str(c.get("email", "")).lower()
            ],
        )

    def create_customer(self, body: Mapping[str, Any]) -> Answer:
        return self._write("create_customer", lambda: self._store(self.customers, body))

    def update_customer(self, customer_id: int, body: Mapping[str, Any]) -> Answer:
        def do() -> dict[str, Any]:
            if customer_id not in self.customers:
                raise NotFoundError("The record could not be found", status=404)
            self.customers[customer_id].update(body)
            return self.customers[customer_id]

        return self._write("update_customer", do)

    def create_invoice(self, body: Mapping[str, Any], *, draft: bool = False) -> Answer:
        def do() -> dict[str, Any]:
            customer_id = body.get("customer_id")
            if customer_id not in self.customers:
                raise RejectedError(
                    "unknown customer", errors={"customer_id": ["invalid"]}, status=422
                )
            totals = compute_totals(body.get("items") or [])
            total = self.total_override or str(totals.total_with_vat)
            record = self._store(
                self.invoices,
                {"invoiced_on": self.today, **body, "total_with_vat": total, "draft": draft},
            )
            if not draft:  # a finalised invoice gets its number, as the API gives it
                record["invoice_ref"] = self.invoices[record["id"]]["invoice_ref"] = (
                    f"F-{record['id']}"
                )
            return {name: value for name, value in record.items() if name not in self.unechoed}

        return self._write("create_invoice", do)

    def get_invoice(self, invoice_id: int) -> Answer:
        def do() -> dict[str, Any]:
            if invoice_id not in self.invoices:
                raise NotFoundError("The record could not be found", status=404)
            return {
                **self.invoices[invoice_id],
                "settlements": self.settlements.get(invoice_id, []),
            }

        return self._read("get_invoice", do)

    def update_invoice(
        self, invoice_id: int, body: Mapping[str, Any], *, type_doc: str | None = None
    ) -> Answer:
        """A partial update; ``type_doc="final"`` finalises a draft (no change to a final one)."""

        def do() -> dict[str, Any]:
            if invoice_id not in self.invoices:
                raise NotFoundError("The record could not be found", status=404)
            record = self.invoices[invoice_id]
            record.update(body)
            if type_doc == "final":
                record["draft"] = False
                record.setdefault("invoice_ref", f"F-{invoice_id}")  # numbered once final
            return dict(record)

        return self._write("update_invoice", do)

    def refund_invoice(self, invoice_id: int, *, api_id: int, api_custom: str) -> Answer:
        def do() -> dict[str, Any]:
            if invoice_id not in self.invoices:
                raise NotFoundError("The record could not be found", status=404)
            original = self.invoices[invoice_id]
            body = {
                "customer_id": original["customer_id"],
                "refund_of": invoice_id,
                "api_id": api_id,
                "api_custom": api_custom,
                "total_with_vat": "-" + str(original.get("total_with_vat", "0")),
                "invoiced_on": self.today,
                "draft": False,
            }
            return self._store(self.invoices, body)

        return self._write("refund_invoice", do)

    def create_settlement(self, invoice_id: int, body: Mapping[str, Any]) -> Answer:
        def do() -> dict[str, Any]:
            if invoice_id not in self.invoices:
                raise NotFoundError("The record could not be found", status=404)
            record = {**body, "id": next(self._ids), "invoice_id": invoice_id}
            self.settlements.setdefault(invoice_id, []).append(record)
            return record

        return self._write("create_settlement", do)

    def send_email(self, bill_id: int, body: Mapping[str, Any] | None = None) -> Answer:
        def do() -> dict[str, Any]:
            self.emails.append(bill_id)
            return {}

        return self._write("send_email", do)

    def find_by_api_id(self, resource: str, api_id: int) -> dict[str, Any] | None:
        self._read("find_" + resource, lambda: {})
        table = self.customers if resource == "customers" else self.invoices
        for record in table.values():
            if record.get("api_id") == api_id:
                return dict(record)
        return None

    # -- ledger checks ----------------------------------------------------------------------------

    def duplicates(self) -> list[Any]:
        """``api_id`` values held by more than one object: must always be empty."""
        seen: dict[Any, int] = {}
        for record in [*self.customers.values(), *self.invoices.values()]:
            if record.get("api_id") is not None:
                seen[record["api_id"]] = seen.get(record["api_id"], 0) + 1
        return [k for k, n in seen.items() if n > 1]

    def by_custom(self) -> dict[str, dict[str, Any]]:
        return {
            str(r.get("api_custom")): r for r in [*self.customers.values(), *self.invoices.values()]
        }

    # -- internals --------------------------------------------------------------------------------

    def _rate(self) -> RateInfo:
        if self.remaining is not None and self.remaining > 0:
            self.remaining -= 1
        return RateInfo(self.limit, self.remaining)

    def _store(self, table: dict[int, dict[str, Any]], body: Mapping[str, Any]) -> dict[str, Any]:
        record = {**body, "id": next(self._ids)}
        table[record["id"]] = record
        return dict(record)

    def _read(self, name: str, do: Any) -> Answer:
        self.calls.append(name)
        if name in self.on_call:
            self.faults.appendleft(self.on_call.pop(name))
        self._fault_before()
        return Answer(200, do(), self._rate())

    def _write(self, name: str, do: Any) -> Answer:
        self.calls.append(name)
        if name in self.on_call:
            self.faults.appendleft(self.on_call.pop(name))
        self._fault_before()
        fault = self.faults[0] if self.faults else None
        data = do()
        if fault in {"502_after", "drop_after", "timeout_after", "crash_after"}:
            self.faults.popleft()
            if fault == "crash_after":
                raise Crash(name)
            status = 502 if fault == "502_after" else None
            raise RetryableError(f"{fault} on {name}", may_have_reached_server=True, status=status)
        return Answer(201, data, self._rate())

    def _fault_before(self) -> None:
        if not self.faults:
            return
        fault = self.faults[0]
        if fault.endswith("_after"):
            return
        self.faults.popleft()
        if fault == "crash_before":
            raise Crash("before")
        if fault == "5xx_before":
            raise RetryableError("503", may_have_reached_server=True, status=503)
        if fault == "connect":
            raise RetryableError("connect error", may_have_reached_server=False)
        if fault == "429":
            raise RateLimitedError("Retry later", retry_after=7.0, rate=RateInfo(600, 0))
        if fault == "401":
            raise AuthError("unauthorised", status=401)
        if fault == "422":
            raise RejectedError("invalid", errors={"title": ["is missing"]}, status=422)
        raise AssertionError(f"unknown fault {fault}")
