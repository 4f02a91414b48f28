"""``GET /metrics``: Prometheus text, read from the database at scrape time.

The web process and every worker share one database, so the numbers come from it, not from any
process's memory: whichever web process is scraped answers for all of them, and a restart loses
nothing. Every figure is one query on tables the bridge already keeps:

==================================================  ============================================
``facturation_bridge_webhooks_received_total``      stored webhooks by ``source`` and ``outcome``
                                                    (the event's state: an event counted as
                                                    ``received`` moves to its final outcome)
``facturation_bridge_commands``                     outbox commands by ``state``
``facturation_bridge_quota_remaining``              requests left in the rate ``window`` and the
                                                    ``day``
``facturation_bridge_oldest_pending_seconds``       age of the oldest pending or in-flight command
``facturation_bridge_api_requests_total``           answers from Facturation.pro by ``status``:
                                                    ``ok`` (one per confirmed command), ``failed``
                                                    (each failed attempt; a 429 is not an attempt)
``facturation_bridge_delivery_seconds``             histogram: webhook received -> command done
``facturation_bridge_delivery_paused``              1 while delivery is paused
==================================================  ============================================

Access: with ``BRIDGE_ADMIN_TOKEN`` set, the admin token as a bearer token; without one, open only
if ``BRIDGE_METRICS_PUBLIC=true``, else 404.
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
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, Float, case, cast, func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from bridge.admin.auth import bearer_matches
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


async def metrics(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    token = runtime.settings.admin_token.get_secret_value()
    if not token and not runtime.settings.metrics_public:
        return PlainTextResponse("not found\n", 404)
    if token and not bearer_matches(request, token):
        return PlainTextResponse(
            "unauthorised\n", 401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'}
        )
    body = await run_in_threadpool(exposition, runtime)
    return Response(body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})
