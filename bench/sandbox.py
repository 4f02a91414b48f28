"""Sandbox benchmark: how fast a real ``facturation-sandbox`` process answers the client.

The sandbox stands in for Facturation.pro in the end-to-end tests and the drain benchmark; it must
never be their bottleneck (the real quota allows 2 requests per second on average). This starts one
sandbox process, then, sequentially over one keep-alive connection the way the worker calls it:

- baseline: ``GET /__sandbox/stats`` (the same server, no API logic) — measured in the same run;
- ``create_customer``, ``create_invoice`` (two lines), ``find_by_api_id("invoices")`` (a list
  search over every stored invoice) and ``get_invoice``.

Each operation's throughput is also given as a ratio of the baseline, which is what to compare
across machines (absolute numbers on a shared machine are noisy).

    python bench/sandbox.py              # 500 calls per operation
    python bench/sandbox.py --calls 100  # quick run

Prints one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bridge.facturation.client import FacturationClient  # noqa: E402 -- after the path setup
from bridge.logging import configure_logging  # noqa: E402 -- after the path setup
from tests.support.procs import free_port, wait_http  # noqa: E402 -- after the path setup


def measure(calls: int, operation: Callable[[int], Any]) -> dict[str, float]:
    latencies = []
    started = time.perf_counter()
    for n in range(calls):
        t0 = time.perf_counter()
        operation(n)
        latencies.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "calls": calls,
        "per_second": round(calls / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 3),
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    configure_logging("WARNING")  # stdout carries the JSON result only
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "FACTURATION_"))}
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "facturation_sandbox", "--port", str(port)),
            *("--rate-limit", "1000000", "--daily-limit", "1000000"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/__sandbox/stats")
        results: dict[str, dict[str, float]] = {}
        with httpx.Client(base_url=url) as http:
            results["baseline_stats"] = measure(
                args.calls, lambda _: http.get("/__sandbox/stats").raise_for_status()
            )
        client = FacturationClient(
            base_url=url,
            login="demo",
            api_key="demo-key",
            firm_id=1,
            user_agent="facturation-bridge bench (dev@example.com)",
        )
        with client:
            customers: list[int] = []
            results["create_customer"] = measure(
                args.calls,
                lambda n: customers.append(
                    client.create_customer({"company_name": f"Client {n}", "api_id": n}).data["id"]
                ),
            )
            invoices: list[int] = []
            lines = [
                {"title": "Abonnement", "quantity": "1", "unit_price": "41.667", "vat": "0.200"},
                {"title": "Livraison", "quantity": "2", "unit_price": "4.90", "vat": "0.055"},
            ]
            results["create_invoice"] = measure(
                args.calls,
                lambda n: invoices.append(
                    client.create_invoice(
                        {"customer_id": customers[n], "api_id": 10_000 + n, "items": lines}
                    ).data["id"]
                ),
            )
            results["find_by_api_id_invoices"] = measure(
                args.calls, lambda n: client.find_by_api_id("invoices", 10_000 + n)
            )
            results["get_invoice"] = measure(args.calls, lambda n: client.get_invoice(invoices[n]))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    base = results["baseline_stats"]["per_second"]
    print(
        json.dumps(
            {
                "benchmark": "sandbox",
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "stored_invoices_at_search": args.calls,
                "results": results,
                "ratio_to_baseline": {
                    name: round(r["per_second"] / base, 3)
                    for name, r in results.items()
                    if name != "baseline_stats"
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
