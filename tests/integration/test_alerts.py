"""Alerts on real databases: each condition is found, said once across processes, and a real
notification reaches a webhook through apprise."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bridge.cli import main
from bridge.db.models import InboxEvent
from bridge.db.state import put_state
from bridge.outbox.pause import pause
from bridge.outbox.queue import Outbox
from bridge.watch.alerts import Watch
from bridge.watch.conditions import RECONCILE_KEY, WatchLimits, current_conditions
from tests.support.outbox_kit import Clock, put, runtime_for, sale

LIMITS = WatchLimits(backlog_s=3600, silence=timedelta(hours=24), sources=("stripe", "shopify"))


class Recorder:
    """A notifier that keeps what it was asked to send (our own interface, not an external API)."""

    def __init__(self, ok: bool = True) -> None:
        self.ok = ok
        self.sent: list[tuple[str, str]] = []

    def send(self, title: str, body: str, *, level: str) -> bool:
        self.sent.append((title, level))
        return self.ok


def _event(source: str, status: str, clock: Clock, n: int) -> InboxEvent:
    return InboxEvent(
        source=source,
        event_id=f"evt_{n}",
        event_type="invoice.paid",
        body=b"{}",
        status=status,
        status_reason="MappingError: no customer" if status == "failed" else None,
        received_at=clock(),
    )


def test_every_condition_is_found(db_url: str) -> None:
    clock = Clock()
    with runtime_for(db_url) as runtime:
        with runtime.sessions.begin() as session:
            assert current_conditions(session, clock(), LIMITS, clock()) == []
            session.add(_event("stripe", "failed", clock, 1))
        put(runtime, sale(1, "cus_a"), clock())
        outbox = Outbox(runtime.sessions, lease_seconds=30, clock=clock)
        claimed = outbox.claim("w")
        assert claimed is not None
        outbox.kill(claimed, error="422: invalid")
        clock.advance(2 * 3600)
        with runtime.sessions.begin() as session:
            pause(session, clock(), reason="401 from the API", by="test")
            put_state(session, RECONCILE_KEY, {"at": "t1", "counts": {"missing": 2}}, clock())
        clock.advance(23 * 3600)  # stripe silent 25 h, shopify never heard of since T0
        with runtime.sessions() as session:
            found = {
                c.key: c
                for c in current_conditions(session, clock(), LIMITS, clock() - timedelta(hours=25))
            }
    assert set(found) == {
        "dead_commands",
        "backlog",  # the invoice waits behind its dead customer: pending 25 h, over the hour
        "failed_events",
        "delivery_paused",
        "reconcile:t1",
        "silence:stripe",
        "silence:shopify",
    }
    assert found["delivery_paused"].detail.startswith("401 from the API")
    assert "missing 2" in found["reconcile:t1"].detail
    assert "no webhook received yet" in found["silence:shopify"].detail


def test_two_processes_watching_say_each_alert_once(db_url: str) -> None:
    clock = Clock()
    with runtime_for(db_url) as runtime:
        with runtime.sessions.begin() as session:
            session.add(_event("stripe", "failed", clock, 1))
        first, second = Recorder(), Recorder()
        watches = [
            Watch(runtime.sessions, r, LIMITS, every_s=60, repeat=timedelta(hours=6), clock=clock)
            for r in (first, second)
        ]
        for _ in range(3):
            for watch in watches:
                watch.tick()
            clock.advance(61)
        assert first.sent + second.sent == [("1 webhook event(s) failed to map", "failure")]
        with runtime.sessions.begin() as session:
            session.query(InboxEvent).update({"status": "mapped"})
        clock.advance(61)
        for watch in watches:
            watch.tick()
        assert (first.sent + second.sent)[-1] == ("resolved: failed_events", "success")


def test_an_alert_that_could_not_be_sent_is_tried_again(db_url: str) -> None:
    clock = Clock()
    with runtime_for(db_url) as runtime:
        with runtime.sessions.begin() as session:
            session.add(_event("stripe", "failed", clock, 1))
        down = Recorder(ok=False)
        watch = Watch(
            runtime.sessions, down, LIMITS, every_s=60, repeat=timedelta(hours=6), clock=clock
        )
        watch.tick()
        clock.advance(61)
        watch.tick()
        assert len(down.sent) == 2
        down.ok = True
        clock.advance(61)
        watch.tick()
        clock.advance(61)
        watch.tick()
        assert len(down.sent) == 3


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received.append(json.loads(body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"received": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"json://127.0.0.1:{server.server_address[1]}/hook", handler
    finally:
        server.shutdown()
        server.server_close()


def test_alerts_test_reaches_a_real_webhook(
    hook: tuple[str, type[_Hook]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, handler = hook
    monkeypatch.setenv("BRIDGE_ALERT_URLS", url)
    assert main(["alerts", "test"]) == 0
    assert capsys.readouterr().out.strip() == "sent"
    assert handler.received[0]["title"] == "facturation-bridge: test alert"
    assert "reach you" in handler.received[0]["message"]


def test_alerts_test_says_when_the_webhook_refuses(
    hook: tuple[str, type[_Hook]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, handler = hook
    handler.status = 500
    monkeypatch.setenv("BRIDGE_ALERT_URLS", url)
    assert main(["alerts", "test"]) == 1
    assert capsys.readouterr().out.startswith("not sent")


def test_alerts_test_without_a_url_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("BRIDGE_ALERT_URLS", raising=False)
    assert main(["alerts", "test"]) == 2
    assert capsys.readouterr().err.startswith("configuration error: BRIDGE_ALERT_URLS")


def test_alerts_check_sends_what_is_due(
    hook: tuple[str, type[_Hook]],
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, handler = hook
    clock = Clock()
    with runtime_for(db_url) as runtime, runtime.sessions.begin() as session:
        session.add(_event("stripe", "failed", clock, 1))
    monkeypatch.setenv("BRIDGE_ALERT_URLS", url)
    monkeypatch.setenv("BRIDGE_DATABASE_URL", db_url)
    assert main(["alerts", "check", "--json"]) == 0
    sent = json.loads(capsys.readouterr().out)
    assert [m["key"] for m in sent] == ["failed_events"]
    assert handler.received[0]["title"] == "facturation-bridge: 1 webhook event(s) failed to map"
    assert main(["alerts", "check", "--json"]) == 0  # said already: nothing new
    assert json.loads(capsys.readouterr().out) == []
