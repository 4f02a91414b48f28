"""Mapping benchmark: the median time to map one stored event, per built-in mapping.

For every golden sample that yields commands (one per built-in mapping file, real fixture payloads)
plus one large Shopify order (the tax-inclusive French order with its lines repeated to 60), it
maps the event many times through the built-in mapping files and reports the median and 95th
percentile. Stripe look-ups are answered from memory, so only the mapping itself is measured.
Expressions are evaluated by the ``jmespath`` library's interpreter (compiled once at load).

``per_order`` sums it up: the median over the samples of their median and 95th-percentile times
(a typical order), the same for the 60-line order, and what mapping a whole day's quota of orders
(``FACTURATION_DAILY_LIMIT``, 10,000 API calls, at best one per order) costs in CPU seconds.

In the same run it measures a baseline on the same payload: ``parse_json`` of the raw body, a cost
every event already pays once. The ratio says how many parses one mapping costs, which stays
meaningful on a noisy shared machine where absolute times are not.

    python bench/mapping.py                 # 2,000 mappings per sample
    python bench/mapping.py --iterations 300

Prints one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bridge.config import Settings  # noqa: E402  (after the path fix, so the repo's package imports)
from bridge.inbound.events import InboundEvent, parse_json  # noqa: E402
from bridge.mapping.engine import MappingEngine  # noqa: E402
from bridge.mapping.samples import Sample, read_samples  # noqa: E402

GOAL_MS = 2.0


def timed(fn: Callable[[], object], iterations: int) -> list[float]:
    """Per-call times in microseconds."""
    out = []
    for _ in range(iterations):
        start = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - start) / 1000)
    return out


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_us": round(statistics.median(ordered), 1),
        "p95_us": round(ordered[int(len(ordered) * 0.95) - 1], 1),
    }


def large_order(sample: Sample, lines: int) -> tuple[InboundEvent, bytes]:
    event = sample.event()
    order: dict[str, Any] = copy.deepcopy(event.payload)
    base = order["line_items"]
    order["line_items"] = [
        {**copy.deepcopy(base[i % len(base)]), "id": 10_000 + i} for i in range(lines)
    ]
    line_total = sum(
        (int(item["quantity"]) * Decimal(item["price"]) for item in order["line_items"]),
        Decimal(0),
    )
    shipping = Decimal(order["shipping_lines"][0]["price"])
    total = str(line_total + shipping)
    order["total_price"] = total
    order["total_price_set"] = {"presentment_money": {"amount": total, "currency_code": "EUR"}}
    big = InboundEvent(
        event.source,
        event.event_id,
        event.event_type,
        order,
        event.received_at,
        event.headers,
    )
    return big, json.dumps(order, default=str).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args()

    mapper = MappingEngine.load(Settings(), network=False)  # the built-in files
    cases: list[tuple[str, Sample, InboundEvent, bytes]] = []
    seen: set[str] = set()
    samples = read_samples(REPO / "tests" / "golden")
    for sample in samples:
        mapping = f"{sample.source}/{sample.event_type}"
        if "commands" not in sample.expected or sample.settings or mapping in seen:
            continue
        seen.add(mapping)
        cases.append((mapping, sample, sample.event(), sample.fixture.read_bytes()))
    french = next(s for s in samples if s.path.stem == "shopify_orders_paid_fr_taxes_included")
    big, big_body = large_order(french, 60)
    cases.append(("shopify/orders/paid (60 lines)", french, big, big_body))

    results = []
    for name, sample, event, body in cases:
        sample.use_lookups(mapper)
        outcome = mapper.map_event(event)  # warm-up, and what is being timed
        mapping = summary(timed(lambda e=event: mapper.map_event(e), args.iterations))
        parse = summary(timed(lambda b=body: parse_json(b), args.iterations))
        results.append(
            {
                "mapping": name,
                "sample": sample.path.name,
                "commands": len(outcome.commands),
                "map": mapping,
                "baseline_parse_json": parse,
                "ratio_map_to_parse": round(mapping["median_us"] / parse["median_us"], 2),
                "under_goal": mapping["median_us"] / 1000 < GOAL_MS,
            }
        )
    settings = Settings()
    samples_only = [r for r in results if not str(r["mapping"]).endswith("(60 lines)")]
    sixty = next(r for r in results if str(r["mapping"]).endswith("(60 lines)"))
    typical = {
        "median_ms": round(
            statistics.median(r["map"]["median_us"] for r in samples_only) / 1000, 3
        ),
        "p95_ms": round(statistics.median(r["map"]["p95_us"] for r in samples_only) / 1000, 3),
    }
    large = {
        "median_ms": round(sixty["map"]["median_us"] / 1000, 3),
        "p95_ms": round(sixty["map"]["p95_us"] / 1000, 3),
    }
    per_order = {
        "typical_order": typical,
        "order_60_lines": large,
        "daily_quota_orders": settings.daily_limit,
        "daily_quota_cpu_s": {
            "typical_order": round(typical["median_ms"] * settings.daily_limit / 1000, 1),
            "order_60_lines": round(large["median_ms"] * settings.daily_limit / 1000, 1),
        },
    }
    report = {
        "benchmark": "mapping",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "iterations": args.iterations,
        "goal_ms": GOAL_MS,
        "results": results,
        "per_order": per_order,
        "all_under_goal": all(r["under_goal"] for r in results),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
