"""``serve``, ``web`` and ``worker`` refuse to start on a broken mapping file: one line, exit 2.

A process that started anyway would answer 200 to every webhook while its worker could map none
of them. (An empty built-in set is covered by tests/e2e/test_wheel.py, on an installed wheel.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

API = {
    "FACTURATION_API_LOGIN": "demo",
    "FACTURATION_API_KEY": "demo-key",
    "FACTURATION_FIRM_ID": "1",
    "FACTURATION_USER_AGENT": "facturation-bridge tests (dev@example.com)",
    "FACTURATION_API_URL": "http://127.0.0.1:9",
}
COMMANDS = ("serve", "web", "worker")


def _run(command: str, tmp_path: Path, mappings: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BRIDGE_", "FACTURATION_", "STRIPE_", "SHOPIFY_"))
    }
    env.update(
        API,
        BRIDGE_DATABASE_URL=f"sqlite:///{tmp_path}/bridge.db",
        BRIDGE_MAPPINGS_DIR=str(mappings),
    )
    return subprocess.run(
        [sys.executable, "-m", "bridge", command],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_broken_yaml_file_stops_the_command_naming_the_file(command: str, tmp_path: Path) -> None:
    broken = tmp_path / "mappings" / "stripe" / "invoice.paid.yaml"
    broken.parent.mkdir(parents=True)
    broken.write_text("kind: sale\nkey: [unclosed\ncurrency: o.currency\n", encoding="utf-8")

    line = _one_line(_run(command, tmp_path, broken.parent.parent))

    assert line.startswith(f"configuration error: mappings: {broken}: cannot read: line "), line
    assert not (tmp_path / "bridge.db").exists()  # nothing started, not even the database


@pytest.mark.parametrize("command", COMMANDS)
def test_an_invalid_mapping_stops_the_command_naming_file_and_key(
    command: str, tmp_path: Path
) -> None:
    invalid = tmp_path / "mappings" / "shopify" / "orders_paid.yaml"
    invalid.parent.mkdir(parents=True)
    invalid.write_text("kind: sale\nkey: 'fmt(('\n", encoding="utf-8")

    line = _one_line(_run(command, tmp_path, invalid.parent.parent))

    assert line.startswith(f"configuration error: mappings: {invalid}: "), line
    assert "is required for kind sale" in line or "invalid expression" in line, line


def test_a_mappings_dir_that_is_not_a_folder_stops_serve(tmp_path: Path) -> None:
    line = _one_line(_run("serve", tmp_path, tmp_path / "absent"))
    assert line == (
        f"configuration error: mappings: BRIDGE_MAPPINGS_DIR: {tmp_path / 'absent'} "
        "is not a directory"
    )
