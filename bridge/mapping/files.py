"""Where mapping files live, and which event types have one.

One file per source event type: ``mappings/stripe/invoice.paid.yaml``,
``mappings/shopify/orders_paid.yaml`` (a Shopify topic's ``/`` becomes ``_``). A file of the same
name in ``BRIDGE_MAPPINGS_DIR`` overrides the built-in one and leaves the others in force.
"""

from __future__ import annotations

from pathlib import Path

BUILTIN_DIR = Path(__file__).resolve().parent.parent.parent / "mappings"
SUFFIXES = (".yaml", ".yml", ".toml")


def file_stem(event_type: str) -> str:
    """``orders/paid`` -> ``orders_paid``; ``invoice.paid`` stays as it is."""
    return event_type.replace("/", "_")


def mapping_file(source: str, event_type: str, user_dir: Path | None = None) -> Path | None:
    """The file that maps ``event_type`` of ``source``: the user's if any, else the built-in."""
    stem = file_stem(event_type)
    for base in (user_dir, BUILTIN_DIR):
        if base is None:
            continue
        for suffix in SUFFIXES:
            candidate = base / source / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def all_mapping_files(user_dir: Path | None = None) -> dict[tuple[str, str], Path]:
    """Every (source, file stem) with its effective file, user files overriding built-in ones."""
    found: dict[tuple[str, str], Path] = {}
    for base in (BUILTIN_DIR, user_dir):
        if base is None or not base.is_dir():
            continue
        for path in sorted(base.glob("*/*")):
            if path.suffix in SUFFIXES and path.is_file():
                found[(path.parent.name, path.stem)] = path
    return found
