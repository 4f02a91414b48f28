"""``GET /metrics``: Prometheus text read from the database, its access rules, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.config import load_settings
from tests.support.admin_kit import TOKEN, seed
from tests.support.outbox_kit import runtime_for

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _client(db_url: str, **settings: Any) -> TestClient:
    return TestClient(create_app(load_settings(BRIDGE_DATABASE_URL=db_url, **settings)))


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_are_read_from_the_database(db_url: str) -> None:
    with runtime_for(db_url) as runtime:
        seeded = seed(runtime)  # written by "another process": its own engine, then closed
    assert seeded.done
    with _client(db_url, BRIDGE_ADMIN_TOKEN=TOKEN) as client:
        response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    m = _samples(response.text)
    p = "facturation_bridge_"
    webhooks = f"{p}webhooks_received_total"
    assert m[(webhooks, (("outcome", "failed"), ("source", "stripe")))] == 1
    assert m[(webhooks, (("outcome", "mapped"), ("source", "shopify")))] == 1
    for state, n in {"done": 1, "dead": 1, "pending": 1, "in_flight": 0, "cancelled": 0}.items():
        assert m[(f"{p}commands", (("state", state),))] == n
    assert m[(f"{p}quota_remaining", (("window", "window"),))] == 600
    assert m[(f"{p}quota_remaining", (("window", "day"),))] == 10_000
    assert m[(f"{p}oldest_pending_seconds", ())] > 3600  # created at T0, in 2026
    assert m[(f"{p}api_requests_total", (("status", "ok"),))] == 1
    assert m[(f"{p}api_requests_total", (("status", "failed"),))] == 2
    assert m[(f"{p}delivery_paused", ())] == 0
    # One delivery, 3 s after its webhook: above the 2.5 s bucket, inside the 5 s one.
    bucket = f"{p}delivery_seconds_bucket"
    assert m[(bucket, (("le", "2.5"),))] == 0
    assert m[(bucket, (("le", "5.0"),))] == 1
    assert m[(bucket, (("le", "+Inf"),))] == 1
    assert m[(f"{p}delivery_seconds_count", ())] == 1
    assert m[(f"{p}delivery_seconds_sum", ())] == pytest.approx(3.0, abs=0.01)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_metrics_access(db_url: str) -> None:
    with _client(db_url) as client:  # no token, not public: nothing to see
        assert client.get("/metrics").status_code == 404
    with _client(db_url, BRIDGE_METRICS_PUBLIC="true") as client:
        assert client.get("/metrics").status_code == 200
    with _client(db_url, BRIDGE_ADMIN_TOKEN=TOKEN, BRIDGE_METRICS_PUBLIC="true") as client:
        refused = client.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.get("/metrics", headers=AUTH).status_code == 200
