"""``scripts/serve.sh``: the README's run command starts the sandbox beside the bridge."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.procs import free_port, wait_http

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def test_serve_script_runs_the_bridge_beside_the_sandbox(tmp_path: Path) -> None:
    port, sandbox_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "FACTURATION_"))},
        "PORT": str(port),
        "SANDBOX_PORT": str(sandbox_port),
        "BRIDGE_DATABASE_URL": f"sqlite:///{tmp_path}/bridge.db",
    }
    proc = subprocess.Popen(
        [str(REPO / "scripts" / "serve.sh")],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # one process group: the script, the sandbox, the bridge
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=120)
        sandbox = f"http://127.0.0.1:{sandbox_port}"
        # The script starts the sandbox first but does not wait for it: the bridge may be up sooner.
        wait_http(f"{sandbox}/__sandbox/stats", timeout=30)
        listed = httpx.get(
            f"{sandbox}/firms/1/customers.json", auth=("demo", "demo-key"), timeout=5
        )
        assert listed.status_code == 200
        assert listed.json() == []
        ledger = httpx.get(f"{sandbox}/__sandbox/ledger", timeout=5).json()
        assert ledger["customers"] == []
        assert ledger["counters"]["requests"] >= 1
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
