"""One chronological sequence: no invoice is ever dated before the one numbered before it — across
late deliveries, replays, restarts and two workers — on real SQLite and PostgreSQL, against the
sandbox, which numbers documents in the order they reach it."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from bridge.db.models import InvoiceSequence, OutboxCommand
from bridge.outbox.chronology import Dating
from bridge.outbox.commands import Command
from bridge.outbox.delivery import Outcome
from facturation_sandbox import Sandbox, SandboxConfig
from tests.support.outbox_kit import (
    Clock,
    drain,
    invoice_key,
    put,
    refund,
    runtime_for,
    sale,
    worker_for,
)
from tests.support.sandbox import FIRM_ID, KEY, LOGIN, in_process_client

CONFIRMED = {"shape_confirmations": 0}  # one call per invoice: the dates are what is tested here


def dated_sale(order: int, on: str, customer: str = "cus_a") -> list[Command]:
    ensure, invoice = sale(order, customer)
    payload = {**invoice.payload, "invoiced_on": on}
    return [ensure, Command(invoice.kind, invoice.key, payload, invoice.refs, meta=invoice.meta)]


def _sandbox(clock: Clock) -> Sandbox:
    return Sandbox(SandboxConfig(login=LOGIN, key=KEY, firm_id=FIRM_ID), now=clock)


def _in_number_order(sandbox: Sandbox) -> list[dict[str, Any]]:
    invoices = [i for i in sandbox.ledger()["invoices"] if i["invoice_ref"]]
    return sorted(invoices, key=lambda i: int(i["invoice_ref"].rsplit("-", 1)[1]))


def _assert_chronological(sandbox: Sandbox) -> list[dict[str, Any]]:
    ordered = _in_number_order(sandbox)
    dates = [i["invoiced_on"] for i in ordered]
    assert dates == sorted(dates), dates
    return ordered


def _deliver(db_url: str, sandbox: Sandbox, clock: Clock, commands: list[Command]) -> None:
    """One process's life: open, deliver what is given, close (the next call is a restart)."""
    with runtime_for(db_url, **CONFIRMED) as runtime, in_process_client(sandbox) as api:
        put(runtime, commands, clock())
        drain(worker_for(runtime, api, clock), clock)


def test_late_replayed_and_backfilled_sales_never_date_an_invoice_back(db_url: str) -> None:
    clock = Clock()  # 2026-11-23 10:00 in Paris
    sandbox = _sandbox(clock)
    _deliver(db_url, sandbox, clock, dated_sale(1, "2026-11-20") + dated_sale(2, "2026-11-23"))
    _deliver(db_url, sandbox, clock, dated_sale(3, "2026-11-18"))  # a late webhook
    _deliver(db_url, sandbox, clock, dated_sale(1, "2026-11-20"))  # a replay: nothing new
    clock.advance(86_400)  # the next day, after a restart
    _deliver(db_url, sandbox, clock, dated_sale(4, "2026-11-10", "cus_b") + refund(2))
    _deliver(db_url, sandbox, clock, dated_sale(5, "2026-11-24"))  # on time again
    ordered = _assert_chronological(sandbox)
    assert [i["api_custom"] for i in ordered] == [
        invoice_key(1),
        invoice_key(2),
        invoice_key(3),
        invoice_key(4),
        "refund:test:in_2",
        invoice_key(5),
    ]
    by_key = {i["api_custom"]: i for i in ordered}
    late, backfilled = by_key[invoice_key(3)], by_key[invoice_key(4)]
    assert (late["invoiced_on"], late["delivery_on"]) == ("2026-11-23", "2026-11-18")
    assert late["information"] == "Date de la vente : 18/11/2026"
    assert (backfilled["invoiced_on"], backfilled["delivery_on"]) == ("2026-11-24", "2026-11-10")
    on_time = by_key[invoice_key(2)]
    assert (on_time["invoiced_on"], on_time["delivery_on"]) == ("2026-11-23", None)
    with runtime_for(db_url) as runtime, runtime.sessions() as session:
        [sequence] = session.execute(select(InvoiceSequence)).scalars().all()
    assert sequence.last_issued_on == date(2026, 11, 24)


class _Interleaving:
    """The sandbox's client, running ``during_create`` while an invoice create is in flight."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.during_create: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.api, name)

    def create_invoice(self, body: dict[str, Any], *, draft: bool = False) -> Any:
        hook, self.during_create = self.during_create, None
        if hook is not None:
            hook()
        return self.api.create_invoice(body, draft=draft)


def test_a_second_worker_waits_while_the_first_numbers_a_document(db_url: str) -> None:
    clock = Clock()
    sandbox = _sandbox(clock)
    seen: list[Outcome] = []
    with runtime_for(db_url, **CONFIRMED) as runtime, in_process_client(sandbox) as client:
        # w1 takes the earlier sale; were w2 to send the later one meanwhile, it would reach the
        # sandbox first and be numbered before it: out of order.
        first, second = dated_sale(1, "2026-11-18"), dated_sale(2, "2026-11-20", "cus_b")
        api = _Interleaving(client)
        w1, w2 = worker_for(runtime, api, clock, "w1"), worker_for(runtime, api, clock, "w2")
        put(runtime, [first[0], second[0]], clock())
        drain(w1, clock)  # both customers exist
        put(runtime, [first[1], second[1]], clock())

        def second_worker_tries() -> None:
            claimed = w2.outbox.claim("w2")
            assert claimed is not None
            seen.append(w2.deliverer.deliver(claimed))

        api.during_create = second_worker_tries
        assert w1.step()  # numbers one invoice; meanwhile w2 tried the other and had to wait
        drain(w2, clock)
        with runtime.sessions() as session:
            errors = [r.last_error for r in session.execute(select(OutboxCommand)).scalars().all()]
    assert seen == [Outcome.RETRY]  # w2 sent nothing while w1 held the turn
    assert errors == [None] * 4
    ordered = _assert_chronological(sandbox)
    assert len(ordered) == 2


def test_a_redated_invoice_keeps_the_sale_date_and_its_information() -> None:
    dating = Dating(date(2026, 11, 23), sale_on=date(2026, 11, 18))
    assert dating.fields({"information": "Commande #1001", "delivery_on": None}) == {
        "invoiced_on": "2026-11-23",
        "delivery_on": "2026-11-18",
        "information": "Commande #1001\nDate de la vente : 18/11/2026",
    }
    assert dating.fields({"delivery_on": "2026-11-17"}) == {
        "invoiced_on": "2026-11-23",
        "information": "Date de la vente : 18/11/2026",
    }
    assert Dating(date(2026, 11, 23)).fields({"information": "x"}) == {}
