"""The reference's error answers and list headers, checked on the wire against the sandbox."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from bridge.facturation.errors import AuthError, NotFoundError, RateLimitedError, RejectedError
from facturation_sandbox import Sandbox, SandboxConfig, SandboxTransport, create_app
from tests.support.sandbox import FIRM_ID, KEY, LOGIN, in_process_client, new_sandbox


@pytest.fixture
def sandbox() -> Sandbox:
    return new_sandbox()


@pytest.fixture
def raw(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """Plain HTTP to the sandbox, for what the client never sends (wrong content type, bad JSON)."""
    with httpx.Client(
        base_url=f"http://sandbox.test/firms/{FIRM_ID}",
        auth=(LOGIN, KEY),
        transport=SandboxTransport(create_app(sandbox=sandbox)),
    ) as http:
        yield http


def test_list_carries_x_pagination(raw: httpx.Client) -> None:
    for n in range(51):
        raw.post("/customers.json", json={"company_name": f"C{n}"})
    answer = raw.get("/customers.json", params={"page": 2})
    assert json.loads(answer.headers["X-Pagination"]) == {
        "current_page": 2,
        "total_pages": 2,
        "per_page": 50,
        "total_entries": 51,
    }
    assert len(answer.json()) == 1


def test_write_without_json_content_type_is_501(raw: httpx.Client, sandbox: Sandbox) -> None:
    answer = raw.post(
        "/customers.json",
        content=b'{"company_name":"WORLD INC"}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 501
    assert sandbox.store.customers == {}


def test_malformed_json_is_400(raw: httpx.Client, sandbox: Sandbox) -> None:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    assert (
        raw.post("/customers.json", content=b'{"company_name":', headers=headers).status_code == 400
    )
    assert raw.post("/customers.json", content=b"[1, 2]", headers=headers).status_code == 400
    assert raw.post("/customers.json", content=b'{"x": NaN}', headers=headers).status_code == 400
    assert sandbox.store.customers == {}


def test_invalid_data_is_422_with_errors_object(sandbox: Sandbox) -> None:
    with in_process_client(sandbox) as client, pytest.raises(RejectedError) as exc:
        client.create_customer({"email": "not an address", "country": "FRA"})
    assert exc.value.status == 422
    assert set(exc.value.errors) == {"company_name", "email", "country"}


def test_unknown_record_is_404_the_record_could_not_be_found(raw: httpx.Client) -> None:
    answer = raw.get("/customers/999.json")
    assert answer.status_code == 404
    assert answer.json() == {"errors": "The record could not be found"}
    assert answer.headers["X-RateLimit-Remaining"]


def test_wrong_key_is_401_and_counts_against_the_quota(sandbox: Sandbox) -> None:
    with in_process_client(sandbox, key="wrong") as client, pytest.raises(AuthError) as exc:
        client.find_customers()
    assert exc.value.status == 401
    assert exc.value.body == "HTTP Basic: Access denied.\n"
    assert exc.value.rate is not None
    assert exc.value.rate.remaining == 599


def test_another_firm_is_403(sandbox: Sandbox) -> None:
    with in_process_client(sandbox, firm_id=FIRM_ID + 1) as client, pytest.raises(AuthError) as exc:
        client.find_invoices()
    assert exc.value.status == 403


def test_quota_429_retry_later_with_retry_after() -> None:
    now = [1000.0]
    sandbox = Sandbox(
        SandboxConfig(login=LOGIN, key=KEY, firm_id=FIRM_ID, rate_limit=3, rate_window=30),
        clock=lambda: now[0],
    )
    with in_process_client(sandbox) as client:
        remaining = [client.find_customers().rate.remaining for _ in range(3)]
        assert remaining == [2, 1, 0]
        now[0] += 10
        with pytest.raises(RateLimitedError) as exc:
            client.find_customers()
        assert exc.value.status == 429
        assert exc.value.body == "Retry later"
        assert exc.value.retry_after == 20
        assert exc.value.rate is not None
        assert exc.value.rate.remaining == 0
        now[0] += 20
        assert client.find_customers().rate.remaining == 2
    assert sandbox.stats()["rate_limited"] == 1
    assert sandbox.stats()["requests"] == 5


def test_not_found_error_class_for_missing_invoice(sandbox: Sandbox) -> None:
    with in_process_client(sandbox) as client, pytest.raises(NotFoundError) as exc:
        client.get_invoice(1)
    assert exc.value.status == 404
