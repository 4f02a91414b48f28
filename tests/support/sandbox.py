"""The Facturation.pro sandbox in tests: in-process (fast) or as a real process (real sockets)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from bridge.facturation.client import FacturationClient
from facturation_sandbox import Sandbox, SandboxConfig, SandboxTransport, create_app
from tests.support.procs import free_port, wait_http

LOGIN = "sandbox-login"
KEY = "sandbox-key-0123456789"
FIRM_ID = 4242
USER_AGENT = "facturation-bridge tests (dev@example.com)"


def in_process_client(
    sandbox: Sandbox, *, key: str = KEY, firm_id: int = FIRM_ID, timeout: float = 5.0
) -> FacturationClient:
    """A client talking to ``sandbox`` in-process (no socket), through SandboxTransport."""
    return FacturationClient(
        base_url="http://sandbox.test",
        login=LOGIN,
        api_key=key,
        firm_id=firm_id,
        user_agent=USER_AGENT,
        timeout=timeout,
        transport=SandboxTransport(create_app(sandbox=sandbox)),
    )


def new_sandbox(**options: Any) -> Sandbox:
    return Sandbox(SandboxConfig(login=LOGIN, key=KEY, firm_id=FIRM_ID, **options))


@dataclass
class SandboxProcess:
    url: str
    proc: subprocess.Popen[bytes]

    def ledger(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.url}/__sandbox/ledger", timeout=60).json()
        return data

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.url}/__sandbox/stats", timeout=60).json()
        return data

    def client(self, timeout: float = 5.0) -> FacturationClient:
        return FacturationClient(
            base_url=self.url,
            login=LOGIN,
            api_key=KEY,
            firm_id=FIRM_ID,
            user_agent=USER_AGENT,
            timeout=timeout,
        )


@contextmanager
def sandbox_process(*options: str, log: Path | None = None) -> Iterator[SandboxProcess]:
    """``python -m facturation_sandbox`` on a free port, with the test credentials; stopped on exit.

    Its log goes to ``log`` (or a temporary file), never to a pipe: a pipe nobody reads fills up
    and stalls the sandbox under a long run.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "FACTURATION_"))}
    env["SANDBOX_LOG_LEVEL"] = "WARNING"
    with contextlib.ExitStack() as stack:
        if log is None:
            out: IO[bytes] = stack.enter_context(tempfile.TemporaryFile())
        else:
            log.parent.mkdir(parents=True, exist_ok=True)
            out = stack.enter_context(log.open("ab"))
        command = [sys.executable, "-m", "facturation_sandbox", "--port", str(port)]
        credentials = ["--login", LOGIN, "--key", KEY, "--firm-id", str(FIRM_ID)]
        proc = subprocess.Popen(
            [*command, *credentials, *options], env=env, stdout=subprocess.DEVNULL, stderr=out
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{url}/__sandbox/stats", timeout=20)
            yield SandboxProcess(url, proc)
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
