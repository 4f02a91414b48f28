"""The collector behind ``GET /metrics``: every figure read from the database at scrape time.

See bridge/admin/metrics.py for the list of metrics and their meaning.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, Float, case, cast, func, select
from sqlalchemy.orm import Session

from bridge.admin.operations import status
from bridge.db.models import CommandStatus, InboxEvent, OutboxCommand, utcnow
from bridge.outbox.quota import QuotaLimiter, QuotaLimits
from bridge.runtime import Runtime

PREFIX = "facturation_bridge_"
# Seconds from a webhook's arrival to its command's confirmation: one API call takes ~0.1-1 s; a
# backlog behind the quota, minutes; an outage, hours.
LATENCY_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0)


def _seconds_between(session: Session, start: Any, end: Any) -> ColumnElement[float]:
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return cast(func.extract("epoch", end - start), Float)


def latency(session: Session) -> tuple[list[tuple[str, float]], float]:
    """Cumulative bucket counts (``le``, count, ``+Inf`` last) and the sum of seconds."""
    seconds = _seconds_between(session, InboxEvent.received_at, OutboxCommand.done_at)
    columns = [
        func.coalesce(func.sum(case((seconds <= le, 1), else_=0)), 0) for le in LATENCY_BUCKETS
    ]
    row = session.execute(
        select(*columns, func.count(), func.coalesce(func.sum(seconds), 0.0))
        .select_from(OutboxCommand)
        .join(InboxEvent, InboxEvent.id == OutboxCommand.inbox_event_id)
        .where(OutboxCommand.status == CommandStatus.DONE.value)
    ).one()
    buckets = [(repr(le), float(n)) for le, n in zip(LATENCY_BUCKETS, row[:-2], strict=True)]
    buckets.append(("+Inf", float(row[-2])))
    return buckets, float(row[-1])


def api_answers(session: Session) -> dict[str, int]:
    done, failed = session.execute(
        select(
            func.coalesce(
                func.sum(case((OutboxCommand.status == CommandStatus.DONE.value, 1), else_=0)), 0
            ),
            func.coalesce(func.sum(OutboxCommand.attempts), 0),
        )
    ).one()
    return {"ok": int(done), "failed": int(failed)}


class DatabaseCollector(Collector):
    """Reads every metric from the database when Prometheus scrapes."""

    def __init__(self, runtime: Runtime, now: datetime) -> None:
        self.runtime = runtime
        self.now = now

    def collect(self) -> Iterator[Metric]:
        limits = QuotaLimits.from_settings(self.runtime.settings)
        with self.runtime.sessions() as session:
            state = status(session, self.now, QuotaLimiter(limits))
            received = session.execute(
                select(InboxEvent.source, InboxEvent.status, func.count()).group_by(
                    InboxEvent.source, InboxEvent.status
                )
            ).all()
            answers = api_answers(session)
            buckets, total = latency(session)

        webhooks = CounterMetricFamily(
            f"{PREFIX}webhooks_received",
            "Webhooks stored, by source and by their current outcome.",
            labels=["source", "outcome"],
        )
        for source, outcome, count in received:
            webhooks.add_metric([source, outcome], float(count))
        yield webhooks

        commands = GaugeMetricFamily(
            f"{PREFIX}commands", "Outbox commands by state.", labels=["state"]
        )
        for name, count in state["commands"].items():
            commands.add_metric([name], float(count))
        yield commands

        quota = GaugeMetricFamily(
            f"{PREFIX}quota_remaining",
            "API requests this bridge may still send in the rate window and in the day.",
            labels=["window"],
        )
        quota.add_metric(["window"], float(max(0, limits.per_window - state["quota"]["in_window"])))
        quota.add_metric(["day"], float(max(0, limits.per_day - state["quota"]["in_day"])))
        yield quota

        yield GaugeMetricFamily(
            f"{PREFIX}oldest_pending_seconds",
            "Age of the oldest pending or in-flight command (0 when there is none).",
            value=float(state["oldest_pending_age_s"] or 0.0),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}delivery_paused",
            "1 while all delivery to Facturation.pro is paused.",
            value=1.0 if state["delivery_paused"] else 0.0,
        )

        requests = CounterMetricFamily(
            f"{PREFIX}api_requests",
            "Answers from Facturation.pro: ok (one per confirmed command) and failed attempts.",
            labels=["status"],
        )
        for name, count in answers.items():
            requests.add_metric([name], float(count))
        yield requests

        yield HistogramMetricFamily(
            f"{PREFIX}delivery_seconds",
            "Seconds from a webhook's arrival to the confirmation of a command it produced.",
            buckets=buckets,
            sum_value=total,
        )


def exposition(runtime: Runtime) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(runtime, utcnow()))
    return generate_latest(registry)
