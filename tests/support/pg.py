"""A throwaway PostgreSQL server for tests and benchmarks: initdb + pg_ctl in a temporary directory.

Runs the server as the ``postgres`` user when we are root (PostgreSQL refuses to run as root).
``BRIDGE_TEST_POSTGRES_URL`` points at an existing server instead.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailableError(RuntimeError):
    pass


def _find_bin(name: str) -> str | None:
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        return candidate
    return shutil.which(name)


def _pg_ctl() -> str:
    pg_ctl = _find_bin("pg_ctl")
    if pg_ctl is None:
        raise PostgresUnavailableError("pg_ctl not found")
    return pg_ctl


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    directory: Path
    port: int
    user: str
    _as_postgres: bool
    options: str = ""

    def halt(self) -> None:
        """Stop the server (connections dropped) but keep its data, to :meth:`restart` it."""
        self._run(_pg_ctl(), "-D", str(self.directory / "data"), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        data = self.directory / "data"
        log = str(self.directory / "log")
        self._run(_pg_ctl(), "-D", str(data), "-l", log, "-o", self.options, "-w", "start")

    @property
    def admin_url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str) -> None:
        cmd = ["runuser", "-u", "postgres", "--", *argv] if self._as_postgres else list(argv)
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        pg_ctl = _find_bin("pg_ctl")
        if pg_ctl:
            with contextlib.suppress(subprocess.SubprocessError):
                self._run(pg_ctl, "-D", str(self.directory / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """Start a fresh server on a free loopback port; raise PostgresUnavailableError if we can't."""
    initdb, pg_ctl = _find_bin("initdb"), _find_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise PostgresUnavailableError("initdb/pg_ctl not found (install the postgresql package)")
    as_postgres = os.geteuid() == 0
    directory = Path(tempfile.mkdtemp(prefix="bridge-pg-"))
    if as_postgres:
        shutil.chown(directory, "postgres", "postgres")
    user = "postgres" if as_postgres else os.environ.get("USER", "postgres")
    server = PostgresServer(directory, _free_port(), user, as_postgres)
    data, sock = directory / "data", directory
    try:
        server._run(initdb, "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-p {server.port} -c listen_addresses=127.0.0.1 -k {sock} -c fsync=on "
            "-c max_connections=200 -c shared_buffers=128MB"
        )
        server.options = options
        server.restart()
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(directory, ignore_errors=True)
        raise PostgresUnavailableError(f"could not start PostgreSQL: {exc.stderr!r}") from exc
    return server
