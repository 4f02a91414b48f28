"""Whether an EU VAT number is registered: the European Commission's VIES, optional.

:mod:`bridge.tax.numbers` checks a number's shape locally; only the member state that issued it
can say that it is *registered*, which is what VIES (VAT Information Exchange System) answers.
The check is off unless ``BRIDGE_VIES_URL`` is set (:func:`registry_from_settings`); the public
service is ``https://ec.europa.eu/taxation_customs/vies/rest-api`` (documented, never a default:
tests have no network).

Protocol (VIES REST API): ``POST {base}/check-vat-number`` with the JSON body
``{"countryCode": "DE", "vatNumber": "123456789"}`` (the prefix as printed, ``EL`` for Greece,
``XI`` for Northern Ireland). A 200 answer carries ``valid`` (``isValid`` in the
``GET /ms/{countryCode}/vat/{vatNumber}`` variant) and may carry ``userError``; an error answer
(4xx or 5xx) carries ``errorWrappers: [{"error": "MS_UNAVAILABLE", "message": …}]``.

Errors::

    VatRegistryUnavailableError   VIES can't answer now (member state down, busy, timeout, 5xx,
                                  connection refused, unexpected answer): retry the event later

A definite answer is ``True`` (registered) or ``False`` (``valid: false``, or ``INVALID_INPUT``:
a number VIES will not even look up is not a confirmed one). Definite answers are kept in a small
in-process cache (bounded, 24 h) so that a returning customer costs no call; unavailable answers
are never cached. Nothing is logged but the member state and the reason: no number, no name.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from bridge.logging import get_logger
from bridge.tax.numbers import VatNumber

if TYPE_CHECKING:
    from bridge.config import Settings

VIES_PUBLIC_URL = "https://ec.europa.eu/taxation_customs/vies/rest-api"
CHECK_PATH = "/check-vat-number"
CACHE_SIZE = 10_000
CACHE_TTL_SECONDS = 24 * 3600.0
# VIES says it could not ask the member state: a retry later may get an answer.
UNAVAILABLE = frozenset(
    {
        "MS_UNAVAILABLE",
        "TIMEOUT",
        "SERVICE_UNAVAILABLE",
        "MS_MAX_CONCURRENT_REQ",
        "MS_MAX_CONCURRENT_REQ_TIME",
        "GLOBAL_MAX_CONCURRENT_REQ",
        "GLOBAL_MAX_CONCURRENT_REQ_TIME",
    }
)
NOT_REGISTERED = frozenset({"INVALID", "INVALID_INPUT"})
_NO_ERROR = frozenset({"", "VALID"})

log = get_logger("bridge.tax.vies")


class VatRegistryUnavailableError(Exception):
    """The registry could not say whether the number is registered: retry the mapping later."""

    retryable = True  # the mapping stage tries the event again later instead of failing it


class VatRegistry(Protocol):
    def is_registered(self, number: VatNumber) -> bool:
        """Whether ``number`` is registered; :class:`VatRegistryUnavailableError` if unknown now."""
        ...


class AnswerCache:
    """Definite answers by key, at most ``size`` of them, each for ``ttl`` seconds (thread-safe)."""

    def __init__(self, size: int, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._size, self._ttl, self._clock = size, ttl, clock
        self._items: OrderedDict[str, tuple[float, bool]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bool | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            expires, answer = found
            if self._clock() >= expires:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return answer

    def put(self, key: str, answer: bool) -> None:
        with self._lock:
            self._items[key] = (self._clock() + self._ttl, answer)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class ViesRegistry:
    """:class:`VatRegistry` through the VIES REST API at ``base_url``, over one httpx client."""

    def __init__(
        self,
        base_url: str,
        timeout: float,
        *,
        cache: AnswerCache | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout),
            headers={"Accept": "application/json"},
            transport=transport,
        )
        self.cache = cache if cache is not None else AnswerCache(CACHE_SIZE, CACHE_TTL_SECONDS)

    def close(self) -> None:
        self._http.close()

    def is_registered(self, number: VatNumber) -> bool:
        cached = self.cache.get(number.text)
        if cached is not None:
            return cached
        answer = self._ask(number)
        self.cache.put(number.text, answer)
        return answer

    def _ask(self, number: VatNumber) -> bool:
        body = {"countryCode": number.country, "vatNumber": number.digits}
        try:
            response = self._http.post(CHECK_PATH, json=body)
        except httpx.TimeoutException:
            raise _unavailable(number, "timeout", "VIES did not answer in time") from None
        except httpx.HTTPError as exc:
            raise _unavailable(number, type(exc).__name__, "VIES could not be reached") from None
        return _answer(number, response)


def _answer(number: VatNumber, response: httpx.Response) -> bool:
    """The definite answer in ``response``, or :class:`VatRegistryUnavailableError`."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    code = _error_code(body)
    if code in UNAVAILABLE:
        raise _unavailable(number, code, f"VIES answered {code}")
    if code in NOT_REGISTERED:
        return False
    if response.status_code != 200:
        reason = code or f"HTTP {response.status_code}"
        raise _unavailable(number, reason, f"VIES answered {reason}")
    if code not in _NO_ERROR:  # VAT_BLOCKED, IP_BLOCKED, INVALID_REQUESTER_INFO, …
        raise _unavailable(number, code, f"VIES answered {code}")
    valid = body.get("valid", body.get("isValid"))
    if not isinstance(valid, bool):
        raise _unavailable(number, "no answer", "VIES answered without saying valid or not")
    return valid


def _error_code(body: dict[str, Any]) -> str:
    code = body.get("userError")
    wrappers = body.get("errorWrappers")
    if not code and isinstance(wrappers, list) and wrappers and isinstance(wrappers[0], dict):
        code = wrappers[0].get("error")
    return str(code).strip().upper() if code else ""


def _unavailable(number: VatNumber, reason: str, message: str) -> VatRegistryUnavailableError:
    log.warning("vies.unavailable", country=number.country, reason=reason)
    return VatRegistryUnavailableError(
        f"{message}: can't confirm the {number.country} VAT number now; the event is retried later"
    )


def registry_from_settings(settings: Settings) -> ViesRegistry | None:
    """A :class:`ViesRegistry` at ``BRIDGE_VIES_URL``; None when it is not set (the default)."""
    if not settings.vies_url:
        return None
    return ViesRegistry(settings.vies_url, settings.vies_timeout)
