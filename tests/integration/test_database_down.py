"""A database that does not answer: the commands say so in one line, the admin API answers 503.

Two real ways for a database not to answer: a PostgreSQL URL on a port where nothing listens
(connection refused), and a SQLite file held under ``BEGIN EXCLUSIVE`` by another connection for
longer than the busy timeout (``database is locked``).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.cli import main
from bridge.config import load_settings
from bridge.db.outage import EXIT_DATABASE
from tests.support.procs import free_port

TOKEN = "admin-token-for-tests-0123456789"
PASSWORD = "pg-pass-never-shown"
ADMIN_COMMANDS = [
    ["migrate"],
    ["status"],
    ["events", "list"],
    ["events", "replay", "1"],
    ["commands", "list", "--status", "pending"],
    ["commands", "retry", "1"],
    ["delivery", "pause"],
    ["delivery", "resume"],
]


def _refused_url() -> str:
    return f"postgresql://bridge:{PASSWORD}@127.0.0.1:{free_port()}/bridge"


@pytest.fixture
def bridge_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("BRIDGE_LOG_FORMAT", "json")
    monkeypatch.setenv("BRIDGE_DB_BUSY_TIMEOUT", "0.5")
    return monkeypatch


@contextmanager
def _locked(url: str) -> Iterator[None]:
    """Hold the SQLite database under an exclusive lock (another connection, as another process would)."""
    holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=10)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.parametrize("argv", ADMIN_COMMANDS, ids=" ".join)
def test_a_command_against_a_refused_database_prints_one_line(
    bridge_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    url = _refused_url()
    bridge_env.setenv("BRIDGE_DATABASE_URL", url)
    assert main(argv) == EXIT_DATABASE
    out, err = capsys.readouterr()
    masked = url.replace(PASSWORD, "******")
    assert err.splitlines() == [
        f"database unavailable: {masked}: connection failed: connection to server at"
        f' "127.0.0.1", port {url.rsplit(":", 1)[1].split("/")[0]} failed: Connection refused'
    ]
    assert PASSWORD not in out + err
    assert "Traceback" not in out + err


@pytest.mark.parametrize("argv", [["status"], ["delivery", "pause"], ["migrate"]], ids=" ".join)
def test_a_command_against_a_locked_sqlite_database_prints_one_line(
    bridge_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sqlite_url: str,
    argv: list[str],
) -> None:
    bridge_env.setenv("BRIDGE_DATABASE_URL", sqlite_url)
    with _locked(sqlite_url):
        assert main(argv) == EXIT_DATABASE
    _out, err = capsys.readouterr()
    assert err.splitlines() == [f"database unavailable: {sqlite_url}: database is locked"]
    assert main(["status"]) == 0  # and it works again once the lock is gone


def test_the_real_process_exits_with_the_documented_status(tmp_path: Path) -> None:
    url = _refused_url()
    env = {"PATH": "/usr/bin:/bin", "BRIDGE_DATABASE_URL": url, "BRIDGE_DB_BUSY_TIMEOUT": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "migrate"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == EXIT_DATABASE == 3
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("database unavailable: postgresql://bridge:******@127.0.0.1:")
    assert "Connection refused" in result.stderr


ADMIN_ROUTES = [
    ("GET", "/admin/status"),
    ("GET", "/admin/events"),
    ("POST", "/admin/events/1/replay"),
    ("GET", "/admin/commands?status=pending"),
    ("POST", "/admin/commands/1/retry"),
    ("POST", "/admin/delivery/pause"),
    ("POST", "/admin/delivery/resume"),
]


def _admin_answers(url: str) -> list[tuple[int, str, object]]:
    settings = load_settings(
        BRIDGE_DATABASE_URL=url, BRIDGE_ADMIN_TOKEN=TOKEN, BRIDGE_DB_BUSY_TIMEOUT=0.5
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        answers = [client.request(method, path, headers=headers) for method, path in ADMIN_ROUTES]
    return [(r.status_code, r.headers["content-type"], r.json()) for r in answers]


def test_the_admin_api_answers_503_json_when_the_database_is_refused() -> None:
    answers = _admin_answers(_refused_url())
    assert answers == [(503, "application/json", {"error": "database unavailable"})] * len(
        ADMIN_ROUTES
    )


def test_the_admin_api_answers_503_json_while_sqlite_is_locked(sqlite_url: str) -> None:
    with _locked(sqlite_url):
        answers = _admin_answers(sqlite_url)
    assert answers == [(503, "application/json", {"error": "database unavailable"})] * len(
        ADMIN_ROUTES
    )
    assert _admin_answers(sqlite_url)[0][0] == 200
