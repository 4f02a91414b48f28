"""The load generator of the ingest benchmarks: keep-alive HTTP/1.1 connections, open and closed loops.

Plain asyncio with pre-signed, pre-encoded requests, so that it costs as little CPU as possible on
the machine it shares with the server it measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.procs import wait_http

REPO = Path(__file__).resolve().parent.parent
POOL = 64


@dataclass(frozen=True, slots=True)
class Delivery:
    key: tuple[str, str]  # (source, event_id): what the inbox must hold once acknowledged
    head: bytes
    body: bytes


class Connection:
    """One keep-alive HTTP/1.1 connection; just enough parsing for our JSON answers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def send(self, delivery: Delivery) -> int:
        if self.reader is None or self.writer is None:
            await self.connect()
        if self.reader is None or self.writer is None:
            raise ConnectionError("not connected")
        self.writer.write(delivery.head)
        self.writer.write(delivery.body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            lowered = name.strip().lower()
            if lowered == b"content-length":
                length = int(value)
            elif lowered == b"connection" and value.strip().lower() == b"close":
                close = True
        await self.reader.readexactly(length)
        if close:
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


@dataclass
class Phase:
    """What one load phase measured."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    exceptions: int = 0
    acknowledged: set[tuple[str, str]] = field(default_factory=set)
    elapsed: float = 0.0

    def record(self, delivery: Delivery, status: int, latency: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.latencies.append(latency)
        if status == 200:
            self.acknowledged.add(delivery.key)

    def summary(self, **extra: Any) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        accepted = self.statuses.get(200, 0)

        def pct(p: float) -> float | None:
            if not ordered:
                return None
            return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

        return {
            **extra,
            "sent": len(self.latencies) + self.exceptions,
            "accepted": accepted,
            "accepted_per_s": round(accepted / self.elapsed, 1) if self.elapsed else 0.0,
            "p50_ms": pct(0.50),
            "p95_ms": pct(0.95),
            "p99_ms": pct(0.99),
            "p999_ms": pct(0.999),
            "max_ms": round(ordered[-1] * 1000, 2) if ordered else None,
            "errors": self.exceptions + sum(n for s, n in self.statuses.items() if s != 200),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "elapsed_s": round(self.elapsed, 2),
        }


async def open_loop(port: int, deliveries: list[Delivery], rate: float) -> Phase:
    """Send at ``rate`` per second on schedule; latency counts from the scheduled time."""
    phase = Phase()
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(POOL):
        conn = Connection(port)
        await conn.connect()  # before the clock starts: connecting is not what is measured
        pool.put_nowait(conn)
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []

    async def one(delivery: Delivery, scheduled: float) -> None:
        conn = await pool.get()
        try:
            status = await conn.send(delivery)
            phase.record(delivery, status, loop.time() - scheduled)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            phase.exceptions += 1
            await conn.close()
        finally:
            pool.put_nowait(conn)

    start = loop.time() + 0.05
    for i, delivery in enumerate(deliveries):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(delivery, scheduled)))
    await asyncio.gather(*tasks)
    phase.elapsed = loop.time() - start
    while not pool.empty():
        await pool.get_nowait().close()
    return phase


async def closed_loop(
    port: int, deliveries: list[Delivery], concurrency: int, duration: float, *, cycle: bool = False
) -> Phase:
    """``concurrency`` connections, each sending its next delivery as soon as it has an answer.

    Stops at ``duration`` or when the prepared deliveries run out (``cycle`` re-sends them, for
    the baseline, which stores nothing).
    """
    phase = Phase()
    loop = asyncio.get_running_loop()
    feed: Iterator[Delivery] = itertools.cycle(deliveries) if cycle else iter(deliveries)
    deadline = loop.time() + duration

    async def worker() -> None:
        conn = Connection(port)
        try:
            while loop.time() < deadline:
                delivery = next(feed, None)
                if delivery is None:
                    return
                sent = loop.time()
                try:
                    status = await conn.send(delivery)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    phase.exceptions += 1
                    await conn.close()
                    continue
                phase.record(delivery, status, loop.time() - sent)
        finally:
            await conn.close()

    start = loop.time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.elapsed = loop.time() - start
    return phase


@contextlib.contextmanager
def generator_gc_paused() -> Iterator[None]:
    """No garbage collection in the load generator during a phase.

    The prepared deliveries are many objects; a full collection scanning them pauses the
    generator for tens of milliseconds, and an open loop would count that pause as server latency.
    """
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


@contextlib.contextmanager
def process(argv: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[None]:
    with log.open("wb") as sink:
        proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=sink, stderr=sink)
        try:
            wait_http(f"http://127.0.0.1:{port}/readyz", timeout=30)
            yield
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
