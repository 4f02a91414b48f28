"""The worker supervisor with real (tiny) child processes: restart, backoff, give up, stop."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from structlog.testing import capture_logs

from bridge.process.supervisor import WorkerHealth, WorkerSupervisor


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _until(supervisor: WorkerSupervisor, check: object, timeout: float = 30.0) -> WorkerHealth:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = supervisor.health()
        if check(health):  # type: ignore[operator]
            return health
        time.sleep(0.02)
    raise AssertionError(f"supervisor never reached the state; last {supervisor.health()}")


SLEEPER = "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\ntime.sleep(60)"


def test_a_crashing_child_is_restarted_with_backoff_then_given_up() -> None:
    supervisor = WorkerSupervisor(
        _python("raise SystemExit(3)"), max_restarts=2, backoff_first=0.05, backoff_max=0.08
    )
    with capture_logs() as logs:
        supervisor.start()
        health = _until(supervisor, lambda h: h.dead)
        supervisor.stop()
    assert health.restarts == 2
    assert health.last_exit == 3
    assert health.reason == "worker process exited with status 3; gave up after 3 crashes in a row"
    events = [e["event"] for e in logs]
    assert events.count("worker.process_started") == 3
    assert events.count("worker.process_crashed") == 2
    assert [e["in_s"] for e in logs if e["event"] == "worker.restarting"] == [0.05, 0.08]
    assert events[-1] == "worker.process_dead"


def test_a_configuration_error_is_not_restarted() -> None:
    supervisor = WorkerSupervisor(_python("raise SystemExit(2)"), max_restarts=5)
    supervisor.start()
    health = _until(supervisor, lambda h: h.dead)
    supervisor.stop()
    assert health.restarts == 0
    assert health.reason == "worker process exited with status 2 (configuration error)"


def test_a_run_that_lasted_resets_the_crash_count() -> None:
    supervisor = WorkerSupervisor(
        _python("raise SystemExit(1)"), max_restarts=0, backoff_first=0.01, stable_after=0.0
    )
    supervisor.start()
    health = _until(supervisor, lambda h: h.restarts >= 3)
    supervisor.stop()
    assert not health.dead  # every run counted as stable: it keeps restarting


def test_stop_sends_sigterm_and_waits_for_the_child(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    code = f"{SLEEPER.rsplit(chr(10), 1)[0]}\nopen({str(ready)!r}, 'w').close()\ntime.sleep(60)"
    supervisor = WorkerSupervisor(_python(code), max_restarts=0)
    with capture_logs() as logs:
        supervisor.start()
        running = _until(supervisor, lambda h: h.running and ready.exists())
        assert running.pid is not None
        supervisor.stop(timeout=20)
    stopped = [e for e in logs if e["event"] == "worker.process_stopped"]
    assert stopped == [
        {"event": "worker.process_stopped", "log_level": "info", "pid": running.pid, "exit_code": 0}
    ]
    assert not supervisor.health().running
    assert "worker.process_killed" not in [e["event"] for e in logs]


def test_stop_kills_a_child_that_ignores_sigterm() -> None:
    stubborn = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(60)"
    supervisor = WorkerSupervisor(_python(stubborn), max_restarts=0)
    with capture_logs() as logs:
        supervisor.start()
        _until(supervisor, lambda h: h.running)
        time.sleep(0.5)  # let it install its handler
        started = time.monotonic()
        supervisor.stop(timeout=0.5)
        took = time.monotonic() - started
    assert took < 10
    stopped = [e for e in logs if e["event"] == "worker.process_stopped"]
    assert stopped[0]["exit_code"] == -9
    assert "worker.process_killed" in [e["event"] for e in logs]
