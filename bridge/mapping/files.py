"""Where mapping files live, and which event types have one.

One file per source event type: ``mappings/stripe/invoice.paid.yaml``,
``mappings/shopify/orders_paid.yaml`` (a Shopify topic's ``/`` becomes ``_``). A file of the same
name in ``BRIDGE_MAPPINGS_DIR`` overrides the built-in one and leaves the others in force.

The built-in files live in the repository's top-level ``mappings/`` folder, which the wheel installs
as the package ``bridge._builtin_mappings`` (pyproject.toml's ``package-dir``); they are found through
:mod:`importlib.resources`, so an installed bridge reads the copy it was installed with.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

BUILTIN_PACKAGE = "bridge._builtin_mappings"


def _builtin_dir() -> Path | None:
    """The installed built-in folder; ``None`` if it is missing (start-up then refuses to run)."""
    try:
        folder = files(BUILTIN_PACKAGE)
    except ModuleNotFoundError:
        return None
    # A wheel is installed unpacked and an editable install maps the package onto mappings/: both
    # give a real folder. A zipped import would not, and is not a supported way to run the bridge.
    return folder if isinstance(folder, Path) else None


BUILTIN_DIR = _builtin_dir()
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
