"""Idle cost of worker heartbeats: an idle worker with heartbeats against the same worker with its
heartbeat pushed out to an hour, in the same run, on SQLite and on PostgreSQL. Prints one JSON object.

    python bench/heartbeat.py [--seconds 20] [--heartbeat 2] [--no-postgres]

For each database and each variant, the worker (:func:`bridge.outbox.worker.run_worker`, the same
code as the ``worker`` command, with its heartbeat thread) runs in a thread of this process against
an empty, migrated database while the main thread sleeps ``--seconds``. Figures:

- ``cpu_pct``: this process's CPU time over wall time (the worker and its heartbeat are all that run);
- ``queries_per_s``, ``commits_per_s``: SQL statements and commits the engine sent, counted by
  SQLAlchemy events;
- ``added``: heartbeats on minus heartbeats off (the heartbeat's own cost), and ``cpu_ratio``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402  (after the path fix, so that the repo's packages import)
from sqlalchemy import event  # noqa: E402

from bridge.config import load_settings  # noqa: E402
from bridge.db import migrate  # noqa: E402
from bridge.logging import configure_logging  # noqa: E402
from bridge.outbox.worker import run_worker  # noqa: E402
from bridge.runtime import Runtime  # noqa: E402
from tests.support.pg import start_postgres  # noqa: E402

HOUR = 3600.0


def _idle(db_url: str, heartbeat_s: float, seconds: float) -> dict[str, float]:
    settings = load_settings(
        database_url=db_url,
        api_url="http://127.0.0.1:9",  # never called: nothing to deliver
        api_login="bench",
        api_key="bench-key",
        firm_id=1,
        user_agent="facturation-bridge bench (dev@example.com)",
        heartbeat_seconds=heartbeat_s,
        worker_dead_after=max(10.0, 3 * heartbeat_s),
    )
    runtime = Runtime.open(settings)
    migrate(runtime.engine)
    counts = {"queries": 0, "commits": 0}

    @event.listens_for(runtime.engine, "before_cursor_execute")
    def _query(*_args: Any) -> None:
        counts["queries"] += 1

    @event.listens_for(runtime.engine, "commit")
    def _commit(*_args: Any) -> None:
        counts["commits"] += 1

    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(runtime, stop, "bench-worker"))
    worker.start()
    time.sleep(1.0)  # start-up (mappings loaded, first beat) is not idle cost
    queries, commits = counts["queries"], counts["commits"]
    cpu, wall = time.process_time(), time.monotonic()
    time.sleep(seconds)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    queries, commits = counts["queries"] - queries, counts["commits"] - commits
    stop.set()
    worker.join(30)
    runtime.close()
    return {
        "cpu_pct": round(100 * cpu / wall, 2),
        "queries_per_s": round(queries / wall, 2),
        "commits_per_s": round(commits / wall, 2),
    }


def _compare(db_url: str, heartbeat_s: float, seconds: float) -> dict[str, Any]:
    off = _idle(db_url, HOUR, seconds)
    on = _idle(db_url, heartbeat_s, seconds)
    return {
        f"heartbeat_{heartbeat_s:g}s": on,
        "heartbeat_hourly": off,
        "added": {k: round(on[k] - off[k], 2) for k in on},
        "cpu_ratio": round(on["cpu_pct"] / off["cpu_pct"], 3) if off["cpu_pct"] else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured idle time per run")
    parser.add_argument("--heartbeat", type=float, default=2.0, help="BRIDGE_HEARTBEAT_SECONDS")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    configure_logging("WARNING", "json")  # stdout carries the JSON result only
    out: dict[str, Any] = {
        "benchmark": "heartbeat_idle_cost",
        "seconds": args.seconds,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    with tempfile.TemporaryDirectory() as work:
        out["sqlite"] = _compare(f"sqlite:///{work}/bridge.db", args.heartbeat, args.seconds)
    if not args.no_postgres:
        server = start_postgres()
        try:
            with psycopg.connect(server.admin_url, autocommit=True) as conn:
                conn.execute("CREATE DATABASE bench_heartbeat")
            out["postgres"] = _compare(server.url("bench_heartbeat"), args.heartbeat, args.seconds)
        finally:
            server.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
