"""The Facturation.pro API client: one synchronous ``httpx.Client`` per process.

Each method is one HTTP request and returns an :class:`ApiResult` or raises an error of
:mod:`bridge.facturation.errors`. The client never retries: the outbox owns retries, because only
the outbox knows whether a write must first be looked up by ``api_id``.

Money never goes through a float. Request bodies are encoded by :func:`encode_json`, which writes a
``Decimal`` as a string and refuses floats; answers are decoded with ``parse_float=Decimal`` (the
API sends amounts as strings, which stay strings).

Every answer's ``X-RateLimit-Limit`` / ``X-RateLimit-Remaining`` reach the caller, on results and on
errors alike, so the quota limiter can re-synchronise. The API key and the Authorization header are
never logged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal, Self

import httpx

from bridge.facturation.errors import (
    AuthError,
    FacturationError,
    LocalRequestError,
    NotFoundError,
    RateInfo,
    RateLimitedError,
    RejectedError,
    RetryableError,
    truncate,
)
from bridge.logging import get_logger

if TYPE_CHECKING:
    from types import TracebackType

    from bridge.config import Settings

log = get_logger("bridge.facturation.client")

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
Resource = Literal["customers", "invoices"]


@dataclass(frozen=True)
class ApiResult:
    """One successful answer: status, decoded JSON, quota headers, ``Location`` of a create."""

    status: int
    data: Any
    rate: RateInfo
    location: str | None


def _plain(value: Any) -> Any:
    """``value`` with Decimals and dates as strings; a float anywhere is a bug (money!)."""
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        raise TypeError("refusing to send a float: use Decimal or a string for amounts")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def encode_json(value: Any) -> bytes:
    return json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_json(content: bytes) -> Any:
    return json.loads(content, parse_float=Decimal)


def rate_info(headers: httpx.Headers) -> RateInfo:
    return RateInfo(
        limit=_int_header(headers.get("x-ratelimit-limit")),
        remaining=_int_header(headers.get("x-ratelimit-remaining")),
    )


def _int_header(value: str | None) -> int | None:
    try:
        return int(value.strip()) if value is not None else None
    except ValueError:
        return None


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: a number of seconds, or an HTTP date (RFC 9110)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _query(params: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "1" if value else "0"
        elif isinstance(value, list | tuple | set | frozenset):
            out[key] = ",".join(str(v) for v in value)
        else:
            out[key] = str(_plain(value))
    return out


class FacturationClient:
    """Facturation.pro over HTTP Basic auth, scoped to one firm. Thread-safe (httpx is)."""

    def __init__(
        self,
        *,
        base_url: str,
        login: str,
        api_key: str,
        firm_id: int,
        user_agent: str,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.firm_id = firm_id
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            auth=httpx.BasicAuth(login, api_key),
            headers={
                "User-Agent": user_agent,
                "X-User-Agent": user_agent,
                "Accept": "application/json",
            },
            # Explicit on every phase: an unanswered call must end, and the outbox decides what next.
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, transport: httpx.BaseTransport | None = None
    ) -> FacturationClient:
        settings.require_api()
        firm_id = settings.firm_id or 0  # require_api() has checked that it is set
        return cls(
            base_url=settings.api_url,
            login=settings.api_login,
            api_key=settings.api_key.get_secret_value(),
            firm_id=firm_id,
            user_agent=settings.user_agent,
            timeout=settings.api_timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- account ---------------------------------------------------------------------------------

    def account(self) -> ApiResult:
        """``GET /account.json``: the user and the firms the key can reach."""
        return self._call("GET", "/account.json")

    # -- customers -------------------------------------------------------------------------------

    def find_customers(self, **params: Any) -> ApiResult:
        """One page (50) of customers; ``api_id`` exact, ``api_custom``/``email``/``company`` partial."""
        return self._call("GET", self._firm("/customers.json"), params=params)

    def iter_customers(self, **params: Any) -> Iterator[dict[str, Any]]:
        return self._iterate("/customers.json", params)

    def create_customer(self, body: Mapping[str, Any]) -> ApiResult:
        return self._call("POST", self._firm("/customers.json"), body=body)

    def get_customer(self, customer_id: int) -> ApiResult:
        return self._call("GET", self._firm(f"/customers/{customer_id}.json"))

    def update_customer(self, customer_id: int, body: Mapping[str, Any]) -> ApiResult:
        return self._call("PATCH", self._firm(f"/customers/{customer_id}.json"), body=body)

    # -- invoices --------------------------------------------------------------------------------

    def find_invoices(self, **params: Any) -> ApiResult:
        """One page of invoices (credit notes included); lines only with ``with_details=1``."""
        return self._call("GET", self._firm("/invoices.json"), params=params)

    def iter_invoices(
        self, *, before_page: Callable[[], None] | None = None, **params: Any
    ) -> Iterator[dict[str, Any]]:
        """Every invoice and credit note matching ``params``, 50 a page; ``before_page`` runs before
        each page's request (e.g. to take it from the shared quota)."""
        return self._iterate("/invoices.json", params, before_page)

    def create_invoice(self, body: Mapping[str, Any], *, draft: bool = False) -> ApiResult:
        """A finalised invoice (numbered, immutable amounts), or a draft with ``draft=True``."""
        params = {"type_doc": "draft"} if draft else None
        return self._call("POST", self._firm("/invoices.json"), body=body, params=params)

    def get_invoice(self, invoice_id: int) -> ApiResult:
        return self._call("GET", self._firm(f"/invoices/{invoice_id}.json"))

    def update_invoice(
        self,
        invoice_id: int,
        body: Mapping[str, Any],
        *,
        type_doc: Literal["final", "draft"] | None = None,
    ) -> ApiResult:
        """Partial update; ``type_doc="final"`` finalises a draft (a finalised one stays final)."""
        params = {"type_doc": type_doc} if type_doc else None
        return self._call(
            "PATCH", self._firm(f"/invoices/{invoice_id}.json"), body=body, params=params
        )

    def refund_invoice(self, invoice_id: int, *, api_id: int, api_custom: str) -> ApiResult:
        """A full credit note of a finalised invoice, carrying our ``api_id``/``api_custom``."""
        params = {"api_id": api_id, "api_custom": api_custom}
        return self._call(
            "POST", self._firm(f"/invoices/{invoice_id}/refund.json"), body={}, params=params
        )

    def create_settlement(self, invoice_id: int, body: Mapping[str, Any]) -> ApiResult:
        """A (partial) payment; the invoice is marked paid once its settlements cover it."""
        return self._call("POST", self._firm(f"/invoices/{invoice_id}/settlements.json"), body=body)

    def send_email(self, bill_id: int, body: Mapping[str, Any] | None = None) -> ApiResult:
        """E-mail a finalised invoice (``to`` defaults to the customer's address)."""
        return self._call(
            "POST", self._firm("/emails.json"), body=body or {}, params={"bill_id": bill_id}
        )

    def download_invoice_pdf(self, invoice_id: int) -> bytes:
        response = self._send("GET", self._firm(f"/invoices/{invoice_id}.pdf"))
        return response.content

    # -- idempotency -----------------------------------------------------------------------------

    def find_by_api_id(self, resource: Resource, api_id: int) -> dict[str, Any] | None:
        """The object created with ``api_id`` (exact search, documented), or None.

        Invoices come with their lines and settlements (``with_details=1``, ``with_settlements=1``)
        so that the record looks like a create's or a show's answer.
        """
        params: dict[str, Any] = {"api_id": api_id}
        if resource == "invoices":
            params.update(with_details=1, with_settlements=1)
        result = self._call("GET", self._firm(f"/{resource}.json"), params=params)
        for record in result.data if isinstance(result.data, list) else []:
            if isinstance(record, dict) and str(record.get("api_id")) == str(api_id):
                return record
        return None

    # -- plumbing --------------------------------------------------------------------------------

    def _firm(self, path: str) -> str:
        return f"/firms/{self.firm_id}{path}"

    def _iterate(
        self,
        path: str,
        params: Mapping[str, Any],
        before_page: Callable[[], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every record of a list, page after page, following ``X-Pagination``."""
        page = int(params.get("page") or 1)
        while True:
            if before_page is not None:
                before_page()
            response = self._send("GET", self._firm(path), params={**params, "page": page})
            records = self._decode(response)
            yield from records if isinstance(records, list) else []
            pagination = _pagination(response.headers.get("x-pagination"))
            total_pages = pagination.get("total_pages")
            if not isinstance(total_pages, int) or page >= total_pages or not records:
                return
            page += 1

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> ApiResult:
        response = self._send(method, path, body=body, params=params)
        return ApiResult(
            status=response.status_code,
            data=self._decode(response),
            rate=rate_info(response.headers),
            location=response.headers.get("location"),
        )

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        headers = {}
        content = None
        if method in ("POST", "PATCH", "PUT"):
            headers["Content-Type"] = JSON_CONTENT_TYPE
            try:
                content = encode_json(body or {})
            except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
                raise LocalRequestError(
                    f"{method} {path}: the request body can't be encoded, nothing was sent: {exc}"
                ) from exc
        started = time.monotonic()
        try:
            response = self._http.request(
                method, path, params=_query(params or {}), content=content, headers=headers
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            log.info("facturation.unreachable", method=method, path=path, error=type(exc).__name__)
            raise RetryableError(
                f"{method} {path}: {type(exc).__name__}: {exc}", may_have_reached_server=False
            ) from exc
        except httpx.UnsupportedProtocol as exc:
            raise FacturationError(f"{method} {path}: {exc}") from exc
        except httpx.TransportError as exc:
            # Sent (or partly sent), then no complete answer: the server may have done the write.
            log.info("facturation.no_answer", method=method, path=path, error=type(exc).__name__)
            raise RetryableError(
                f"{method} {path}: {type(exc).__name__}: {exc}", may_have_reached_server=True
            ) from exc
        rate = rate_info(response.headers)
        log.debug(
            "facturation.response",
            method=method,
            path=path,
            status=response.status_code,
            elapsed_ms=round((time.monotonic() - started) * 1000, 1),
            rate_remaining=rate.remaining,
        )
        if response.is_success:
            return response
        raise _error_for(method, path, response, rate)

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        if not response.content:
            return None
        try:
            return decode_json(response.content)
        except ValueError as exc:
            # A 2xx we can't read: the write happened, but we don't know its result.
            raise RetryableError(
                f"unreadable {response.status_code} answer: {exc}",
                may_have_reached_server=True,
                status=response.status_code,
                rate=rate_info(response.headers),
                body=response.text,
            ) from exc


def _pagination(header: str | None) -> dict[str, Any]:
    if not header:
        return {}
    try:
        value = json.loads(header)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _errors_of(response: httpx.Response) -> Any:
    try:
        data = decode_json(response.content)
    except ValueError:
        return response.text or None
    if isinstance(data, dict) and "errors" in data:
        return data["errors"]
    return data


def _error_for(method: str, path: str, response: httpx.Response, rate: RateInfo) -> Exception:
    status = response.status_code
    text = response.text
    message = f"{method} {path}: {status} {response.reason_phrase}"
    if status == 429:
        return RateLimitedError(
            message,
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
            rate=rate,
            body=text,
        )
    if status in (401, 403):
        return AuthError(message, status=status, rate=rate, body=text)
    if status == 404:
        return NotFoundError(message, status=status, rate=rate, body=text)
    if (status >= 500 and status != 501) or status in (408, 425):
        return RetryableError(
            message, may_have_reached_server=True, status=status, rate=rate, body=text
        )
    if 400 <= status < 600:
        errors = _errors_of(response)
        return RejectedError(
            f"{message}: {truncate(json.dumps(errors, default=str, ensure_ascii=False), 500)}",
            errors=errors,
            status=status,
            rate=rate,
            body=text,
        )
    return FacturationError(message, status=status, rate=rate, body=text)
