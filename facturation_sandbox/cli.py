"""``facturation-sandbox``: a local Facturation.pro for trying the bridge without an account.

It reads none of the bridge's settings: everything comes from its own options, so a deployment's
environment can't stop it. ``python -m facturation_sandbox`` is the same command.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from facturation_sandbox.app import create_app
from facturation_sandbox.faults import FaultSpecError, parse_faults
from facturation_sandbox.server import serve
from facturation_sandbox.state import SandboxConfig


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="facturation-sandbox",
        description="A local sandbox of the Facturation.pro API (see docs/sandbox.md).",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8089, help="TCP port (default 8089)")
    p.add_argument("--login", default="demo", help="API login to accept (default demo)")
    p.add_argument("--key", default="demo-key", help="API key to accept (default demo-key)")
    p.add_argument("--firm-id", type=int, default=1, help="the one firm's id (default 1)")
    p.add_argument("--rate-limit", type=int, default=600, help="requests per window (600)")
    p.add_argument("--rate-window", type=float, default=300.0, help="window, seconds (300)")
    p.add_argument("--daily-limit", type=int, default=10_000, help="requests per day (10000)")
    p.add_argument(
        "--daily-window", type=float, default=86_400.0, help="length of a 'day', seconds (86400)"
    )
    p.add_argument(
        "--faults",
        default="",
        help='fault probabilities on writes, e.g. "error_before=0.1,error_after=0.05,'
        'drop_after=0.05,slow_after=0.05"',
    )
    p.add_argument("--seed", type=int, default=None, help="seed for the fault draws")
    p.add_argument(
        "--slow-seconds", type=float, default=35.0, help="delay of slow_after answers (35)"
    )
    p.add_argument(
        "--vat-rounding",
        choices=("per-rate", "per-line"),
        default="per-rate",
        help="how totals round VAT: per rate (the rule the bridge predicts, default) or per line "
        "(for tests: a server that totals differently)",
    )
    p.add_argument(
        "--log-level",
        default=os.environ.get("SANDBOX_LOG_LEVEL", "INFO"),
        help="DEBUG, INFO, WARNING or ERROR (default $SANDBOX_LOG_LEVEL or INFO)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from bridge.logging import configure_logging, get_logger

    args = build_parser().parse_args(argv)
    try:
        faults = parse_faults(args.faults)
    except FaultSpecError as exc:
        raise SystemExit(f"--faults: {exc}") from None
    configure_logging(args.log_level.upper())
    config = SandboxConfig(
        login=args.login,
        key=args.key,
        firm_id=args.firm_id,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        daily_limit=args.daily_limit,
        day_seconds=args.daily_window,
        faults=faults,
        seed=args.seed,
        slow_seconds=args.slow_seconds,
        vat_rounding=args.vat_rounding,
    )
    get_logger("facturation_sandbox").info(
        "sandbox.starting",
        host=args.host,
        port=args.port,
        firm_id=args.firm_id,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        daily_limit=args.daily_limit,
        faults=args.faults or None,
        seed=args.seed,
        vat_rounding=args.vat_rounding,
    )
    serve(create_app(config), host=args.host, port=args.port)
    return 0
