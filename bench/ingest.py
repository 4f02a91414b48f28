"""Webhook ingest benchmark: signed Stripe and Shopify deliveries against a real ``web`` process.

For each backend (SQLite with synchronous=FULL, PostgreSQL started for the run) it starts
``facturation-bridge web``, then sends deliveries — half Stripe ``invoice.paid``, half Shopify
``orders/paid``, real fixture bodies, real signatures, 10 % re-sends of an earlier delivery — first at
fixed offered rates (open loop: requests leave on schedule whatever the answers, latency counted from
the scheduled time) and then as fast as it can (closed loop: N connections, each sending as soon as
its previous answer arrived). In the same run it measures a bare Starlette endpoint under uvicorn
(``bench/baseline_app.py``) with the same closed loop, and reports the bridge's throughput as a ratio
of it. Finally it checks, in the database, that every acknowledged delivery is stored.

The load generator is plain asyncio over keep-alive connections with pre-signed, pre-encoded
requests, so that it costs as little CPU as possible on the machine it shares with the server.

    python bench/ingest.py                     # full run (about 2 minutes)
    python bench/ingest.py --duration 5        # quick run (about 1 minute)
    python bench/ingest.py --backends sqlite   # one backend only

Prints one JSON document on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402  (after the path fix, so that the repo's packages import)
import stripe  # noqa: E402
from sqlalchemy import select  # noqa: E402

from bridge.db import make_engine  # noqa: E402
from bridge.db.models import InboxEvent  # noqa: E402
from bridge.inbound.sources.shopify import sign as shopify_sign  # noqa: E402
from tests.support.pg import PostgresServer, start_postgres  # noqa: E402
from tests.support.procs import free_port, wait_http  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures"
STRIPE_SECRET = "whsec_bench_secret"  # noqa: S105  (a throwaway secret for the benchmark's server)
SHOPIFY_SECRET = "bench_shopify_secret"  # noqa: S105  (same)
DUPLICATE_SHARE = 0.10
POOL = 64
STRIPE_FIXTURE_ID = b'"evt_000000000000000000000000"'


@dataclass(frozen=True, slots=True)
class Delivery:
    key: tuple[str, str]  # (source, event_id): what the inbox must hold once acknowledged
    head: bytes
    body: bytes


class Generator:
    """Pre-signed deliveries, half Stripe, half Shopify, with a share of re-sends."""

    def __init__(self, port: int, seed: int = 7) -> None:
        self._port = port
        self._rng = random.Random(seed)
        self._stripe = (FIXTURES / "stripe" / "event_invoice.paid.json").read_bytes()
        if STRIPE_FIXTURE_ID not in self._stripe:
            raise SystemExit("the Stripe fixture's event id changed: update STRIPE_FIXTURE_ID")
        self._shopify = (FIXTURES / "shopify" / "orders_paid.json").read_bytes()
        self._shopify_hmac = shopify_sign(self._shopify, SHOPIFY_SECRET)
        self._sent: list[Delivery] = []

    def _head(self, path: str, length: int, extra: str) -> bytes:
        return (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self._port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n{extra}\r\n"
        ).encode("latin-1")

    def _new(self) -> Delivery:
        if self._rng.random() < 0.5:
            event_id = f"evt_bench{uuid.uuid4().hex[:20]}"
            body = self._stripe.replace(STRIPE_FIXTURE_ID, f'"{event_id}"'.encode(), 1)
            header = stripe.WebhookSignature.generate_signature_header(
                body.decode(), STRIPE_SECRET, int(time.time())
            )
            head = self._head("/webhooks/stripe", len(body), f"Stripe-Signature: {header}\r\n")
            return Delivery(("stripe", event_id), head, body)
        event_id = str(uuid.uuid4())
        extra = (
            f"X-Shopify-Hmac-Sha256: {self._shopify_hmac}\r\nX-Shopify-Topic: orders/paid\r\n"
            "X-Shopify-Shop-Domain: bench.myshopify.com\r\nX-Shopify-API-Version: 2026-04\r\n"
            f"X-Shopify-Webhook-Id: {uuid.uuid4()}\r\nX-Shopify-Event-Id: {event_id}\r\n"
            "X-Shopify-Triggered-At: 2026-11-23T21:00:00Z\r\n"
        )
        head = self._head("/webhooks/shopify", len(self._shopify), extra)
        return Delivery(("shopify", event_id), head, self._shopify)

    def batch(self, count: int) -> list[Delivery]:
        out: list[Delivery] = []
        for _ in range(count):
            if self._sent and self._rng.random() < DUPLICATE_SHARE:
                out.append(self._rng.choice(self._sent[-2000:]))
            else:
                delivery = self._new()
                self._sent.append(delivery)
                out.append(delivery)
        return out


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


def _env(database_url: str) -> dict[str, str]:
    keep = {
        k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "STRIPE_", "SHOPIFY_"))
    }
    return {
        **keep,
        "BRIDGE_DATABASE_URL": database_url,
        "BRIDGE_SQLITE_SYNCHRONOUS": "FULL",
        "STRIPE_WEBHOOK_SECRETS": STRIPE_SECRET,
        "SHOPIFY_WEBHOOK_SECRETS": SHOPIFY_SECRET,
        "BRIDGE_LOG_FORMAT": "json",
    }


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


def stored_keys(database_url: str) -> set[tuple[str, str]]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(InboxEvent.source, InboxEvent.event_id)).all()
    finally:
        engine.dispose()
    return {(r.source, r.event_id) for r in rows}


def run_phases(
    port: int, rates: list[float], duration: float, concurrency: int, max_rate: float
) -> tuple[list[dict[str, Any]], dict[str, Any], set[tuple[str, str]]]:
    generator = Generator(port)
    acknowledged: set[tuple[str, str]] = set()
    open_results = []
    for rate in rates:
        batch = generator.batch(int(rate * duration))
        with generator_gc_paused():
            phase = asyncio.run(open_loop(port, batch, rate))
        acknowledged |= phase.acknowledged
        open_results.append(phase.summary(mode="open", offered_per_s=rate))
        print(f"  open {rate}/s: {open_results[-1]}", file=sys.stderr)
    batch = generator.batch(int(max_rate * duration))
    with generator_gc_paused():
        closed = asyncio.run(closed_loop(port, batch, concurrency, duration))
    acknowledged |= closed.acknowledged
    closed_result = closed.summary(mode="closed", concurrency=concurrency)
    print(f"  closed: {closed_result}", file=sys.stderr)
    return open_results, closed_result, acknowledged


def bench_backend(
    name: str, database_url: str, args: argparse.Namespace, rates: list[float], workdir: Path
) -> dict[str, Any]:
    env = _env(database_url)
    subprocess.run(
        [sys.executable, "-m", "bridge", "migrate"],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    port = free_port()
    argv = [sys.executable, "-m", "bridge", "web", "--port", str(port), *args.web_args]
    print(f"{name}: {' '.join(argv[1:])}", file=sys.stderr)
    with process(argv, env, port, workdir / f"web-{name}.log"):
        open_results, closed, acknowledged = run_phases(
            port, rates, args.duration, args.concurrency, args.max_rate
        )
    stored = stored_keys(database_url)
    missing = acknowledged - stored
    return {
        "open_loop": open_results,
        "closed_loop": closed,
        "storage_check": {
            "acknowledged_events": len(acknowledged),
            "stored_events": len(stored),
            "acknowledged_but_missing": len(missing),
            "every_acknowledged_event_stored": not missing,
        },
    }


def bench_baseline(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    port = free_port()
    argv = [
        sys.executable, "-m", "uvicorn", "bench.baseline_app:app", "--port", str(port),
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    print("baseline: bare Starlette endpoint under uvicorn", file=sys.stderr)
    with process(argv, dict(os.environ), port, workdir / "baseline.log"):
        generator = Generator(port)
        batch = generator.batch(5000)
        with generator_gc_paused():
            phase = asyncio.run(
                closed_loop(port, batch, args.concurrency, args.duration, cycle=True)
            )
    result = phase.summary(mode="closed", concurrency=args.concurrency)
    print(f"  closed: {result}", file=sys.stderr)
    return result


def _goal(result: dict[str, Any], offered: float, min_rate: float) -> dict[str, Any]:
    at = next((r for r in result["open_loop"] if r["offered_per_s"] == offered), None)
    p99 = at["p99_ms"] if at else None
    return {
        "accepted_per_s_min": min_rate,
        "accepted_per_s": result["closed_loop"]["accepted_per_s"],
        "p99_ms_max": 50,
        f"p99_ms_at_{int(offered)}_per_s": p99,
        "met": bool(
            result["closed_loop"]["accepted_per_s"] >= min_rate
            and p99 is not None
            and p99 <= 50
            and at is not None
            and at["errors"] == 0
            and result["storage_check"]["every_acknowledged_event_stored"]
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds per phase (default 10)"
    )
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated")
    parser.add_argument("--sqlite-rates", default="150,300", help="open-loop rates per second")
    parser.add_argument("--postgres-rates", default="300,600", help="open-loop rates per second")
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop connections")
    parser.add_argument(
        "--max-rate", type=float, default=3000, help="requests prepared per second of closed loop"
    )
    parser.add_argument(
        "--web-args", default="", help="extra arguments for 'facturation-bridge web'"
    )
    args = parser.parse_args()
    args.web_args = args.web_args.split()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    started = time.time()
    report: dict[str, Any] = {
        "benchmark": "ingest",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": {
            "duration_s": args.duration,
            "concurrency": args.concurrency,
            "duplicate_share": DUPLICATE_SHARE,
            "web_args": args.web_args,
        },
    }
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        workdir = Path(tmp)
        report["baseline"] = bench_baseline(args, workdir)
        base_rate = report["baseline"]["accepted_per_s"]
        results: dict[str, Any] = {}
        if "sqlite" in backends:
            rates = [float(r) for r in args.sqlite_rates.split(",")]
            url = f"sqlite:///{workdir}/bench.db"
            results["sqlite"] = bench_backend("sqlite", url, args, rates, workdir)
            results["sqlite"]["goal"] = _goal(results["sqlite"], rates[0], 300)
        if "postgres" in backends:
            server: PostgresServer = start_postgres()
            try:
                with psycopg.connect(server.admin_url, autocommit=True) as conn:
                    conn.execute("CREATE DATABASE bench")
                rates = [float(r) for r in args.postgres_rates.split(",")]
                results["postgres"] = bench_backend(
                    "postgres", server.url("bench"), args, rates, workdir
                )
                results["postgres"]["goal"] = _goal(results["postgres"], rates[0], 600)
            finally:
                server.stop()
        for result in results.values():
            ours = result["closed_loop"]["accepted_per_s"]
            result["ratio_to_baseline"] = round(ours / base_rate, 3) if base_rate else None
        report["backends"] = results
    report["wall_time_s"] = round(time.time() - started, 1)
    print(json.dumps(report, indent=2))
    return 0 if all(r["goal"]["met"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
