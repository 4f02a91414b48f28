"""Faults injected by the sandbox, seen through the client (in-process, no socket)."""

from __future__ import annotations

import time

import pytest

from bridge.facturation.errors import RejectedError, RetryableError
from facturation_sandbox import Sandbox
from tests.support.sandbox import in_process_client, new_sandbox

CUSTOMER = {"company_name": "Client", "api_id": 77, "api_custom": "stripe:cus_77"}


def faulty(kind: str, **options: float) -> Sandbox:
    return new_sandbox(faults={kind: 1.0}, seed=1, **options)


def test_error_before_stores_nothing() -> None:
    sandbox = faulty("error_before")
    with in_process_client(sandbox) as client:
        with pytest.raises(RetryableError) as exc:
            client.create_customer(CUSTOMER)
        assert exc.value.status == 503
        assert exc.value.may_have_reached_server is True
        assert client.find_by_api_id("customers", 77) is None  # reads are never faulted
    assert sandbox.ledger()["customers"] == []
    assert sandbox.stats()["faults"]["error_before"] == 1


def test_error_after_stores_then_answers_502() -> None:
    sandbox = faulty("error_after")
    with in_process_client(sandbox) as client:
        with pytest.raises(RetryableError) as exc:
            client.create_customer(CUSTOMER)
        assert exc.value.status == 502
        found = client.find_by_api_id("customers", 77)
    assert found is not None
    assert found["api_custom"] == "stripe:cus_77"
    assert sandbox.stats()["by_status"]["502"] == 1


def test_drop_after_stores_then_closes_without_answer() -> None:
    sandbox = faulty("drop_after")
    with in_process_client(sandbox) as client:
        with pytest.raises(RetryableError) as exc:
            client.create_customer(CUSTOMER)
        assert exc.value.may_have_reached_server is True
        assert "RemoteProtocolError" in str(exc.value)
        assert client.find_by_api_id("customers", 77) is not None
    assert sandbox.stats()["faults"]["drop_after"] == 1


def test_slow_after_stores_then_answers_past_the_timeout() -> None:
    sandbox = faulty("slow_after", slow_seconds=5.0)
    with in_process_client(sandbox, timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(RetryableError) as exc:
            client.create_customer(CUSTOMER)
        assert time.monotonic() - started < 3
        assert "ReadTimeout" in str(exc.value)
        assert exc.value.may_have_reached_server is True
        assert client.find_by_api_id("customers", 77) is not None


def test_after_faults_leave_refused_writes_alone() -> None:
    sandbox = faulty("error_after")
    with in_process_client(sandbox) as client, pytest.raises(RejectedError):
        client.create_customer({"country": "FR"})  # no name: 422, answered as is
    assert sandbox.stats()["faults"]["error_after"] == 0


def test_slow_after_answers_a_patient_client() -> None:
    sandbox = faulty("slow_after", slow_seconds=0.2)
    with in_process_client(sandbox, timeout=5.0) as client:
        started = time.monotonic()
        created = client.create_customer(CUSTOMER)
        assert time.monotonic() - started >= 0.2
    assert created.status == 201
    assert created.data["api_id"] == 77


def test_same_seed_same_faults_for_the_same_writes() -> None:
    def run(seed: int) -> list[str]:
        sandbox = new_sandbox(faults={"error_before": 0.3, "error_after": 0.3}, seed=seed)
        outcomes = []
        with in_process_client(sandbox) as client:
            for n in range(30):
                try:
                    client.create_customer({"company_name": f"C{n}"})
                    outcomes.append("ok")
                except RetryableError as exc:
                    outcomes.append(str(exc.status))
        return outcomes

    first = run(11)
    assert first == run(11)
    assert {"ok", "502", "503"} == set(first)
