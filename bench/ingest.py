"""Webhook ingest benchmark: signed Stripe and Shopify deliveries against a real ``web`` process.

For each backend (SQLite with synchronous=FULL, PostgreSQL started for the run) it starts
``facturation-bridge web``, then sends deliveries — half Stripe ``invoice.paid``, half Shopify
``orders/paid``, real fixture bodies, real signatures, 10 % re-sends of an earlier delivery — first at
fixed offered rates (open loop: requests leave on schedule whatever the answers, latency counted from
the scheduled time) and then as fast as it can (closed loop: N connections, each sending as soon as
its previous answer arrived). In the same run it measures a bare Starlette endpoint under uvicorn
(``bench/baseline_app.py``) with the same closed loop, and reports the bridge's throughput as a ratio
of it. Finally it checks, in the database, that every acknowledged delivery is stored.

With ``--phases serve`` (on by default) it also measures ``facturation-bridge serve`` receiving
signed sales while its worker child maps and delivers them to a real ``facturation-sandbox``
(``bench/serve_sales.py``): open loop at ``--serve-rate`` (150/s), then closed loop, each as a ratio
to the baseline (which is also measured in open loop at that rate).

The load generator (``bench/loadgen.py``) is plain asyncio over keep-alive connections with
pre-signed, pre-encoded requests, so that it costs as little CPU as possible on the machine it
shares with the server.

    python bench/ingest.py                     # full run (about 3 minutes)
    python bench/ingest.py --duration 5        # quick run (about 1 minute)
    python bench/ingest.py --backends sqlite   # one backend only

Prints one JSON document on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402  (after the path fix, so that the repo's packages import)
import stripe  # noqa: E402
from sqlalchemy import select  # noqa: E402

from bench.loadgen import (  # noqa: E402
    Delivery,
    closed_loop,
    generator_gc_paused,
    open_loop,
    process,
)
from bench.serve_sales import bench_serve, serve_goal  # noqa: E402
from bridge.db import make_engine  # noqa: E402
from bridge.db.models import InboxEvent  # noqa: E402
from bridge.inbound.sources.shopify import sign as shopify_sign  # noqa: E402
from tests.support.pg import PostgresServer, start_postgres  # noqa: E402
from tests.support.procs import free_port  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures"
STRIPE_SECRET = "whsec_bench_secret"  # noqa: S105  (a throwaway secret for the benchmark's server)
SHOPIFY_SECRET = "bench_shopify_secret"  # noqa: S105  (same)
DUPLICATE_SHARE = 0.10
SERVE_MIN_RATE = 1000  # sales accepted per second, closed loop, with delivery running
SERVE_MAX_P99_MS = 50  # at --serve-rate offered
STRIPE_FIXTURE_ID = b'"evt_000000000000000000000000"'


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


def storage_check(database_url: str, acknowledged: set[tuple[str, str]]) -> dict[str, Any]:
    """Every acknowledged delivery must be in the inbox."""
    stored = stored_keys(database_url)
    missing = acknowledged - stored
    return {
        "acknowledged_events": len(acknowledged),
        "stored_events": len(stored),
        "acknowledged_but_missing": len(missing),
        "every_acknowledged_event_stored": not missing,
    }


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
    return {
        "open_loop": open_results,
        "closed_loop": closed,
        "storage_check": storage_check(database_url, acknowledged),
    }


def bench_serve_backend(
    name: str, database_url: str, args: argparse.Namespace, workdir: Path, baseline: dict[str, Any]
) -> dict[str, Any]:
    """Sales into ``serve`` (web + worker delivering to the sandbox), with ratios to the baseline."""
    result, acknowledged = bench_serve(name, _env(database_url), STRIPE_SECRET, args, workdir)
    result["storage_check"] = storage_check(database_url, acknowledged)
    base_rate = baseline["closed_loop"]["accepted_per_s"]
    base_p99 = baseline["open_loop"]["p99_ms"]
    result["ratio_to_baseline"] = {
        "closed_loop_accepted_per_s": (
            round(result["closed_loop"]["accepted_per_s"] / base_rate, 3) if base_rate else None
        ),
        "open_loop_p99": (
            round(result["open_loop"]["p99_ms"] / base_p99, 2)
            if base_p99 and result["open_loop"]["p99_ms"] is not None
            else None
        ),
    }
    result["goal"] = serve_goal(result, SERVE_MIN_RATE, SERVE_MAX_P99_MS)
    result["goal"]["met"] = bool(
        result["goal"]["met"] and result["storage_check"]["every_acknowledged_event_stored"]
    )
    return result


def bench_baseline(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    port = free_port()
    argv = [
        sys.executable, "-m", "uvicorn", "bench.baseline_app:app", "--port", str(port),
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    print("baseline: bare Starlette endpoint under uvicorn", file=sys.stderr)
    with process(argv, dict(os.environ), port, workdir / "baseline.log"):
        generator = Generator(port)
        batch = generator.batch(int(args.serve_rate * args.duration))
        with generator_gc_paused():
            opened = asyncio.run(open_loop(port, batch, args.serve_rate))
        batch = generator.batch(5000)
        with generator_gc_paused():
            closed = asyncio.run(
                closed_loop(port, batch, args.concurrency, args.duration, cycle=True)
            )
    result = {
        "open_loop": opened.summary(mode="open", offered_per_s=args.serve_rate),
        "closed_loop": closed.summary(mode="closed", concurrency=args.concurrency),
    }
    print(f"  baseline: {result}", file=sys.stderr)
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


@contextlib.contextmanager
def databases(backend: str, workdir: Path) -> Iterator[Callable[[str], str]]:
    """A function that makes a fresh, empty database of ``backend`` by name, and returns its URL."""
    if backend == "sqlite":
        yield lambda name: f"sqlite:///{workdir}/{name}.db"
        return
    server: PostgresServer = start_postgres()

    def make(name: str) -> str:
        with psycopg.connect(server.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return server.url(name)

    try:
        yield make
    finally:
        server.stop()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds per phase (default 10)"
    )
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated")
    parser.add_argument(
        "--phases",
        default="web,serve",
        help="web (deliveries into 'web'), serve (sales into 'serve')",
    )
    parser.add_argument("--sqlite-rates", default="150,300", help="open-loop rates per second")
    parser.add_argument("--postgres-rates", default="300,600", help="open-loop rates per second")
    parser.add_argument(
        "--serve-rate", type=float, default=150, help="sales/s offered to 'serve' (default 150)"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop connections")
    parser.add_argument(
        "--max-rate", type=float, default=3000, help="requests prepared per second of closed loop"
    )
    parser.add_argument(
        "--web-args", default="", help="extra arguments for 'facturation-bridge web' and 'serve'"
    )
    return parser


def main() -> int:
    args = _parser().parse_args()
    args.web_args = args.web_args.split()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    phases = {p.strip() for p in args.phases.split(",")}
    started = time.time()
    report: dict[str, Any] = {
        "benchmark": "ingest",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "shared": "other engineers' test suites may run at the same time",
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": {
            "duration_s": args.duration,
            "concurrency": args.concurrency,
            "duplicate_share": DUPLICATE_SHARE,
            "serve_rate": args.serve_rate,
            "web_args": args.web_args,
        },
    }
    min_rates = {"sqlite": (args.sqlite_rates, 300), "postgres": (args.postgres_rates, 600)}
    goals: list[bool] = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        workdir = Path(tmp)
        baseline = report["baseline"] = bench_baseline(args, workdir)
        base_rate = baseline["closed_loop"]["accepted_per_s"]
        results: dict[str, Any] = {}
        for backend in backends:
            result: dict[str, Any] = {}
            with databases(backend, workdir) as database:
                if "web" in phases:
                    rates = [float(r) for r in min_rates[backend][0].split(",")]
                    web = bench_backend(backend, database("bench"), args, rates, workdir)
                    web["goal"] = _goal(web, rates[0], min_rates[backend][1])
                    ours = web["closed_loop"]["accepted_per_s"]
                    web["ratio_to_baseline"] = round(ours / base_rate, 3) if base_rate else None
                    result["web"] = web
                    goals.append(web["goal"]["met"])
                if "serve" in phases:
                    served = bench_serve_backend(
                        backend, database("bench_serve"), args, workdir, baseline
                    )
                    result["serve_sales"] = served
                    goals.append(served["goal"]["met"])
            results[backend] = result
        report["backends"] = results
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["wall_time_s"] = round(time.time() - started, 1)
    print(json.dumps(report, indent=2))
    return 0 if all(goals) else 1


if __name__ == "__main__":
    sys.exit(main())
