"""The ingest benchmark's ``serve`` phases: signed sales into ``serve`` while its worker delivers them.

``facturation-bridge serve`` (web + its worker child) receives real Stripe ``invoice.paid`` sales
(the fixture with fresh event, invoice, charge and customer ids; 500 returning customers), each of
which maps to commands, while the worker maps them and delivers them to a real
``facturation-sandbox`` process. The sandbox's and the bridge's quotas are lifted so that the
worker runs flat out: the worst case for the web server's latency. Measured: an open loop at
``--serve-rate`` sales/s offered, then a closed loop; each as a ratio to the bare Starlette
baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import stripe

from bench.loadgen import Delivery, closed_loop, generator_gc_paused, open_loop, process
from tests.support.bridge_procs import stripe_sale
from tests.support.procs import free_port
from tests.support.sandbox import FIRM_ID, KEY, LOGIN, USER_AGENT, SandboxProcess, sandbox_process

CUSTOMERS = 500
UNLIMITED = "100000000"


class SaleGenerator:
    """Pre-signed Stripe sales, each a new order (no re-sends: every one must be mapped)."""

    def __init__(self, port: int, secret: str) -> None:
        self._port = port
        self._secret = secret
        self._next = 0

    def batch(self, count: int) -> list[Delivery]:
        out = []
        for _ in range(count):
            order, self._next = self._next, self._next + 1
            hook = stripe_sale(order, f"cus_bench_{order % CUSTOMERS:04d}", 1_000 + order % 90_000)
            header = stripe.WebhookSignature.generate_signature_header(
                hook.body.decode(), self._secret, int(time.time())
            )
            head = (
                f"POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1:{self._port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(hook.body)}\r\n"
                f"Stripe-Signature: {header}\r\n\r\n"
            ).encode("latin-1")
            out.append(Delivery(("stripe", hook.event_id), head, hook.body))
        return out


def _delivered(sandbox: SandboxProcess) -> dict[str, int]:
    stats = sandbox.stats()
    return {"api_requests": stats["requests"], "created": stats["by_status"].get("201", 0)}


def serve_env(base: dict[str, str], api_url: str) -> dict[str, str]:
    return {
        **base,
        "FACTURATION_API_URL": api_url,
        "FACTURATION_API_LOGIN": LOGIN,
        "FACTURATION_API_KEY": KEY,
        "FACTURATION_FIRM_ID": str(FIRM_ID),
        "FACTURATION_USER_AGENT": USER_AGENT,
        "FACTURATION_RATE_LIMIT": UNLIMITED,
        "FACTURATION_DAILY_LIMIT": UNLIMITED,
    }


def bench_serve(
    name: str, env: dict[str, str], secret: str, args: argparse.Namespace, workdir: Path
) -> tuple[dict[str, Any], set[tuple[str, str]]]:
    """Both phases against ``serve``; the results and the acknowledged event keys."""
    limits = ["--rate-limit", UNLIMITED, "--daily-limit", UNLIMITED]
    with sandbox_process(*limits, log=workdir / f"sandbox-{name}.log") as sandbox:
        port = free_port()
        argv = [sys.executable, "-m", "bridge", "serve", "--port", str(port), *args.web_args]
        print(f"{name}: {' '.join(argv[1:])} + facturation-sandbox", file=sys.stderr)
        with process(argv, serve_env(env, sandbox.url), port, workdir / f"serve-{name}.log"):
            generator = SaleGenerator(port, secret)
            rate = args.serve_rate
            batch = generator.batch(int(rate * args.duration))
            before = _delivered(sandbox)
            with generator_gc_paused():
                opened = asyncio.run(open_loop(port, batch, rate))
            after_open = _delivered(sandbox)
            batch = generator.batch(int(args.max_rate * args.duration))
            with generator_gc_paused():
                closed = asyncio.run(closed_loop(port, batch, args.concurrency, args.duration))
            after_closed = _delivered(sandbox)
    result = {
        "open_loop": opened.summary(mode="open", offered_per_s=rate),
        "closed_loop": closed.summary(mode="closed", concurrency=args.concurrency),
        "delivered_during_open_loop": {k: after_open[k] - before[k] for k in before},
        "delivered_during_closed_loop": {k: after_closed[k] - after_open[k] for k in before},
    }
    print(f"  serve open {rate}/s: {result['open_loop']}", file=sys.stderr)
    print(f"  serve closed: {result['closed_loop']}", file=sys.stderr)
    return result, opened.acknowledged | closed.acknowledged


def serve_goal(result: dict[str, Any], min_rate: float, max_p99_ms: float) -> dict[str, Any]:
    opened, closed = result["open_loop"], result["closed_loop"]
    return {
        "accepted_per_s_min": min_rate,
        "accepted_per_s": closed["accepted_per_s"],
        "p99_ms_max": max_p99_ms,
        "p99_ms_open_loop": opened["p99_ms"],
        "met": bool(
            closed["accepted_per_s"] >= min_rate
            and opened["p99_ms"] is not None
            and opened["p99_ms"] <= max_p99_ms
            and opened["errors"] == 0
        ),
    }
