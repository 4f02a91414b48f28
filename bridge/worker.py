"""The delivery worker: claims due outbox commands and calls Facturation.pro. (Filled in by the outbox work.)"""

from __future__ import annotations

import threading

from bridge.logging import get_logger
from bridge.runtime import Runtime

log = get_logger("bridge.worker")


def run_worker(runtime: Runtime, stop: threading.Event, worker_id: str | None = None) -> None:
    log.info("worker.started", worker_id=worker_id)
    while not stop.wait(runtime.settings.poll_interval):
        pass
    log.info("worker.stopped", worker_id=worker_id)


class WorkerThread:
    """Runs :func:`run_worker` beside the web server (``serve``); ``stop`` lets the call in flight end."""

    def __init__(self, runtime: Runtime, worker_id: str | None = None) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=run_worker,
            args=(runtime, self._stop, worker_id),
            name="bridge-worker",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
