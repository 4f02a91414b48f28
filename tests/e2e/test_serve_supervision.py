"""``serve`` runs the worker as a supervised child: restarted after a crash, never orphaned."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.support.bridge_procs import bridge_env, invoice_custom, sandbox_to_file, stripe_sale
from tests.support.serve import pid_alive, serve_process, wait_for
from tests.support.webhooks import stripe_header

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"

pytestmark = pytest.mark.e2e


def _post(url: str, order: int) -> int:
    hook = stripe_sale(order, f"cus_serve_{order}", 12_345)
    response = httpx.post(
        f"{url}/webhooks/stripe",
        content=hook.body,
        headers={"Stripe-Signature": stripe_header(hook.body), "Content-Type": "application/json"},
        timeout=10,
    )
    return response.status_code


def test_worker_child_is_restarted_after_a_crash_and_dies_with_serve(tmp_path: Path) -> None:
    with sandbox_to_file(tmp_path / "sandbox.log") as sandbox:
        env = bridge_env(f"sqlite:///{tmp_path}/bridge.db", sandbox.url)
        with serve_process(env, tmp_path) as serve:
            first = wait_for(serve.children, 20, "the worker child")
            assert len(first) == 1
            wait_for(lambda: serve.readyz()[0] == 200, 20, "readyz 200")
            _status, body = serve.readyz()
            assert body["worker"] == {"state": "running", "restarts": 0}

            serve_pid = serve.proc.pid
            os.kill(first[0], signal.SIGKILL)  # a crash, as an OOM kill would do it
            second = wait_for(
                lambda: [p for p in serve.children() if p != first[0]], 20, "a new worker child"
            )
            wait_for(lambda: serve.readyz()[1].get("worker", {}).get("restarts") == 1, 20, "1")
            crashed = serve.events("worker.process_crashed")
            assert crashed
            assert crashed[0]["reason"] == "killed by SIGKILL"
            assert serve.events("worker.restarting")[0]["in_s"] == 1.0

            # The restarted worker delivers: a sale posted now becomes an invoice.
            assert _post(serve.url, 1) == 200
            wait_for(
                lambda: any(
                    i.get("api_custom") == invoice_custom(1)
                    for i in sandbox.ledger().get("invoices", [])
                ),
                30,
                "the sale's invoice in the sandbox",
            )

            # SIGKILL of serve: nothing in it runs, yet its worker child goes too.
            serve.proc.send_signal(signal.SIGKILL)
            serve.proc.wait(10)
            wait_for(lambda: not pid_alive(second[0]), 15, "the orphaned worker to exit")
            assert not pid_alive(serve_pid)
    logged = (tmp_path / "serve.log").read_text()
    assert logged.count('"worker.stopped"') >= 1  # the orphan stopped in order (SIGTERM)


def test_sigterm_stops_serve_and_its_worker_in_order(tmp_path: Path) -> None:
    with sandbox_to_file(tmp_path / "sandbox.log") as sandbox:
        env = bridge_env(f"sqlite:///{tmp_path}/bridge.db", sandbox.url)
        with serve_process(env, tmp_path) as serve:
            child = wait_for(serve.children, 20, "the worker child")[0]
            wait_for(lambda: serve.events("worker.started"), 20, "the worker to start")
            serve.proc.send_signal(signal.SIGTERM)
            assert serve.proc.wait(60) in (0, -signal.SIGTERM)
            assert not pid_alive(child)
            names = [line.get("event") for line in serve.logged()]
    for expected in ("worker.stopping", "worker.stopped", "worker.process_stopped", "app.stopped"):
        assert expected in names, names
    assert names.index("worker.process_stopped") < names.index("app.stopped")
    assert "worker.process_crashed" not in names


def test_readyz_is_503_once_the_worker_is_given_up(tmp_path: Path) -> None:
    env = bridge_env(
        f"sqlite:///{tmp_path}/bridge.db", "http://127.0.0.1:9", BRIDGE_WORKER_MAX_RESTARTS="1"
    )
    with serve_process(env, tmp_path) as serve:
        first = wait_for(serve.children, 20, "the worker child")[0]
        os.kill(first, signal.SIGKILL)
        second = wait_for(lambda: [p for p in serve.children() if p != first], 20, "a restart")[0]
        os.kill(second, signal.SIGKILL)  # a second crash in a row: beyond the one restart allowed
        _status, body = wait_for(
            lambda: (r := serve.readyz())[0] == 503 and r, 60, "readyz 503 for the dead worker"
        )
        assert body["status"] == "unavailable"
        assert "gave up after 2 crashes in a row" in body["reason"]
        assert "killed by SIGKILL" in body["reason"]
        assert serve.children() == []
        assert [e["in_s"] for e in serve.events("worker.restarting")] == [1.0]
        assert len(serve.events("worker.process_crashed")) == 1
        assert len(serve.events("worker.process_dead")) == 1
        assert httpx.get(f"{serve.url}/healthz", timeout=5).status_code == 200


def test_a_mapping_broken_after_start_stops_the_worker_loudly(tmp_path: Path) -> None:
    mappings = tmp_path / "mappings" / "stripe"
    mappings.mkdir(parents=True)
    good = mappings / "invoice.paid.yaml"
    good.write_text((MAPPINGS / "stripe" / "invoice.paid.yaml").read_text(encoding="utf-8"))
    env = bridge_env(
        f"sqlite:///{tmp_path}/bridge.db",
        "http://127.0.0.1:9",
        BRIDGE_MAPPINGS_DIR=str(tmp_path / "mappings"),
    )
    with serve_process(env, tmp_path) as serve:
        child = wait_for(serve.children, 20, "the worker child")[0]
        wait_for(lambda: serve.readyz()[0] == 200, 20, "readyz 200")
        good.write_text("commands: [this is not a mapping\n")
        os.kill(child, signal.SIGKILL)  # the restarted worker reads the broken file
        _status, body = wait_for(
            lambda: (r := serve.readyz())[0] == 503 and r, 60, "readyz 503 for the dead worker"
        )
        assert "exited with status 2 (configuration error)" in body["reason"]
        assert serve.children() == []
        assert "invoice.paid.yaml" in (tmp_path / "serve.log").read_text()
