"""The client on a transport-level fake: what it sends, and how each answer or failure is classified."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime

import httpx
import pytest
from structlog.testing import capture_logs

from bridge.config import ConfigError, load_settings
from bridge.facturation.client import FacturationClient, encode_json, retry_after_seconds
from bridge.facturation.errors import (
    AuthError,
    FacturationError,
    LocalRequestError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    RetryableError,
)

API_KEY = "super-secret-api-key-42"
UA = "facturation-bridge tests (dev@example.com)"
RATE = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "17"}


def make_client(handler: Callable[[httpx.Request], httpx.Response]) -> FacturationClient:
    return FacturationClient(
        base_url="https://api.test/",
        login="login-1",
        api_key=API_KEY,
        firm_id=7,
        user_agent=UA,
        timeout=3.0,
        transport=httpx.MockTransport(handler),
    )


def test_write_sends_auth_agents_json_and_decimals_as_strings() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            201, json={"id": 5}, headers={**RATE, "Location": "/firms/7/invoices/5.json"}
        )

    with make_client(handler) as client:
        result = client.create_invoice(
            {
                "customer_id": 1,
                "items": [{"unit_price": Decimal("9.990"), "quantity": Decimal("2")}],
            },
            draft=True,
        )
    request = seen[0]
    assert request.method == "POST"
    assert request.url.path == "/firms/7/invoices.json"
    assert request.url.params["type_doc"] == "draft"
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert request.headers["User-Agent"] == UA
    assert request.headers["X-User-Agent"] == UA
    expected = base64.b64encode(f"login-1:{API_KEY}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert json.loads(request.content) == {
        "customer_id": 1,
        "items": [{"unit_price": "9.990", "quantity": "2"}],
    }
    assert result.status == 201
    assert result.location == "/firms/7/invoices/5.json"
    assert result.rate.limit == 600
    assert result.rate.remaining == 17


def test_read_sends_no_body_and_keeps_amounts_exact() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert "Content-Type" not in request.headers
        assert request.content == b""
        return httpx.Response(200, content=b'{"total": "700.0", "odd": 0.1}', headers=RATE)

    with make_client(handler) as client:
        data = client.get_invoice(1).data
    assert data == {"total": "700.0", "odd": Decimal("0.1")}
    assert isinstance(data["odd"], Decimal)


def test_floats_are_refused_before_anything_is_sent() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(201, json={})

    with make_client(handler) as client, pytest.raises(LocalRequestError, match="float"):
        client.create_settlement(1, {"total": 10.5})
    assert calls == []
    assert encode_json({"d": Decimal("1.10")}) == b'{"d":"1.10"}'


def test_a_body_that_is_not_valid_unicode_is_a_local_error_and_nothing_is_sent() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(201, json={})

    with make_client(handler) as client, pytest.raises(LocalRequestError) as info:
        client.create_customer({"first_name": "Hugo\ud800"})
    assert calls == []
    assert "can't be encoded, nothing was sent" in str(info.value)
    assert not isinstance(info.value, RetryableError)


@pytest.mark.parametrize(
    ("status", "error", "extra_headers"),
    [
        (400, RejectedError, {}),
        (422, RejectedError, {}),
        (501, RejectedError, {}),
        (409, RejectedError, {}),
        (401, AuthError, {}),
        (403, AuthError, {}),
        (404, NotFoundError, {}),
        (429, RateLimitedError, {"Retry-After": "12"}),
        (500, RetryableError, {}),
        (502, RetryableError, {}),
        (503, RetryableError, {}),
        (302, FacturationError, {"Location": "/elsewhere"}),
    ],
)
def test_status_codes_map_to_the_error_tree(
    status: int, error: type[FacturationError], extra_headers: dict[str, str]
) -> None:
    body = {"errors": {"customer": ["doit exister"]}}

    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers={**RATE, **extra_headers})

    with make_client(handler) as client, pytest.raises(FacturationError) as exc:
        client.create_customer({"company_name": "x"})
    assert type(exc.value) is error
    assert exc.value.status == status
    assert exc.value.rate is not None
    assert exc.value.rate.remaining == 17
    assert "doit exister" in exc.value.body
    if isinstance(exc.value, RejectedError):
        assert exc.value.errors == {"customer": ["doit exister"]}
    if isinstance(exc.value, RateLimitedError):
        assert exc.value.retry_after == 12.0
    if isinstance(exc.value, RetryableError):
        assert exc.value.may_have_reached_server is True


@pytest.mark.parametrize(
    ("failure", "reached"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow connect"), False),
        (httpx.PoolTimeout("no connection"), False),
        (httpx.ReadTimeout("no answer"), True),
        (httpx.WriteTimeout("stuck sending"), True),
        (httpx.ReadError("reset"), True),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), True),
    ],
)
def test_transport_failures_say_whether_the_request_may_have_reached_the_server(
    failure: httpx.TransportError, reached: bool
) -> None:
    def handler(_request: httpx.Request) -> httpx.Response:
        raise failure

    with make_client(handler) as client, pytest.raises(RetryableError) as exc:
        client.create_customer({"company_name": "x"})
    assert exc.value.may_have_reached_server is reached
    assert exc.value.status is None
    assert exc.value.__cause__ is failure


def test_unreadable_success_is_retryable_and_may_have_reached_the_server() -> None:
    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, content=b'{"id": 1', headers=RATE)

    with make_client(handler) as client, pytest.raises(RetryableError) as exc:
        client.create_customer({"company_name": "x"})
    assert exc.value.may_have_reached_server is True
    assert exc.value.status == 201


def test_retry_after_as_seconds_or_http_date() -> None:
    assert retry_after_seconds("30") == 30.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    seconds = retry_after_seconds(later)
    assert seconds is not None
    assert 55 <= seconds <= 61


def test_the_api_key_and_authorization_never_reach_the_logs() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            raise httpx.ReadTimeout("no answer")
        return httpx.Response(422, json={"errors": {"x": ["y"]}}, headers=RATE)

    with capture_logs() as logs, make_client(handler) as client:
        with pytest.raises(RetryableError):
            client.create_customer({"company_name": "x"})
        with pytest.raises(RejectedError):
            client.find_customers()
    assert logs, "the client logs its calls"
    text = json.dumps(logs, default=str)
    assert API_KEY not in text
    assert base64.b64encode(f"login-1:{API_KEY}".encode()).decode() not in text
    assert "authorization" not in text.lower()


def test_from_settings_uses_the_configuration() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": 1, "firms": []})

    settings = load_settings(
        FACTURATION_API_URL="http://sandbox.test:8089",
        FACTURATION_API_LOGIN="me",
        FACTURATION_API_KEY="k" * 12,
        FACTURATION_FIRM_ID=3,
        FACTURATION_USER_AGENT=UA,
    )
    with FacturationClient.from_settings(settings, transport=httpx.MockTransport(handler)) as c:
        c.account()
        c.find_customers(api_id=5)
    assert str(seen[0].url) == "http://sandbox.test:8089/account.json"
    assert seen[1].url.path == "/firms/3/customers.json"
    assert seen[1].url.params["api_id"] == "5"
    with pytest.raises(ConfigError, match="FACTURATION_API_LOGIN"):
        FacturationClient.from_settings(load_settings(FACTURATION_API_LOGIN=""))
