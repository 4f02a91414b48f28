from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.config import load_settings


def test_health_and_readiness_on_a_migrated_database(db_url: str) -> None:
    app = create_app(load_settings(BRIDGE_DATABASE_URL=db_url))
    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready"}


def test_readiness_is_503_before_migrations(tmp_path: Path) -> None:
    app = create_app(load_settings(BRIDGE_DATABASE_URL=f"sqlite:///{tmp_path}/fresh.db"))
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["reason"] == "migrations not applied"


def test_auto_migrate_makes_the_embedded_database_ready(tmp_path: Path) -> None:
    app = create_app(
        load_settings(BRIDGE_DATABASE_URL=f"sqlite:///{tmp_path}/a.db"), auto_migrate=True
    )
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200


def test_readiness_is_503_when_the_database_is_unreachable() -> None:
    url = "postgresql://nobody@127.0.0.1:1/none"
    app = create_app(load_settings(BRIDGE_DATABASE_URL=url, BRIDGE_DB_BUSY_TIMEOUT=1))
    with TestClient(app) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["reason"] == "database unreachable"
