"""A worker process SIGKILLed holding a claim: another one delivers the command within seconds
(the heartbeat's dead-after time, not the 120 s lease), exactly once.

- PostgreSQL: worker A claims, then waits on the quota row that this test holds locked, so the kill
  lands deterministically between the claim and the request. Worker B, started at once under
  another id, sees A's heartbeat go silent and releases the claim.
- SQLite: worker A (default id ``host:pid``) is killed while its create is in the API (the
  sandbox stores it, then holds the answer). A restarted worker, with a new id, takes the claim
  back as it starts, waits 2 x FACTURATION_TIMEOUT, looks the customer up by ``api_id``, finds it,
  and sends nothing again.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bridge.db import migrate
from bridge.db.models import OutboxCommand, QuotaWindow
from bridge.outbox.quota import LOCK_ROW
from bridge.runtime import Runtime
from tests.support.bridge_procs import bridge_env, sandbox_to_file
from tests.support.outbox_kit import put, sale, settings_for

pytestmark = pytest.mark.e2e

LEASE_S = 120.0  # the default: recovery must not wait for it
HEARTBEAT_S, DEAD_AFTER_S = 1.0, 4.0


@contextmanager
def _worker(env: dict[str, str], log: Path, *worker_id: str) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bridge", "worker", *worker_id],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _wait_for(what: Callable[[], bool], timeout: float, message: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if what():
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(message)


def _command(runtime: Runtime) -> OutboxCommand:
    with runtime.sessions() as session:
        return session.execute(select(OutboxCommand)).scalar_one()


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)


@pytest.mark.postgres
def test_killed_after_its_claim_another_worker_delivers_within_the_dead_after_time(
    pg_url: str, tmp_path: Path
) -> None:
    runtime = Runtime.open(settings_for(pg_url))
    put(runtime, sale(1, "cus_a")[:1])
    with runtime.sessions.begin() as session:
        session.add(QuotaWindow(name=LOCK_ROW))
    with sandbox_to_file(tmp_path / "sandbox.log") as sandbox:
        env = bridge_env(
            pg_url,
            sandbox.url,
            FACTURATION_TIMEOUT="5",
            BRIDGE_LEASE_SECONDS=str(LEASE_S),
            BRIDGE_HEARTBEAT_SECONDS=str(HEARTBEAT_S),
            BRIDGE_WORKER_DEAD_AFTER=str(DEAD_AFTER_S),
        )
        quota_lock = runtime.engine.connect()
        try:
            quota_lock.execute(  # held: worker A will claim, then wait here before sending
                text("SELECT name FROM quota_windows WHERE name = :n FOR UPDATE"), {"n": LOCK_ROW}
            )
            with _worker(env, tmp_path / "worker-a.log", "--worker-id", "worker-a") as a:
                _wait_for(
                    lambda: _command(runtime).status == "in_flight", 30, "worker A never claimed"
                )
                time.sleep(0.3)  # A is now blocked on the quota row, its claim committed
                _kill(a)
            killed_at = time.monotonic()
        finally:
            quota_lock.rollback()
            quota_lock.close()
        assert _command(runtime).leased_by == "worker-a"
        with _worker(env, tmp_path / "worker-b.log", "--worker-id", "worker-b"):
            waited = _wait_for(
                lambda: _command(runtime).status == "done", 60, "never delivered after the kill"
            )
            recovered = time.monotonic() - killed_at
        ledger = sandbox.ledger()
    row = _command(runtime)
    runtime.close()
    print({"recovered_after_kill_s": round(recovered, 2), "dead_after_s": DEAD_AFTER_S})
    assert recovered < DEAD_AFTER_S + 2 * HEARTBEAT_S + 6.0  # margin for a loaded machine
    assert waited < LEASE_S / 4
    assert len(ledger["customers"]) == 1
    assert row.remote_id == ledger["customers"][0]["id"]
    assert row.lease_token == 2  # claimed by A, released, claimed once by B
    assert "worker.claims_released" in (tmp_path / "worker-b.log").read_text()


def test_sqlite_killed_mid_call_the_restarted_worker_takes_back_and_looks_up(
    tmp_path: Path,
) -> None:
    db_url = f"sqlite:///{tmp_path / 'bridge.db'}"
    timeout_s = 3.0
    runtime = Runtime.open(settings_for(db_url))
    migrate(runtime.engine)
    put(runtime, sale(1, "cus_a")[:1])
    with sandbox_to_file(
        tmp_path / "sandbox.log", "--faults", "slow_after=1.0", "--slow-seconds", "60"
    ) as sandbox:
        env = bridge_env(
            db_url,
            sandbox.url,
            FACTURATION_TIMEOUT=str(timeout_s),
            BRIDGE_LEASE_SECONDS=str(LEASE_S),
        )
        with _worker(env, tmp_path / "worker-a.log") as a:  # default id: host:pid
            _wait_for(
                lambda: len(sandbox.ledger()["customers"]) == 1, 30, "the create never landed"
            )
            _kill(a)  # the answer is held for 60 s: A dies with the outcome unknown
        row = _command(runtime)
        assert (row.status, row.outcome_unknown) == ("in_flight", True)
        restarted = time.monotonic()
        with _worker(env, tmp_path / "worker-b.log"):
            _wait_for(lambda: _command(runtime).status == "done", 60, "never delivered")
            recovered = time.monotonic() - restarted
        ledger = sandbox.ledger()
    row = _command(runtime)
    runtime.close()
    print({"recovered_after_restart_s": round(recovered, 2), "settle_s": 2 * timeout_s})
    assert 2 * timeout_s - 0.5 < recovered < 2 * timeout_s + 8.0  # settled, then looked up
    assert len(ledger["customers"]) == 1  # found by api_id: not created twice
    assert row.remote_id == ledger["customers"][0]["id"]
    logged = (tmp_path / "worker-b.log").read_text()
    assert "worker.claims_released" in logged
    assert "delivery.found_after_unknown_outcome" in logged
