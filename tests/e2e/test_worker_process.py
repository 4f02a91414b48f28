"""The worker as a real process: SIGTERM lets the call in flight finish and be recorded."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from bridge.db import make_engine, migrate
from bridge.db.models import OutboxCommand
from bridge.runtime import Runtime
from tests.support.bridge_procs import bridge_env, sandbox_to_file
from tests.support.outbox_kit import put, sale, settings_for

pytestmark = pytest.mark.e2e


def test_sigterm_finishes_the_call_in_flight_then_stops(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'bridge.db'}"
    engine = make_engine(db_url)
    migrate(engine)
    runtime = Runtime.open(settings_for(db_url))
    put(runtime, sale(1, "cus_a")[:1])
    with sandbox_to_file(
        tmp_path / "sandbox.log", "--faults", "slow_after=1.0", "--slow-seconds", "3"
    ) as sandbox:
        env = bridge_env(db_url, sandbox.url, FACTURATION_TIMEOUT="10")
        with (tmp_path / "worker.log").open("wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "bridge", "worker", "--worker-id", "w-term"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        try:
            deadline = time.monotonic() + 20
            status = None
            while time.monotonic() < deadline:
                with runtime.sessions() as session:
                    status = session.execute(select(OutboxCommand.status)).scalar_one()
                if status == "in_flight":
                    break
                time.sleep(0.05)
            assert status == "in_flight"
            time.sleep(0.5)  # the request is now waiting for the sandbox's slow answer
            signalled = time.monotonic()
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(30) == 0
            waited = time.monotonic() - signalled
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(10)
        ledger = sandbox.ledger()
    with runtime.sessions() as session:
        row = session.execute(select(OutboxCommand)).scalar_one()
    runtime.close()
    engine.dispose()
    assert waited >= 1.5  # it did wait for the answer instead of dying mid-call
    assert row.status == "done"
    assert row.remote_id == ledger["customers"][0]["id"]
    assert len(ledger["customers"]) == 1
    logged = (tmp_path / "worker.log").read_text()
    assert "worker.stopping" in logged
    assert "worker.stopped" in logged
