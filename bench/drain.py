"""Outbox drain under the quota: a backlog of orders from returning customers, the real limits scaled
in time, the bridge and the sandbox as real processes. Prints one JSON object.

    python bench/drain.py [--orders 1000] [--customers 50] [--rate-limit 60] [--rate-window 30]
                          [--workers 1] [--live 30]

Phase 1 (not measured) delivers the customers, so that every order of phase 2 is from a returning
customer; its invoices confirm on the sandbox the two shapes phase 2's sales have (EUR, VAT 20 %
included: every sale is a French consumer's; an amount whose VAT cannot be exactly 20 % of a base in
cents, one in six, adds a 0 % "Écart d'arrondi de TVA" line: a second shape), at least
``BRIDGE_SHAPE_CONFIRMATIONS`` (20) each with the default 50 customers. Then ``--new-shape`` orders in another currency (USD:
a shape not yet confirmed) measure what a draft checked before it is finalised costs. Phase 2 posts
``--orders`` signed Stripe ``invoice.paid`` webhooks (the confirmed shape) as fast as the bridge
takes them, then waits for every invoice. Figures:

- ``new_shape_calls_per_invoice``: requests per invoice of a shape not yet confirmed (draft, then
  finalise: goal 2.0), and ``new_shape_vs_confirmed``, its ratio to phase 2's figure;

- ``api_calls_per_invoice``: the sandbox's requests during phase 2 / invoices (goal <= 1.05);
- ``window_share``: requests in each full quota window / the limit, windows opened the way the
  server opens them (the first request after the previous window closed) (goal >= 0.95);
- ``rate_limited_429``: 429 answers during phase 2 — all of them caused by us (goal 0);
- ``latency_s``: webhook stored -> invoice confirmed, p50/p95/max, which with a backlog is the
  queue's wait;
- ``live_latency_s``: the same for ``--live`` orders sent one by one after the drain, with quota
  available (goal: p95 <= 1 s);
- ``baseline``: the fastest drain the quota allows (orders / limit windows), measured against the
  run's own drain time as ``drain_vs_quota_bound`` (1.0 = the quota is the only limit).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import func, select  # noqa: E402  (after the path fix, so that the repo's packages import)

from bridge.db import make_engine  # noqa: E402
from bridge.db.models import InboxEvent, OutboxCommand, QuotaRequest  # noqa: E402
from tests.support.bridge_procs import (  # noqa: E402
    bridge_env,
    post_all,
    running_bridge,
    sandbox_to_file,
    stripe_sale,
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def _wait_done(db_url: str, expected: int, timeout: float) -> None:
    engine = make_engine(db_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                done = conn.execute(
                    select(func.count())
                    .select_from(OutboxCommand)
                    .where(OutboxCommand.status == "done")
                ).scalar_one()
            if done >= expected:
                return
            time.sleep(0.5)
    finally:
        engine.dispose()
    raise TimeoutError(f"fewer than {expected} commands done after {timeout} s")


def _windows(times: list[datetime], window: float) -> list[int]:
    """Requests per window, windows opened like the server's: by the first request after the last closed."""
    counts: list[int] = []
    start: datetime | None = None
    for t in sorted(times):
        if start is None or (t - start).total_seconds() >= window:
            start = t
            counts.append(0)
        counts[-1] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--rate-limit", type=int, default=60)
    parser.add_argument("--rate-window", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--live", type=int, default=30, help="live orders after the drain")
    parser.add_argument("--new-shape", type=int, default=20, help="orders of an unconfirmed shape")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bridge-drain-"))
    db_url = f"sqlite:///{work / 'bridge.db'}"
    quota = ["--rate-limit", str(args.rate_limit), "--rate-window", str(args.rate_window)]
    with sandbox_to_file(work / "sandbox.log", *quota) as sandbox:
        env = bridge_env(
            db_url,
            sandbox.url,
            FACTURATION_RATE_LIMIT=str(args.rate_limit),
            FACTURATION_RATE_WINDOW=str(args.rate_window),
            BRIDGE_LOG_LEVEL="WARNING",
        )
        with running_bridge(env, work / "logs", args.workers) as bridge:
            # Phase 1: the customers, once (each sale's customer.ensure is keyed by customer).
            # 10.00 and 10.05: both shapes of phase 2's sales (10.05's VAT needs the 0 % "Écart
            # d'arrondi de TVA" line), each confirmed by half the customers' first invoices.
            warm = [
                stripe_sale(100_000 + c, f"cus_drain_{c:04d}", 1005 if c % 2 else 1000)
                for c in range(args.customers)
            ]
            post_all(bridge.url, warm)
            _wait_done(db_url, 2 * args.customers, timeout=3600)
            # A shape not yet confirmed: every invoice drafted, checked, then finalised.
            time.sleep(args.rate_window + 1)
            shape_before = sandbox.stats()
            new_shape = [
                stripe_sale(300_000 + o, f"cus_drain_{o % args.customers:04d}", 700 + o, "usd")
                for o in range(args.new_shape)
            ]
            post_all(bridge.url, new_shape)
            warm_done = 2 * args.customers + args.new_shape
            _wait_done(db_url, warm_done, timeout=3600)
            shape_requests = sandbox.stats()["requests"] - shape_before["requests"]
            # Start phase 2 with a fresh window, so that windows are counted whole.
            time.sleep(args.rate_window + 1)
            before = sandbox.stats()
            phase_start = datetime.now(UTC)
            t0 = time.monotonic()
            hooks = [
                stripe_sale(o, f"cus_drain_{o % args.customers:04d}", 1000 + o)
                for o in range(args.orders)
            ]
            post_all(bridge.url, hooks, threads=4)
            posted_s = time.monotonic() - t0
            _wait_done(db_url, warm_done + args.orders, timeout=3 * 3600)
            drain_s = time.monotonic() - t0
            after = sandbox.stats()
            # Phase 3: live orders one by one, with quota available (a fresh window first).
            time.sleep(args.rate_window + 1)
            live_start = datetime.now(UTC)
            gap = max(0.5, 1.5 * args.rate_window / args.rate_limit)
            for n in range(args.live):
                order = 200_000 + n
                post_all(
                    bridge.url,
                    [stripe_sale(order, f"cus_drain_{n % args.customers:04d}", 5000 + n)],
                    threads=1,
                )
                time.sleep(gap)
            _wait_done(db_url, warm_done + args.orders + args.live, timeout=600)

    engine = make_engine(db_url)
    with engine.connect() as conn:
        sent = [
            r[0]
            for r in conn.execute(
                select(QuotaRequest.sent_at).where(QuotaRequest.sent_at >= phase_start)
            )
        ]
        rows = conn.execute(
            select(InboxEvent.received_at, OutboxCommand.done_at)
            .join(OutboxCommand, OutboxCommand.inbox_event_id == InboxEvent.id)
            .where(OutboxCommand.kind == "invoice.create", InboxEvent.received_at >= phase_start)
            .where(InboxEvent.received_at < live_start)
        ).all()
        live_rows = conn.execute(
            select(InboxEvent.received_at, OutboxCommand.done_at)
            .join(OutboxCommand, OutboxCommand.inbox_event_id == InboxEvent.id)
            .where(OutboxCommand.kind == "invoice.create", InboxEvent.received_at >= live_start)
        ).all()
    engine.dispose()

    latencies = [(done - received).total_seconds() for received, done in rows if done]
    live = [(done - received).total_seconds() for received, done in live_rows if done]
    windows = _windows([t for t in sent if t < live_start], args.rate_window)
    full = windows[:-1] if len(windows) > 1 else windows
    requests = after["requests"] - before["requests"]
    invoices = len(latencies)
    bound_s = max(0.0, math.ceil(args.orders / args.rate_limit) - 1) * args.rate_window
    result: dict[str, Any] = {
        "benchmark": "outbox_drain",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "params": {**vars(args), "database": "sqlite"},
        "invoices": invoices,
        "api_calls": requests,
        "api_calls_per_invoice": round(requests / invoices, 4) if invoices else None,
        "new_shape_invoices": args.new_shape,
        "new_shape_calls_per_invoice": (
            round(shape_requests / args.new_shape, 4) if args.new_shape else None
        ),
        "new_shape_vs_confirmed": (
            round(shape_requests / args.new_shape / (requests / invoices), 4)
            if args.new_shape and invoices and requests
            else None
        ),
        "rate_limited_429": after["rate_limited"] - before["rate_limited"],
        "windows": windows,
        "window_share": {
            "min": round(min(full) / args.rate_limit, 4) if full else None,
            "mean": round(sum(full) / len(full) / args.rate_limit, 4) if full else None,
            "full_windows": len(full),
        },
        "latency_s": {
            "p50": round(_percentile(latencies, 0.50), 3),
            "p95": round(_percentile(latencies, 0.95), 3),
            "max": round(max(latencies), 3) if latencies else None,
        },
        "live_latency_s": {
            "orders": len(live),
            "p50": round(_percentile(live, 0.50), 3),
            "p95": round(_percentile(live, 0.95), 3),
            "max": round(max(live), 3) if live else None,
        },
        "posted_s": round(posted_s, 2),
        "drain_s": round(drain_s, 2),
        "baseline": {"quota_bound_drain_s": bound_s},
        "drain_vs_quota_bound": round(drain_s / bound_s, 4) if bound_s else None,
        "goals": {
            "api_calls_per_invoice_max": 1.05,
            "new_shape_calls_per_invoice": 2.0,
            "window_share_min": 0.95,
            "rate_limited_429": 0,
            "live_latency_p95_s_max": 1.0,
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
