"""``serve``'s worker as a child process: started, watched, restarted with backoff, stopped.

The web server and the delivery worker used to share one process and one GIL, so mapping and
delivering a burst of sales slowed the webhook answers down. ``serve`` now runs the worker as a
child, ``facturation-bridge worker --parent-pid PID``, supervised by a thread of the web process:

- the child dies with its parent, even on a SIGKILL of the parent (:mod:`bridge.process.lifeline`);
- a child that exits on its own (crash, OOM kill) is restarted after 1, 2, 4… up to 60 s; after
  ``BRIDGE_WORKER_MAX_RESTARTS`` crashes in a row (a run of a minute or more resets the count), or
  on a configuration error (exit status 2, which a restart can't fix), it is left dead and
  ``/readyz`` says so;
- :meth:`WorkerSupervisor.stop` sends SIGTERM: the command in flight finishes and is recorded.

The child is spawned and reaped by the supervising thread only, which lives as long as the child:
Linux delivers the parent-death signal when the *thread* that forked the child ends.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bridge.logging import get_logger

log = get_logger("bridge.process.supervisor")

EXIT_CONFIG = 2  # the CLI's status for a configuration error: restarting can't help
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
STABLE_AFTER_SECONDS = 60.0
WATCH_SECONDS = 0.2

Spawn = Callable[[Sequence[str]], "subprocess.Popen[bytes]"]


def worker_argv(parent_pid: int) -> list[str]:
    """The child's command line: this interpreter, ``-m bridge worker``, tied to ``parent_pid``."""
    return [sys.executable, "-m", "bridge", "worker", "--parent-pid", str(parent_pid)]


def _spawn(argv: Sequence[str]) -> subprocess.Popen[bytes]:
    # Its own process group: a Ctrl-C in a terminal reaches ``serve`` only, which then stops the
    # child with SIGTERM in order (after the web server has drained).
    return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, process_group=0)  # noqa: S603 -- our own command line


@dataclass(frozen=True)
class WorkerHealth:
    """What ``/readyz`` reports about the worker child."""

    running: bool
    restarting: bool
    pid: int | None
    restarts: int
    last_exit: int | None
    reason: str | None

    @property
    def dead(self) -> bool:
        """Not running and not going to be restarted."""
        return not self.running and not self.restarting


class WorkerSupervisor:
    """Runs one worker child and keeps it running; thread-safe :meth:`health`."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        max_restarts: int,
        spawn: Spawn = _spawn,
        backoff_first: float = BACKOFF_FIRST_SECONDS,
        backoff_max: float = BACKOFF_MAX_SECONDS,
        stable_after: float = STABLE_AFTER_SECONDS,
    ) -> None:
        self.argv = list(argv)
        self.max_restarts = max_restarts
        self.backoff_first = backoff_first
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        self._spawn = spawn
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._restarting = True  # until the first child is up
        self._restarts = 0
        self._last_exit: int | None = None
        self._reason: str | None = None
        self._stop_timeout = 60.0
        self._thread = threading.Thread(target=self._supervise, name="bridge-supervisor")

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM the child, wait up to ``timeout`` for it (then SIGKILL), and end supervision."""
        self._stop_timeout = timeout
        self._stop.set()
        self._thread.join()

    def health(self) -> WorkerHealth:
        with self._lock:
            # As the supervising thread last saw it (at most WATCH_SECONDS old): a child that
            # just exited counts as running until the thread has decided what to do about it.
            proc = self._proc
            return WorkerHealth(
                running=proc is not None,
                restarting=self._restarting and not self._stop.is_set(),
                pid=proc.pid if proc is not None else None,
                restarts=self._restarts,
                last_exit=self._last_exit,
                reason=self._reason,
            )

    def _supervise(self) -> None:
        crashes = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                proc = self._spawn(self.argv)
            except OSError as exc:
                code, detail = None, f"could not be started ({exc})"
            else:
                with self._lock:
                    self._proc, self._restarting = proc, False
                log.info("worker.process_started", pid=proc.pid, restarts=self._restarts)
                code = self._wait(proc)
                if code is None:  # stopping: the child was stopped in order
                    return
                detail = _describe_exit(code)
            crashes = 0 if time.monotonic() - started >= self.stable_after else crashes + 1
            delay = self._next_delay(code, crashes, detail)
            if delay is None:
                return
            log.warning("worker.restarting", in_s=delay, crashes_in_a_row=crashes)
            if self._stop.wait(delay):
                return
            with self._lock:
                self._restarts += 1

    def _next_delay(self, code: int | None, crashes: int, detail: str) -> float | None:
        """Record an unexpected exit; the backoff before the restart, or ``None`` to give up."""
        give_up = None
        if code == EXIT_CONFIG:
            give_up = f"worker process {detail} (configuration error)"
        elif code == 0:
            give_up = f"worker process {detail} on its own (stopped by a signal)"
        elif crashes > self.max_restarts:
            give_up = f"worker process {detail}; gave up after {crashes} crashes in a row"
        with self._lock:
            self._proc = None
            self._last_exit = code
            self._reason = give_up or f"worker process {detail}; restarting"
            self._restarting = give_up is None
        if give_up is not None:
            log.error("worker.process_dead", exit_code=code, reason=give_up)
            return None
        log.error("worker.process_crashed", exit_code=code, reason=detail)
        return float(min(self.backoff_max, self.backoff_first * 2 ** (crashes - 1)))

    def _wait(self, proc: subprocess.Popen[bytes]) -> int | None:
        """The child's exit status, or ``None`` once it was stopped because we are stopping."""
        while not self._stop.wait(WATCH_SECONDS):
            code = proc.poll()
            if code is not None:
                return code
        code = proc.poll()
        if code is None:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(self._stop_timeout)
            except subprocess.TimeoutExpired:
                log.error("worker.process_killed", pid=proc.pid, after_s=self._stop_timeout)
                proc.kill()
                code = proc.wait()
        with self._lock:
            self._proc = None
        log.info("worker.process_stopped", pid=proc.pid, exit_code=code)
        return None


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"
