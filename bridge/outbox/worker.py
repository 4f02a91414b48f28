"""The delivery worker: maps received events, then claims due outbox commands and delivers them.

One loop, one command at a time per worker; run several worker processes on PostgreSQL for more
throughput (claims use ``SKIP LOCKED``), one on SQLite. Each turn:

1. the mapping stage turns ``received`` inbox events into commands (:mod:`bridge.mapping.stage`);
2. if delivery is paused (401/403), a probe call (``account``) every ``probe_seconds`` resumes it
   once the credentials work again;
3. once a minute, commands that waited too long for a dependency go dead (:mod:`bridge.outbox.stale`);
4. one due command is claimed and delivered (:mod:`bridge.outbox.delivery`).

A database that does not answer makes the loop wait and try again, logging one line per try
(:mod:`bridge.outbox.db_backoff`); a claim the outage left in flight is handed back first thing
once it answers (:mod:`bridge.outbox.held`).

It polls every ``BRIDGE_POLL_INTERVAL`` seconds (0.2 s by default) when idle, which keeps a paid
order's invoice within a second of its webhook when the quota allows. On SIGTERM the command in
flight finishes and is recorded, then the loop stops. A SIGKILL leaves it claimed: the worker's
heartbeat (:mod:`bridge.outbox.liveness`) stops, and a live worker releases its claims after
``BRIDGE_WORKER_DEAD_AFTER`` (a restarted worker on SQLite, at once); ``outcome_unknown`` makes
the next claim look it up before sending it again.
"""

from __future__ import annotations

import os
import random
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from bridge.db.models import utcnow
from bridge.db.outage import DATABASE_DOWN
from bridge.facturation.errors import FacturationError
from bridge.facturation.protocol import FacturationApi
from bridge.logging import bound, get_logger
from bridge.mapping.stage import Mapper, Stage
from bridge.outbox.chronology import Chronology
from bridge.outbox.db_backoff import DatabaseBackoff
from bridge.outbox.delivery import Deliverer, Outcome
from bridge.outbox.finalise import ShapeBook
from bridge.outbox.liveness import Heartbeat, Liveness
from bridge.outbox.pause import paused, resume
from bridge.outbox.queue import Outbox
from bridge.outbox.quota import QuotaLimiter, QuotaLimits
from bridge.outbox.retry import RetryPolicy
from bridge.outbox.stale import expire_waiting
from bridge.runtime import Runtime
from bridge.watch.alerts import Watch

log = get_logger("bridge.outbox.worker")

PROBE_SECONDS = 30.0
EXPIRY_EVERY = timedelta(minutes=1)  # how often a worker looks for commands waiting too long


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    """One delivery loop's state. :meth:`step` does one turn; :meth:`run` loops until stopped."""

    def __init__(
        self,
        runtime: Runtime,
        api: FacturationApi,
        mapper: Mapper | None,
        *,
        worker_id: str,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        probe_seconds: float = PROBE_SECONDS,
        watch: Watch | None = None,
    ) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.api = api
        self.worker_id = worker_id
        self.clock = clock
        self.probe_every = timedelta(seconds=probe_seconds)
        self.watch = watch
        self.outbox = Outbox(runtime.sessions, lease_seconds=settings.lease_seconds, clock=clock)
        self.quota = QuotaLimiter(QuotaLimits.from_settings(settings))
        self.stage = (
            Stage(
                runtime.sessions,
                mapper,
                clock=clock,
                give_up_after=timedelta(seconds=settings.retry_give_up_seconds),
            )
            if mapper is not None
            else None
        )
        self.deliverer = Deliverer(
            outbox=self.outbox,
            api=api,
            quota=self.quota,
            policy=RetryPolicy.from_settings(settings),
            worker_id=worker_id,
            rng=rng or random.Random(),  # noqa: S311 -- jitter, not cryptography
            clock=clock,
            sequence=Chronology(settings.firm_name, settings.timezone),
            shapes=ShapeBook(settings.firm_name, settings.shape_confirmations),
            lookup_by_email=settings.customer_lookup_by_email,
        )
        self.quota_ready_at: datetime | None = None
        self.next_probe_at: datetime | None = None
        self.dependency_wait = timedelta(seconds=settings.dependency_wait_seconds)
        self.next_expiry_at: datetime | None = None  # next look for commands waiting too long

    def step(self) -> bool:
        """One turn; ``True`` if it did something (so the loop goes on without sleeping)."""
        self.deliverer.release_held()
        staged = self.stage.run_once() if self.stage is not None else 0
        if self.watch is not None:
            self.watch.tick()
        now = self.clock()
        if self.next_expiry_at is None or now >= self.next_expiry_at:
            self.next_expiry_at = now + EXPIRY_EVERY
            expire_waiting(self.runtime.sessions, now, self.dependency_wait)
        with self.runtime.sessions() as session:
            pause = paused(session)
        if pause is not None:
            self._probe(now, pause.get("reason"))
            return bool(staged)
        if self.quota_ready_at is not None and now < self.quota_ready_at:
            return bool(staged)
        claimed = self.outbox.claim(self.worker_id)
        if claimed is None:
            return bool(staged)
        with bound(command_id=claimed.id, key=claimed.key):
            outcome = self.deliverer.deliver(claimed)
        if outcome is Outcome.QUOTA_WAIT:
            self.quota_ready_at = now + timedelta(seconds=self.deliverer.quota_wait_s)
        return True

    def run(self, stop: threading.Event, poll_interval: float) -> None:
        log.info("worker.started", worker_id=self.worker_id)
        outage = DatabaseBackoff(self.worker_id)
        while not stop.is_set():
            try:
                busy = self.step()
            except DATABASE_DOWN as exc:  # one line per try, backing off, until it answers
                stop.wait(outage.failed(exc))
                continue
            except Exception:  # the loop must survive anything else too
                log.exception("worker.step_failed", worker_id=self.worker_id)
                busy = False
            else:
                outage.succeeded()
            if not busy:
                stop.wait(self._idle_wait(poll_interval))
        log.info("worker.stopped", worker_id=self.worker_id)

    def _idle_wait(self, poll_interval: float) -> float:
        if self.quota_ready_at is not None:
            left = (self.quota_ready_at - self.clock()).total_seconds()
            if left > 0:
                return min(left, max(poll_interval, 1.0))
        return poll_interval

    def _probe(self, now: datetime, reason: object) -> None:
        """While paused: try ``account`` now and then; resume delivery when it answers."""
        if self.next_probe_at is not None and now < self.next_probe_at:
            return
        self.next_probe_at = now + self.probe_every
        with self.runtime.sessions.begin() as session:
            if self.quota.try_acquire(session, now) > 0:
                return
        try:
            self.api.account()
        except FacturationError as exc:
            log.error("delivery.still_paused", reason=reason, probe_status=exc.status)
            return
        with self.runtime.sessions.begin() as session:
            resume(session, self.clock(), by=f"probe:{self.worker_id}")
        log.warning("delivery.resumed", by="probe", worker_id=self.worker_id)


def _load_mapper(runtime: Runtime) -> Mapper:
    from bridge.mapping.engine import MappingEngine

    engine: Mapper = MappingEngine.load(runtime.settings)
    return engine


def run_worker(runtime: Runtime, stop: threading.Event, worker_id: str | None = None) -> None:
    """The ``worker`` command's loop (``serve`` runs that command as a child process)."""
    from bridge.facturation.client import FacturationClient
    from bridge.watch.setup import build_watch

    worker_id = worker_id or default_worker_id()
    client = FacturationClient.from_settings(runtime.settings)
    heartbeat = Heartbeat(
        runtime.sessions,
        worker_id,
        Liveness.from_settings(runtime.settings),
        sole_worker=runtime.settings.is_sqlite,
    )
    try:
        worker = Worker(
            runtime, client, _load_mapper(runtime), worker_id=worker_id, watch=build_watch(runtime)
        )
        heartbeat.start()  # before the first claim: takes back a dead predecessor's claims
        worker.run(stop, runtime.settings.poll_interval)
    finally:
        heartbeat.stop()
        client.close()
