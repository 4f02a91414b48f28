"""The admin API behind its bearer token, and the operator commands, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.cli import main
from bridge.config import load_settings
from bridge.db.models import InboxEvent, OutboxCommand
from bridge.outbox.pause import paused
from bridge.outbox.queue import Outbox
from tests.support.outbox_kit import Clock, put, runtime_for, sale

TOKEN = "admin-token-for-tests-0123456789"


def _client(db_url: str, token: str = TOKEN) -> TestClient:
    settings = load_settings(BRIDGE_DATABASE_URL=db_url, BRIDGE_ADMIN_TOKEN=token)
    return TestClient(create_app(settings))


def _seed(db_url: str) -> tuple[int, int]:
    """A failed event and a dead command; return their ids."""
    clock = Clock()
    with runtime_for(db_url) as runtime:
        with runtime.sessions.begin() as session:
            event = InboxEvent(
                source="stripe",
                event_id="evt_bad",
                event_type="invoice.paid",
                body=b"{}",
                status="failed",
                status_reason="MappingError: no customer",
            )
            session.add(event)
            session.flush()
            event_id = event.id
        put(runtime, sale(1, "cus_a")[:1], clock())
        outbox = Outbox(runtime.sessions, lease_seconds=30, clock=clock)
        claimed = outbox.claim("w")
        assert claimed is not None
        outbox.kill(claimed, error="422: invalid", result={"errors": {"name": ["missing"]}})
        return event_id, claimed.id


def test_without_a_configured_token_the_admin_api_does_not_exist(db_url: str) -> None:
    with _client(db_url, token="") as client:
        assert client.get("/admin/status").status_code == 404
        response = client.get("/admin/status", headers={"Authorization": "Bearer x"})
        assert response.status_code == 404


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer \u00e9".encode("latin-1")],
)
def test_a_missing_or_wrong_token_is_401(db_url: str, header: str | bytes | None) -> None:
    headers = {"Authorization": header} if header else {}
    with _client(db_url) as client:
        response = client.get("/admin/status", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert client.post("/admin/events/1/replay", headers=headers).status_code == 401


def test_status_lists_and_requeue(db_url: str) -> None:
    event_id, command_id = _seed(db_url)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with _client(db_url) as client:
        status = client.get("/admin/status", headers=auth).json()
        assert status["events"]["failed"] == 1
        assert status["commands"]["dead"] == 1
        assert status["delivery_paused"] is None
        assert status["quota"]["in_window"] == 0
        assert status["workers"] == {
            "alive": [],
            "dead": [],
            "commands_waiting_on_dead_worker": 0,
        }

        events = client.get("/admin/events", headers=auth).json()["events"]
        assert [e["id"] for e in events] == [event_id]
        assert events[0]["reason"] == "MappingError: no customer"
        dead = client.get("/admin/commands?status=dead", headers=auth).json()["commands"]
        assert dead[0]["result"]["errors"] == {"name": ["missing"]}
        assert client.get("/admin/commands?status=bogus", headers=auth).status_code == 400

        assert client.post(f"/admin/events/{event_id}/replay", headers=auth).status_code == 200
        assert client.post(f"/admin/events/{event_id}/replay", headers=auth).status_code == 404
        assert client.post(f"/admin/commands/{command_id}/retry", headers=auth).status_code == 200
        assert client.post("/admin/commands/99999/retry", headers=auth).status_code == 404
        huge = "/admin/commands/99999999999999999999999/retry"
        assert client.post(huge, headers=auth).status_code == 404

        assert client.post("/admin/delivery/pause", headers=auth).json()["paused"] is True
        assert client.get("/admin/status", headers=auth).json()["delivery_paused"] is not None
        assert client.post("/admin/delivery/resume", headers=auth).json()["was_paused"] is True
    with runtime_for(db_url) as runtime, runtime.sessions() as session:
        assert session.get(InboxEvent, event_id).status == "received"  # type: ignore[union-attr]
        row = session.execute(select(OutboxCommand)).scalar_one()
        assert row.status == "pending"
        assert row.first_attempt_at is None
        assert paused(session) is None


def test_operator_commands(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    event_id, command_id = _seed(db_url)
    monkeypatch.setenv("BRIDGE_DATABASE_URL", db_url)
    assert main(["status"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["commands"]["dead"] == 1
    assert shown["workers"]["commands_waiting_on_dead_worker"] == 0
    assert main(["events", "list"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == event_id
    assert main(["events", "replay", str(event_id)]) == 0
    assert main(["events", "replay", str(event_id)]) == 1
    assert main(["commands", "retry", str(command_id)]) == 0
    assert main(["delivery", "pause", "--reason", "key rotation"]) == 0
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{") :])["delivery_paused"]["reason"] == "key rotation"
    assert main(["delivery", "resume"]) == 0
