"""The package's shape: the bridge never imports the sandbox, and no module outgrows one concept."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BRIDGE = ROOT / "bridge"
MAX_LINES = 450  # "about 400": a module past this has a second concept to split out


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_bridge_never_imports_the_sandbox() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in _imported_modules(path) if m.split(".")[0] == "facturation_sandbox"
        )
        for path in BRIDGE.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_check_sees_an_import_of_the_sandbox(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from facturation_sandbox.app import create_app\n")
    assert "facturation_sandbox.app" in _imported_modules(sample)


def test_no_module_outgrows_one_concept() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in BRIDGE.rglob("*.py")
        if "migrations" not in path.parts
    }
    assert {k: n for k, n in sizes.items() if n > MAX_LINES} == {}
