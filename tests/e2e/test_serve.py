from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.procs import free_port

pytestmark = pytest.mark.e2e


def test_serve_starts_fast_and_is_ready_on_sqlite(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "FACTURATION_"))},
        "BRIDGE_DATABASE_URL": f"sqlite:///{tmp_path}/var/bridge.db",
        "FACTURATION_API_URL": "http://127.0.0.1:9",
        "FACTURATION_API_LOGIN": "demo",
        "FACTURATION_API_KEY": "demo-key",
        "FACTURATION_FIRM_ID": "1",
        "FACTURATION_USER_AGENT": "facturation-bridge tests (dev@example.com)",
    }
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        healthy_after = None
        deadline = started + 15
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    healthy_after = time.monotonic() - started
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        assert healthy_after is not None, "serve never answered /healthz"
        assert healthy_after < 3.0, f"serve took {healthy_after:.2f}s to answer"
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    # uvicorn re-raises the SIGTERM it handled once shutdown is complete.
    assert proc.returncode in (0, -15), err.decode()
    assert b"app.stopped" in err
