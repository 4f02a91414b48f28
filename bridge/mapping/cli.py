"""``facturation-bridge map`` and ``facturation-bridge mappings check``.

``map`` prints the commands one payload gives, as JSON, without network or database: the way to
try a customised mapping on a real payload before deploying it. ``mappings check`` loads every
effective mapping file (built-in, or ``BRIDGE_MAPPINGS_DIR``'s), then maps the sample events of
the golden files through them and says what each gives.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.config import ConfigError, Settings
from bridge.inbound.events import InboundEvent, Source, parse_json

EXIT_INVALID = 1
# The repository's golden samples (absent from an installed wheel: then only the files are checked).
DEFAULT_GOLDEN_DIR = Path(__file__).resolve().parents[2] / "tests" / "golden"


def add_mapping_commands(sub: Any) -> None:
    p = sub.add_parser("map", help="print the commands a webhook payload maps to (offline)")
    p.add_argument("--source", required=True, choices=[s.value for s in Source])
    p.add_argument(
        "--topic", help="event type: Shopify topic (orders/paid); Stripe: read from FILE"
    )
    p.add_argument(
        "--shop", default=None, help="Shopify shop domain (default example.myshopify.com)"
    )
    p.add_argument("file", type=Path, metavar="FILE.json")
    p.set_defaults(handler=cmd_map)

    p = sub.add_parser("mappings", help="mapping files")
    msub = p.add_subparsers(dest="mappings_command", required=True, metavar="ACTION")
    c = msub.add_parser("check", help="validate every mapping file and run the sample events")
    c.add_argument("--samples", type=Path, default=DEFAULT_GOLDEN_DIR, help="golden files folder")
    c.set_defaults(handler=cmd_check)


def _engine(settings: Settings) -> Any:
    from bridge.mapping.engine import MappingEngine

    return MappingEngine.load(settings, network=False)


def cmd_map(args: argparse.Namespace, settings: Settings) -> int:
    from bridge.mapping.engine import MappingConfigError, MappingError

    try:
        payload = parse_json(args.file.read_bytes())
    except (OSError, ValueError) as exc:
        print(f"error: {args.file}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if not isinstance(payload, dict):
        print(f"error: {args.file}: not a JSON object", file=sys.stderr)
        return EXIT_INVALID
    event_type = args.topic or payload.get("type")
    if not isinstance(event_type, str):
        print("error: --topic is required (the payload has no 'type')", file=sys.stderr)
        return EXIT_INVALID
    shop = args.shop or ("example.myshopify.com" if args.source == "shopify" else None)
    event = InboundEvent(
        Source(args.source),
        str(payload.get("id", args.file.stem)),
        event_type,
        payload,
        datetime.now(UTC),
        {"x-shopify-shop-domain": shop} if shop else {},
    )
    try:
        engine = _engine(settings)
        if not engine.handles(args.source, event_type):
            print(f"error: no mapping for {args.source} {event_type}", file=sys.stderr)
            return EXIT_INVALID
        outcome = engine.map_event(event)
    except (MappingConfigError, MappingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    body: dict[str, Any] = {"commands": [c.to_json() for c in outcome.commands]}
    if outcome.skipped is not None:
        body["skipped"] = outcome.skipped
    print(json.dumps(body, indent=2, ensure_ascii=False, default=str))
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from bridge.mapping.engine import MappingConfigError
    from bridge.mapping.samples import SampleEngines, outcome_json, read_samples

    try:
        engine = _engine(settings)
    except MappingConfigError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return EXIT_INVALID
    for (source, stem), path in sorted(engine.files.items()):
        print(f"ok   {source}/{stem}: {path}")
    if not args.samples.is_dir():
        print(f"no samples folder {args.samples}: only the files were checked")
        return 0
    differ = 0
    engines = SampleEngines(settings)  # a sample may name settings of its own
    try:
        samples = read_samples(args.samples)
    except ValueError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return EXIT_INVALID
    for sample in samples:
        try:
            sample_engine = engines.for_sample(sample)
        except (ValueError, ConfigError, MappingConfigError) as exc:  # its settings are not valid
            print(f"invalid: {sample.path.name}: {exc}", file=sys.stderr)
            return EXIT_INVALID
        got = outcome_json(sample_engine, sample.event())
        same = got == sample.expected
        differ += not same
        what = (
            f"{len(got['commands'])} command(s)"
            if "commands" in got
            else f"skipped: {got['skipped']}"
            if "skipped" in got
            else f"error: {got['error']}"
        )
        mark = "same" if same else "DIFF"
        print(f"{mark} {sample.path.name} ({sample.source} {sample.event_type}): {what}")
    print(f"{differ} sample(s) differ from the built-in expectation")
    return 0
