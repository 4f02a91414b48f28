"""Group commit for the inbox: one writer thread stores whatever arrived meanwhile in one transaction.

Each webhook request hands its delivery to :meth:`InboxWriter.store` and waits for the commit that
includes it; the 2xx is still sent only once its row is durable. Under load, the deliveries that
arrive while one transaction commits go together in the next one: one commit (one fsync), one
connection checkout and one round trip for the batch instead of one per request, and no contention
between threads for SQLite's single write lock or the connection pool.

The thread starts on the first delivery and ends after a second without work, so an app that
stops receiving, or a test that builds many apps, leaves no thread behind for long.

A batch that fails for a reason other than the database being unavailable is retried one entry at
a time, so that a single entry the database refuses fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from dataclasses import dataclass

from sqlalchemy.exc import OperationalError

from bridge.inbound.inbox import Entry, Inbox, InboxUnavailableError, Stored
from bridge.logging import get_logger

log = get_logger("bridge.inbound.writer")

MAX_BATCH = 64
IDLE_EXIT_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class _Job:
    entry: Entry
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Stored]


class InboxWriter:
    """Stores entries through ``inbox`` from one background thread, batching them."""

    def __init__(self, inbox: Inbox, *, timeout: float) -> None:
        self._inbox = inbox
        self._timeout = timeout
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = False

    async def store(self, entry: Entry) -> Stored:
        """Store ``entry``; return once it is committed. :class:`InboxUnavailableError` otherwise.

        Waiting longer than the timeout also raises: the entry may still be committed later, and
        the sender's retry is then answered as a duplicate.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Stored] = loop.create_future()
        self._jobs.put(_Job(entry, loop, future))
        self._ensure_thread()
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._timeout)
        except TimeoutError:
            raise InboxUnavailableError(f"not stored within {self._timeout} s") from None

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._run, name="inbox-writer", daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                first = self._jobs.get(timeout=IDLE_EXIT_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._jobs.empty():
                        self._running = False
                        return
                continue
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)

    def _write(self, batch: list[_Job]) -> None:
        try:
            results = self._inbox.store_many([job.entry for job in batch])
        except InboxUnavailableError as exc:
            if len(batch) > 1 and not isinstance(exc.__cause__, OperationalError):
                log.warning("inbox.batch_failed", size=len(batch), error=str(exc))
                for job in batch:
                    self._write([job])
                return
            for job in batch:
                _resolve(job, error=exc)
            return
        except Exception as exc:  # never leave a request waiting on a bug: it answers 503
            log.exception("inbox.writer_error", size=len(batch))
            for job in batch:
                _resolve(job, error=InboxUnavailableError(f"{type(exc).__name__}: {exc}"))
            return
        for job, stored in zip(batch, results, strict=True):
            _resolve(job, result=stored)


def _resolve(
    job: _Job, *, result: Stored | None = None, error: BaseException | None = None
) -> None:
    def settle() -> None:
        if job.future.done():
            return
        if error is not None:
            job.future.set_exception(error)
        elif result is not None:
            job.future.set_result(result)

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
        job.loop.call_soon_threadsafe(settle)
