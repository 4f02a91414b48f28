"""Reconcile: the sources, the bridge's database and the Facturation.pro ledger, side by side.

1. The sources are read as a backfill would read them, as object lists over the whole period
   (:mod:`bridge.recovery.stripe_backfill`, :mod:`bridge.recovery.shopify_backfill`), and each
   sale or refund gives the document it should have produced (:mod:`bridge.recovery.expected`).
2. The ledger's invoices and credit notes are listed (``iter_invoices``, 50 a page, from the day
   before ``--since`` on), each page taken from the shared quota (:mod:`bridge.outbox.quota`) within
   ``BRIDGE_RECONCILE_QUOTA_SHARE`` of the window: reconcile waits while delivery uses more, and
   together they never exceed the API's limits. Documents are matched by ``api_custom`` (the
   command's key) or ``api_id``.
3. The report has five lists: ``missing`` (a paid sale with no document), ``duplicates`` (more than
   one document for one key), ``amount_mismatches``, ``unrefunded`` (a refund with no credit
   note) and ``orphans`` (a document the bridge made, since the date, for no known source object
   nor command). Each entry names the source id (or, for orphans, the document id) and the
   bridge's command status for that key, if any.

``--fix`` stores the source event of each missing sale and unrefunded refund in the inbox, marked
``x-bridge-origin: reconcile`` (so its commands are looked up by ``api_id`` before they are
created), when the bridge has no command for it; it never deletes or edits a document. The last
report is kept in ``bridge_state`` under ``reconcile.last``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from bridge.db.models import EventStatus, OutboxCommand, utcnow
from bridge.db.state import put_state
from bridge.facturation.client import FacturationClient
from bridge.inbound.inbox import Entry, Inbox
from bridge.logging import get_logger
from bridge.outbox.commands import api_id_for
from bridge.outbox.enqueue import ORIGIN_HEADER
from bridge.outbox.quota import QuotaLimiter, QuotaLimits
from bridge.recovery.backfill import BackfillSource
from bridge.recovery.expected import Expected, expected
from bridge.runtime import Runtime

log = get_logger("bridge.recovery.reconcile")

REPORT_KEY = "reconcile.last"
LISTS = ("missing", "duplicates", "amount_mismatches", "unrefunded", "orphans")
OUR_PREFIXES = ("stripe:", "shopify:")


class QuotaGate:
    """Takes each ledger request from the shared quota, within ``share`` of the window."""

    def __init__(
        self, runtime: Runtime, share: float, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        limits = QuotaLimits.from_settings(runtime.settings)
        self.limiter = QuotaLimiter(
            replace(
                limits,
                per_window=max(1, int(limits.per_window * share)),
                per_day=max(1, int(limits.per_day * share)),
            )
        )
        self.runtime = runtime
        self.sleep = sleep
        self.calls = 0
        self.waited_s = 0.0

    def __call__(self) -> None:
        while True:
            with self.runtime.sessions.begin() as session:
                wait = self.limiter.try_acquire(session, utcnow())
            if wait <= 0:
                self.calls += 1
                return
            self.waited_s += wait
            self.sleep(min(wait, 30.0))


def list_documents(
    client: FacturationClient, since: date, gate: Callable[[], None]
) -> list[dict[str, Any]]:
    """The ledger's documents billed from the day before ``since`` (time zones) on."""
    start = (since - timedelta(days=1)).isoformat()
    return list(client.iter_invoices(before_page=gate, period_start=start, period_type="billed"))


def compare(
    wanted: Iterable[Expected],
    documents: list[dict[str, Any]],
    commands: dict[str, str],
    since: date,
) -> dict[str, list[dict[str, Any]]]:
    """The five lists of the report (see the module docstring)."""
    report: dict[str, list[dict[str, Any]]] = {name: [] for name in LISTS}
    by_key: dict[str, list[dict[str, Any]]] = {}
    by_api_id: dict[str, list[dict[str, Any]]] = {}
    for doc in documents:
        by_key.setdefault(str(doc.get("api_custom") or ""), []).append(doc)
        by_api_id.setdefault(str(doc.get("api_id") or ""), []).append(doc)
    known: set[str] = set()
    for item in {w.key: w for w in wanted}.values():
        known.add(item.key)
        docs = {
            d["id"]: d
            for d in by_key.get(item.key, []) + by_api_id.get(str(api_id_for(item.key)), [])
        }
        base = {
            "source_id": item.source_id,
            "key": item.key,
            "bridge_status": commands.get(item.key),
        }
        if not docs:
            name = "missing" if item.kind == "sale" else "unrefunded"
            report[name].append({**base, "amount": _text(item.amount), "currency": item.currency})
            continue
        if len(docs) > 1:
            report["duplicates"].append({**base, "document_ids": sorted(docs)})
        for doc in docs.values():
            total = abs(Decimal(str(doc.get("total_with_vat") or "0")))
            if item.amount is not None and total != item.amount:
                report["amount_mismatches"].append(
                    {**base, "document_id": doc["id"], "expected": str(item.amount), "document_total": str(total)}
                )  # fmt: skip
    for doc in documents:
        key = str(doc.get("api_custom") or "")
        if not key.startswith(OUR_PREFIXES) or key in known or key in commands:
            continue
        if str(doc.get("invoiced_on") or "") < since.isoformat():
            continue  # before the period: its source object was not read
        report["orphans"].append(
            {"document_id": doc["id"], "key": key, "invoice_ref": doc.get("invoice_ref"), "total_with_vat": str(doc.get("total_with_vat"))}
        )  # fmt: skip
    return report


def run_reconcile(
    runtime: Runtime,
    sources: list[BackfillSource],
    client: FacturationClient,
    since: date,
    *,
    fix: bool = False,
    gate: QuotaGate | None = None,
) -> dict[str, Any]:
    """Read, compare, optionally fix; store and return ``{"at", "since", "counts", "report"}``."""
    wanted: list[Expected] = []
    for source in sources:
        for batch in source.batches(since, None):
            wanted += [e for d in batch.deliveries if (e := expected(d)) is not None]
    gate = gate or QuotaGate(runtime, runtime.settings.reconcile_quota_share)
    documents = list_documents(client, since, gate)
    keys = {w.key for w in wanted} | {str(d.get("api_custom") or "") for d in documents}
    commands = _command_statuses(runtime, keys)
    report = compare(wanted, documents, commands, since)
    now = utcnow()
    result: dict[str, Any] = {
        "at": now.isoformat(),
        "since": since.isoformat(),
        "counts": {name: len(report[name]) for name in LISTS},
        "report": report,
        "ledger_calls": gate.calls,
    }
    if fix:
        result["fixed"] = _fix(runtime, wanted, report, commands)
    with runtime.sessions.begin() as session:
        put_state(session, REPORT_KEY, result, now)
    log.info("reconcile.finished", since=result["since"], **result["counts"])
    return result


def _command_statuses(runtime: Runtime, keys: set[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    wanted = sorted(k for k in keys if k)
    with runtime.sessions() as session:
        for i in range(0, len(wanted), 500):
            rows = session.execute(
                select(OutboxCommand.idempotency_key, OutboxCommand.status).where(
                    OutboxCommand.idempotency_key.in_(wanted[i : i + 500])
                )
            )
            out.update({k: s for k, s in rows})
    return out


def _fix(
    runtime: Runtime,
    wanted: list[Expected],
    report: dict[str, list[dict[str, Any]]],
    commands: dict[str, str],
) -> int:
    """Store the events of what is missing (and has no command) for the mapping stage."""
    absent = {e["key"] for name in ("missing", "unrefunded") for e in report[name]}
    entries = [
        Entry(
            replace(w.delivery, headers={**w.delivery.headers, ORIGIN_HEADER: "reconcile"}),
            EventStatus.RECEIVED,
        )
        for w in {w.key: w for w in wanted}.values()
        if w.key in absent and w.key not in commands
    ]
    inbox = Inbox(runtime.engine, busy_timeout=max(runtime.settings.db_busy_timeout, 10.0))
    stored = inbox.store_many(entries)
    fixed = sum(not s.duplicate for s in stored)
    log.info("reconcile.fixed", stored=fixed, already_in_inbox=len(stored) - fixed)
    return fixed


def _text(amount: Decimal | None) -> str | None:
    return None if amount is None else str(amount)
