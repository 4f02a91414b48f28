"""What can go wrong talking to Facturation.pro, as a small tree that says whether a retry helps.

```
FacturationError            status, rate (RateInfo | None), body (truncated answer text)
├── RateLimitedError        429 "Retry later": wait ``retry_after`` seconds (Retry-After), then resend;
│                           the request was refused, not processed, so no attempt is burnt
├── RetryableError          5xx, timeouts, connection errors: retry with backoff.
│                           ``may_have_reached_server`` says whether the write may have happened
├── RejectedError           400, 422 (and 501: wrong Content-Type), other 4xx: the data or the request
│                           is wrong; ``errors`` carries the API's ``errors`` body. Never retry blindly
├── AuthError               401, 403: bad login/key or no access to the firm; pause all delivery
├── NotFoundError           404 "The record could not be found"
└── LocalRequestError       the request could not even be built (a body that can't be encoded):
                            nothing was sent, and nothing will change by retrying
```

The base class itself is raised only for answers nothing else describes (an unexpected 1xx/3xx, a
URL the transport can't use): treat it as permanent.

``may_have_reached_server`` is what makes "no invoice twice" possible. It is ``False`` only when the
request provably never left this process or never got a connection: a connect error, a connect
timeout, a pool timeout. In every other failure the request may have been received and processed —
a 5xx may come from a proxy in front of a server that did the write, a read timeout or a connection
dropped after the request was sent tells nothing about what happened on the other side, and a
2xx whose body can't be read means the write happened. The worker then looks the object up by
``api_id`` before sending it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BODY_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class RateInfo:
    """The quota headers of one answer: ``X-RateLimit-Limit`` and ``X-RateLimit-Remaining``."""

    limit: int | None
    remaining: int | None


def truncate(text: str, limit: int = BODY_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


class FacturationError(Exception):
    """Base of every error the client raises."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        rate: RateInfo | None = None,
        body: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.rate = rate
        self.body = truncate(body)


class RateLimitedError(FacturationError):
    """429: the quota is used up. ``retry_after`` is the Retry-After header in seconds, if sent."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None,
        status: int | None = 429,
        rate: RateInfo | None = None,
        body: str = "",
    ) -> None:
        super().__init__(message, status=status, rate=rate, body=body)
        self.retry_after = retry_after


class RetryableError(FacturationError):
    """A failure that may pass: 5xx, timeouts, connection errors (see the module docstring)."""

    def __init__(
        self,
        message: str,
        *,
        may_have_reached_server: bool,
        status: int | None = None,
        rate: RateInfo | None = None,
        body: str = "",
    ) -> None:
        super().__init__(message, status=status, rate=rate, body=body)
        self.may_have_reached_server = may_have_reached_server


class RejectedError(FacturationError):
    """400/422/501 and other 4xx: the API refused the data. ``errors`` is its ``errors`` body."""

    def __init__(
        self,
        message: str,
        *,
        errors: Any = None,
        status: int | None = None,
        rate: RateInfo | None = None,
        body: str = "",
    ) -> None:
        super().__init__(message, status=status, rate=rate, body=body)
        self.errors = errors


class AuthError(FacturationError):
    """401/403: wrong API login or key, or no access to this firm. Nothing will pass until fixed."""


class NotFoundError(FacturationError):
    """404: the record (or the firm's URL) does not exist."""


class LocalRequestError(FacturationError):
    """The request was never sent: its body can't be encoded (e.g. text that is not valid Unicode).

    Permanent: the command goes dead with the reason at once, instead of being retried for days.
    """
