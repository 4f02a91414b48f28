"""ViesRegistry over real HTTP against a local VIES (tests/support/fake_vies.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from bridge.config import load_settings
from bridge.tax.numbers import parse_vat_number
from bridge.tax.vies import (
    AnswerCache,
    VatRegistryUnavailableError,
    ViesRegistry,
    registry_from_settings,
)
from tests.support.fake_vies import FakeVies, serve_fake_vies
from tests.support.procs import free_port

REGISTERED = parse_vat_number("DE811569869")
UNKNOWN = parse_vat_number("DE123456788")
GREEK = parse_vat_number("EL094014201")


@pytest.fixture
def vies() -> Iterator[FakeVies]:
    with serve_fake_vies(FakeVies(registered={REGISTERED.text, GREEK.text})) as fake:
        yield fake


@pytest.fixture
def registry(vies: FakeVies) -> Iterator[ViesRegistry]:
    client = ViesRegistry(vies.url, timeout=10.0)
    yield client
    client.close()


def test_a_registered_number_is_confirmed(vies: FakeVies, registry: ViesRegistry) -> None:
    assert registry.is_registered(REGISTERED) is True
    assert vies.seen == [{"countryCode": "DE", "vatNumber": "811569869"}]


def test_greece_is_asked_as_el(vies: FakeVies, registry: ViesRegistry) -> None:
    assert registry.is_registered(GREEK) is True
    assert vies.seen == [{"countryCode": "EL", "vatNumber": "094014201"}]


def test_a_number_vies_says_is_not_valid_is_not_registered(
    vies: FakeVies, registry: ViesRegistry
) -> None:
    assert registry.is_registered(UNKNOWN) is False


def test_invalid_input_is_a_definite_no(vies: FakeVies, registry: ViesRegistry) -> None:
    vies.errors["DE"] = "INVALID_INPUT"
    assert registry.is_registered(REGISTERED) is False


@pytest.mark.parametrize(
    "code",
    [
        "MS_UNAVAILABLE",
        "TIMEOUT",
        "SERVICE_UNAVAILABLE",
        "MS_MAX_CONCURRENT_REQ",
        "GLOBAL_MAX_CONCURRENT_REQ",
        "VAT_BLOCKED",  # not a no: VIES did not look the number up
    ],
)
def test_an_unavailable_member_state_is_retried_later_not_a_no(
    vies: FakeVies, registry: ViesRegistry, code: str
) -> None:
    vies.errors["DE"] = code
    with pytest.raises(VatRegistryUnavailableError, match=code) as caught:
        registry.is_registered(REGISTERED)
    assert caught.value.retryable is True
    assert "\n" not in str(caught.value)
    # not cached: once the member state answers again, so does the registry
    del vies.errors["DE"]
    assert registry.is_registered(REGISTERED) is True
    assert len(vies.seen) == 2


def test_a_user_error_in_a_200_answer_is_read_too(vies: FakeVies, registry: ViesRegistry) -> None:
    # the GET /ms/{countryCode}/vat/{vatNumber} shape: isValid and userError
    vies.answer = (200, {"isValid": False, "userError": "MS_UNAVAILABLE"})
    with pytest.raises(VatRegistryUnavailableError):
        registry.is_registered(REGISTERED)
    vies.answer = (200, {"isValid": True, "userError": "VALID"})
    assert registry.is_registered(REGISTERED) is True


@pytest.mark.parametrize("status", [500, 502, 503, 429, 404])
def test_an_http_error_without_a_code_is_unavailable(vies: FakeVies, status: int) -> None:
    vies.status = status
    registry = ViesRegistry(vies.url, timeout=10.0)
    try:
        with pytest.raises(VatRegistryUnavailableError, match=f"HTTP {status}"):
            registry.is_registered(REGISTERED)
    finally:
        registry.close()


def test_an_answer_without_valid_is_unavailable(vies: FakeVies, registry: ViesRegistry) -> None:
    vies.answer = (200, {"countryCode": "DE", "vatNumber": "811569869"})
    with pytest.raises(VatRegistryUnavailableError, match="without saying"):
        registry.is_registered(REGISTERED)
    vies.answer = (200, {"valid": "true"})  # a string is not an answer
    with pytest.raises(VatRegistryUnavailableError):
        registry.is_registered(REGISTERED)
    assert len(registry.cache) == 0


def test_a_timeout_is_unavailable(vies: FakeVies) -> None:
    vies.delay = 5.0
    registry = ViesRegistry(vies.url, timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(VatRegistryUnavailableError, match="in time"):
            registry.is_registered(REGISTERED)
    finally:
        registry.close()
    assert time.monotonic() - started < 4.0  # the client gave up, it did not wait for the answer


def test_a_refused_connection_is_unavailable() -> None:
    registry = ViesRegistry(f"http://127.0.0.1:{free_port()}", timeout=5.0)
    try:
        with pytest.raises(VatRegistryUnavailableError, match="could not be reached"):
            registry.is_registered(REGISTERED)
    finally:
        registry.close()


def test_a_returning_customer_costs_no_call(vies: FakeVies, registry: ViesRegistry) -> None:
    assert registry.is_registered(REGISTERED) is True
    assert registry.is_registered(UNKNOWN) is False
    assert registry.is_registered(parse_vat_number("de 811 569 869")) is True
    assert registry.is_registered(UNKNOWN) is False
    assert len(vies.seen) == 2


def test_a_cached_answer_expires(vies: FakeVies) -> None:
    now = [1000.0]
    registry = ViesRegistry(vies.url, 10.0, cache=AnswerCache(100, 3600.0, clock=lambda: now[0]))
    try:
        assert registry.is_registered(REGISTERED) is True
        now[0] += 3599.0
        assert registry.is_registered(REGISTERED) is True
        assert len(vies.seen) == 1
        now[0] += 1.0
        vies.registered.clear()  # deregistered since
        assert registry.is_registered(REGISTERED) is False
        assert len(vies.seen) == 2
    finally:
        registry.close()


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    cache = AnswerCache(2, 60.0, clock=lambda: 0.0)
    cache.put("A", True)
    cache.put("B", False)
    assert cache.get("A") is True  # A used: B is now the oldest
    cache.put("C", True)
    assert len(cache) == 2
    assert (cache.get("A"), cache.get("B"), cache.get("C")) == (True, None, True)


def test_nothing_but_the_country_and_the_reason_is_logged(
    vies: FakeVies, registry: ViesRegistry
) -> None:
    vies.errors["DE"] = "MS_UNAVAILABLE"
    with capture_logs() as logs:
        with pytest.raises(VatRegistryUnavailableError):
            registry.is_registered(REGISTERED)
        del vies.errors["DE"]
        registry.is_registered(REGISTERED)
    assert logs == [
        {"event": "vies.unavailable", "country": "DE", "reason": "MS_UNAVAILABLE",
         "log_level": "warning"}
    ]  # fmt: skip
    assert REGISTERED.digits not in repr(logs)


def test_off_unless_configured(vies: FakeVies) -> None:
    assert registry_from_settings(load_settings()) is None
    settings = load_settings(BRIDGE_VIES_URL=vies.url + "/", BRIDGE_VIES_TIMEOUT="5")
    registry = registry_from_settings(settings)
    assert isinstance(registry, ViesRegistry)
    try:
        assert registry.is_registered(REGISTERED) is True
    finally:
        registry.close()
