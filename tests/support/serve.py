"""``facturation-bridge serve`` as a real process (web + its supervised worker child)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.procs import free_port, wait_http


@dataclass
class Serve:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def children(self) -> list[int]:
        """Pids of the process's children (the worker), read from /proc."""
        pids: list[int] = []
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            with contextlib.suppress(OSError):
                pids += [int(p) for p in (task / "children").read_text().split()]
        return pids

    def readyz(self) -> tuple[int, dict[str, Any]]:
        response = httpx.get(f"{self.url}/readyz", timeout=5)
        body: dict[str, Any] = response.json()
        return response.status_code, body

    def logged(self) -> list[dict[str, Any]]:
        """The JSON log lines of serve and its worker child."""
        lines = []
        for line in self.log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                lines.append(json.loads(line))
        return lines

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.logged() if line.get("event") == name]


def wait_for(check: Any, timeout: float, what: str) -> Any:
    """Poll ``check()`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) counts as dead.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    return False


@contextlib.contextmanager
def serve_process(env: Mapping[str, str], workdir: Path, *args: str) -> Iterator[Serve]:
    """Start ``serve`` on a free port in ``workdir``; SIGTERM it (then SIGKILL) on exit."""
    port = free_port()
    log = workdir / "serve.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bridge", "serve", "--port", str(port), *args],
            env=dict(env),
            stdout=subprocess.DEVNULL,
            stderr=out,
            cwd=workdir,
        )
    serve = Serve(proc, f"http://127.0.0.1:{port}", log)
    try:
        wait_http(f"{serve.url}/healthz", timeout=30)
        yield serve
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
