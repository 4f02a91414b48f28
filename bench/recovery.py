"""Recovery benchmark: reconcile's API cost for 10,000 invoices, backfill's time for 10,000 sales.

Reconcile: a sandbox (in process, high quota) holds ``--invoices`` invoices; the ledger is listed
through the shared quota limiter, as ``reconcile`` does (one quota row lock and log insert per
page), and the baseline is the raw listing (``iter_invoices`` without the limiter) in the same run.
The cost at the real quota (600 requests per 300 s, ``BRIDGE_RECONCILE_QUOTA_SHARE`` 0.5) is
computed from the number of calls: every window lets ``600 x share`` pages through.

Backfill: the local fakes hold ``--sales`` Stripe events (last 30 days) and as many Shopify orders;
``run_backfill`` stores them in a fresh SQLite inbox. The baseline is the raw listing of the same
pages in the same run (no inbox). The time at Stripe's and Shopify's real limits is computed from
the calls: 20 requests per second (``STRIPE_BACKFILL_RATE``), and for Shopify a bucket of 1,000
points refilled at 50 points per second (the standard plan) with each page costing what the fake
says Shopify charges (2 + 1 per order asked).

    python bench/recovery.py                    # 10,000 invoices and sales
    python bench/recovery.py --invoices 1000 --sales 1000

Prints one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bridge.db import make_engine, migrate  # noqa: E402 -- after the path setup
from bridge.logging import configure_logging  # noqa: E402
from bridge.recovery.backfill import run_backfill  # noqa: E402
from bridge.recovery.cli import shopify_source, stripe_source  # noqa: E402
from bridge.recovery.progress import Progress  # noqa: E402
from bridge.recovery.reconcile import QuotaGate, list_documents  # noqa: E402
from tests.support.fake_shopify import FakeShopify, fake_shopify_server, order_node  # noqa: E402
from tests.support.fake_stripe import FakeStripe, serve_fake_stripe  # noqa: E402
from tests.support.recovery_kit import NOW, recovery_runtime, stripe_sales  # noqa: E402
from tests.support.sandbox import in_process_client, new_sandbox  # noqa: E402

REAL_WINDOW, REAL_LIMIT, SHARE = 300.0, 600, 0.5
STRIPE_RATE, SHOPIFY_BUCKET, SHOPIFY_RESTORE = 20.0, 1000.0, 50.0


class _Quiet:
    def isatty(self) -> bool:
        return False

    def write(self, _text: str) -> int:
        return 0


def _fresh_db(folder: Path, name: str) -> str:
    url = f"sqlite:///{folder / name}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


def bench_reconcile(invoices: int, folder: Path) -> dict[str, Any]:
    sandbox = new_sandbox(rate_limit=10**9, daily_limit=10**9)
    client = in_process_client(sandbox)
    customer = client.create_customer({"last_name": "Bench"}).data["id"]
    today = NOW.date().isoformat()
    for n in range(invoices):
        client.create_invoice(
            {
                "customer_id": customer,
                "invoiced_on": today,
                "api_custom": f"stripe:invoice:in_bench_{n:06d}",
                "items": [{"title": "x", "quantity": 1, "unit_price": "10.00", "vat": "0.200"}],
            }
        )
    since = (NOW - timedelta(days=1)).date()
    url = _fresh_db(folder, "reconcile.db")
    with recovery_runtime(url, rate_limit=10**6, daily_limit=10**7) as runtime:
        started = time.perf_counter()
        raw = list(client.iter_invoices(period_start=since.isoformat(), period_type="billed"))
        raw_s = time.perf_counter() - started
        gate = QuotaGate(runtime, SHARE)
        started = time.perf_counter()
        docs = list_documents(client, since, gate)
        gated_s = time.perf_counter() - started
    client.close()
    if not len(raw) == len(docs) == invoices:
        raise SystemExit(f"listed {len(raw)} and {len(docs)} of {invoices} invoices")
    per_window = int(REAL_LIMIT * SHARE)
    return {
        "invoices": invoices,
        "ledger_calls": gate.calls,
        "measured_s": round(gated_s, 3),
        "baseline_raw_listing_s": round(raw_s, 3),
        "ratio_to_baseline": round(gated_s / raw_s, 3),
        "real_quota_s": (math.ceil(gate.calls / per_window) - 1) * REAL_WINDOW,
        "real_quota_note": f"{per_window} pages per {REAL_WINDOW:g} s window at share {SHARE}",
    }


def bench_backfill(sales: int, folder: Path) -> dict[str, Any]:
    stripe = FakeStripe()
    stripe_sales(stripe, range(sales), age_days=3, by_events=True)
    shopify = FakeShopify(maximum=10**9, available=10**9, restore_rate=10**9)
    shopify.orders = [
        order_node(10**6 + i, "12.00", NOW - timedelta(days=2, seconds=i)) for i in range(sales)
    ]
    since = (NOW - timedelta(days=10)).date()
    out: dict[str, Any] = {"sales": sales}
    with serve_fake_stripe(stripe), fake_shopify_server(shopify):
        for name, make in (("stripe", stripe_source), ("shopify", shopify_source)):
            url = _fresh_db(folder, f"{name}.db")
            with recovery_runtime(url, stripe=stripe, shopify=shopify) as runtime:
                source = make(runtime.settings)
                started = time.perf_counter()
                pages = sum(1 for _ in source.batches(since, None))
                raw_s = time.perf_counter() - started
                source = make(runtime.settings)
                started = time.perf_counter()
                result = run_backfill(
                    runtime, source, since, progress=Progress(name, stream=_Quiet())
                )  # type: ignore[arg-type]
                run_s = time.perf_counter() - started
            if result.stored != sales:
                raise SystemExit(f"{name}: stored {result.stored} of {sales}")
            real = pages / STRIPE_RATE if name == "stripe" else _shopify_real_s(pages)
            out[name] = {
                "pages": pages,
                "measured_s": round(run_s, 3),
                "baseline_raw_listing_s": round(raw_s, 3),
                "ratio_to_baseline": round(run_s / raw_s, 3),
                "sales_per_s": round(sales / run_s, 1),
                "real_rate_listing_s": round(real, 1),
            }
    return out


def _shopify_real_s(pages: int, first: int = 50) -> float:
    cost = 2 + first
    return max(0.0, (pages * cost - SHOPIFY_BUCKET) / SHOPIFY_RESTORE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--sales", type=int, default=10_000)
    args = parser.parse_args()
    configure_logging("WARNING", "json")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        report = {
            "reconcile": bench_reconcile(args.invoices, folder),
            "backfill": bench_backfill(args.sales, folder),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
