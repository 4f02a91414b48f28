"""Worker heartbeats on real SQLite and PostgreSQL: a dead worker's claims are released in one
statement, fenced against its late writes, and an uncertain create waits before its lookup."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from bridge.config import ConfigError
from bridge.db.models import OutboxCommand, WorkerRecord
from bridge.outbox.liveness import Heartbeat, Liveness, workers_status
from bridge.outbox.queue import Claimed, Outbox
from bridge.runtime import Runtime
from tests.support.outbox_kit import Clock, put, runtime_for, sale, settings_for

TIMEOUT = 5.0  # FACTURATION_TIMEOUT in these tests: 20 s presumed settle, 10 s known


def _heartbeat(
    runtime: Runtime, worker_id: str, clock: Clock, *, sole: bool = False, pid: int | None = None
) -> Heartbeat:
    beat = Heartbeat(
        runtime.sessions,
        worker_id,
        Liveness.from_settings(runtime.settings),
        sole_worker=sole,
        clock=clock,
    )
    if pid is not None:
        beat.pid = pid
    return beat


def _dead_pid() -> int:
    """The pid of a process of this host that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(30)
    return proc.pid


def _row(runtime: Runtime) -> OutboxCommand:
    with runtime.sessions() as session:
        return session.execute(select(OutboxCommand)).scalar_one()


def _claimed_by(runtime: Runtime, clock: Clock, worker_id: str) -> tuple[Outbox, Claimed]:
    outbox = Outbox(runtime.sessions, lease_seconds=runtime.settings.lease_seconds, clock=clock)
    claimed = outbox.claim(worker_id)
    assert claimed is not None
    return outbox, claimed


def test_a_silent_workers_claims_are_released_and_its_late_writes_fenced(db_url: str) -> None:
    clock = Clock()
    with runtime_for(db_url, api_timeout=TIMEOUT) as runtime:
        put(runtime, sale(1, "cus_a")[:1], clock())
        dead, live = _heartbeat(runtime, "w-dead", clock), _heartbeat(runtime, "w-live", clock)
        assert dead.beat() == 0
        outbox, claimed = _claimed_by(runtime, clock, "w-dead")
        clock.advance(5)
        assert live.beat() == 0  # silent for 5 s: not dead yet
        assert _row(runtime).status == "in_flight"
        clock.advance(6)
        with capture_logs() as logs:
            assert live.beat() == 1  # silent for 11 s > BRIDGE_WORKER_DEAD_AFTER (10 s)
        row = _row(runtime)
        assert (row.status, row.lease_expires_at, row.leased_by) == ("pending", None, "w-dead")
        assert row.next_attempt_at == clock()  # nothing was sent: due at once
        assert row.lease_token == claimed.lease_token
        assert "silent" in (row.last_error or "")
        released = [e for e in logs if e["event"] == "worker.claims_released"]
        assert released[0]["dead_workers"] == ["w-dead"]
        assert not outbox.complete(claimed, remote_id=1, result={"id": 1})  # the late writer
        assert not outbox.retry_later(claimed, wait_s=1, error="x", consume_attempt=True)
        again = outbox.claim("w-live")
        assert again is not None
        assert again.lease_token == claimed.lease_token + 1
        assert outbox.complete(again, remote_id=2, result={"id": 2})
        assert (_row(runtime).status, _row(runtime).remote_id) == ("done", 2)


def test_an_uncertain_create_waits_the_longest_call_then_is_looked_up(db_url: str) -> None:
    clock = Clock()
    with runtime_for(db_url, api_timeout=TIMEOUT) as runtime:
        put(runtime, sale(1, "cus_a")[:1], clock())
        live = _heartbeat(runtime, "w-live", clock)
        _heartbeat(runtime, "w-dead", clock).beat()
        outbox, claimed = _claimed_by(runtime, clock, "w-dead")
        assert outbox.begin_send(claimed, None, mark_unknown=True) == 0.0  # the create leaves
        clock.advance(11)
        assert live.beat() == 1
        row = _row(runtime)
        assert row.outcome_unknown
        assert row.next_attempt_at == clock() + timedelta(seconds=4 * TIMEOUT)
        clock.advance(4 * TIMEOUT - 1)
        assert outbox.claim("w-live") is None  # the dead worker's request may still be landing
        clock.advance(1)
        again = outbox.claim("w-live")
        assert again is not None
        assert again.outcome_unknown  # so delivery looks it up by api_id before sending


def test_a_worker_that_beats_keeps_its_claims_until_its_lease_ends(db_url: str) -> None:
    clock = Clock()
    with runtime_for(db_url, api_timeout=TIMEOUT, lease_seconds=30.0) as runtime:
        put(runtime, sale(1, "cus_a")[:1], clock())
        busy, other = _heartbeat(runtime, "w-busy", clock), _heartbeat(runtime, "w-other", clock)
        busy.beat()
        outbox, _ = _claimed_by(runtime, clock, "w-busy")
        for _ in range(14):  # 28 s in a long call, its heartbeat thread still beating
            clock.advance(2)
            busy.beat()
            assert other.beat() == 0
        assert _row(runtime).status == "in_flight"
        assert outbox.claim("w-other") is None
        clock.advance(3)  # the lease stays the bound for a live but stuck call
        assert outbox.claim("w-other") is not None


def test_sqlite_a_restarted_worker_takes_back_its_dead_predecessors_claims_at_once(
    sqlite_url: str,
) -> None:
    clock = Clock()
    with runtime_for(sqlite_url, api_timeout=TIMEOUT) as runtime:
        put(runtime, sale(1, "cus_a"), clock())
        old = _heartbeat(runtime, "host:111", clock, sole=True, pid=_dead_pid())
        old.beat()
        outbox, first = _claimed_by(runtime, clock, "host:111")
        assert outbox.begin_send(first, None, mark_unknown=True) == 0.0
        clock.advance(1)  # restarted one second later: its heartbeat is still fresh
        new = _heartbeat(runtime, "host:222", clock, sole=True)
        assert new.beat() == 1
        row = _row_by_key(runtime, first.key)
        assert row.status == "pending"
        assert row.next_attempt_at == clock() + timedelta(seconds=2 * TIMEOUT)  # known dead
        assert "gone" in (row.last_error or "")


def test_sqlite_a_running_worker_is_not_robbed_but_warned_about(sqlite_url: str) -> None:
    clock = Clock()
    with runtime_for(sqlite_url, api_timeout=TIMEOUT) as runtime:
        put(runtime, sale(1, "cus_a")[:1], clock())
        running = _heartbeat(runtime, "w-running", clock, sole=True)  # this test's own pid
        running.beat()
        _claimed_by(runtime, clock, "w-running")
        with capture_logs() as logs:
            assert _heartbeat(runtime, "w-second", clock, sole=True).beat() == 0
        assert _row(runtime).status == "in_flight"
        assert any(e["event"] == "worker.another_worker_on_sqlite" for e in logs)


def test_sqlite_claims_without_a_worker_row_are_taken_back_at_start(sqlite_url: str) -> None:
    clock = Clock()
    with runtime_for(sqlite_url, api_timeout=TIMEOUT) as runtime:
        put(runtime, sale(1, "cus_a")[:1], clock())
        _claimed_by(runtime, clock, "claimed-before-heartbeats")
        assert _heartbeat(runtime, "w-new", clock, sole=True).beat() == 1
        assert _row(runtime).status == "pending"


def test_a_worker_restarted_under_the_same_id_takes_back_its_claims(db_url: str) -> None:
    clock = Clock()
    with runtime_for(db_url, api_timeout=TIMEOUT) as runtime:
        put(runtime, sale(1, "cus_a")[:1], clock())
        _heartbeat(runtime, "worker-1", clock, pid=_dead_pid()).beat()
        _claimed_by(runtime, clock, "worker-1")
        clock.advance(1)
        assert _heartbeat(runtime, "worker-1", clock).beat() == 1  # not the sole worker: any DB
        assert _row(runtime).status == "pending"


def test_status_shows_workers_alive_dead_and_claims_waiting_on_the_dead(db_url: str) -> None:
    clock = Clock()
    with runtime_for(db_url, api_timeout=TIMEOUT) as runtime:
        put(runtime, sale(1, "cus_a")[:1], clock())
        _heartbeat(runtime, "w-dead", clock).beat()
        _claimed_by(runtime, clock, "w-dead")
        clock.advance(30)
        alive = _heartbeat(runtime, "w-alive", clock)
        with runtime.sessions.begin() as session:  # the row alone, without the sweep
            alive._upsert(session, clock())
        with runtime.sessions() as session:
            status = workers_status(session, clock(), 10.0)
        assert [w["worker_id"] for w in status["alive"]] == ["w-alive"]
        assert [w["worker_id"] for w in status["dead"]] == ["w-dead"]
        assert status["dead"][0]["heartbeat_age_s"] == 30.0
        assert status["commands_waiting_on_dead_worker"] == 1
        alive.beat()
        with runtime.sessions() as session:
            assert workers_status(session, clock(), 10.0)["commands_waiting_on_dead_worker"] == 0


def test_a_worker_that_stops_cleanly_removes_its_row(db_url: str) -> None:
    clock = Clock()
    with runtime_for(db_url, api_timeout=TIMEOUT, heartbeat_seconds=0.05) as runtime:
        beat = _heartbeat(runtime, "w-1", clock)
        beat.start()
        with runtime.sessions() as session:
            assert session.get(WorkerRecord, "w-1") is not None
        beat.stop()
        with runtime.sessions() as session:
            assert session.get(WorkerRecord, "w-1") is None


def test_dead_after_must_span_three_heartbeats() -> None:
    with pytest.raises(ConfigError, match="BRIDGE_WORKER_DEAD_AFTER: must be at least 3 x"):
        settings_for("sqlite://", heartbeat_seconds=2.0, worker_dead_after=5.0)


def _row_by_key(runtime: Runtime, key: str) -> OutboxCommand:
    with runtime.sessions() as session:
        return session.execute(
            select(OutboxCommand).where(OutboxCommand.idempotency_key == key)
        ).scalar_one()
