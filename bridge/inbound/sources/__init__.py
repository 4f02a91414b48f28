"""Webhook sources (Stripe, Shopify): signature verification and parsing into one event shape.

Each source module offers the same three steps:

- ``verify(...)`` checks the signature on the raw bytes and raises :class:`WebhookRejectedError` if it fails;
- ``delivery(...)`` reads what the inbox needs to store the delivery (dedup key, type, kept headers),
  never raising for a bad body: a correctly signed body that can't be parsed is kept, as failed;
- ``parse(...)`` turns a stored body into the :class:`bridge.inbound.events.InboundEvent` the mapping reads.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field

from bridge.inbound.events import Source

MAX_KEY_LENGTH = 255  # inbox_events.event_id and event_type are VARCHAR(255)
UNKNOWN_TYPE = "unknown"


class WebhookRejectedError(Exception):
    """The delivery is refused and nothing is stored. ``reason`` is safe to log and to answer.

    ``status_code`` is 400 for a missing or invalid signature or malformed required headers,
    403 for a correctly signed delivery from a shop that is not allowed, and 503 when the bridge
    itself can't verify (no secret configured), so that the sender retries once that is fixed.
    """

    def __init__(self, reason: str, status_code: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verified delivery as the inbox will hold it. ``parse_error`` set means: store as failed."""

    source: Source
    event_id: str
    event_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    parse_error: str | None = None


def body_key(body: bytes, *parts: str) -> str:
    """A dedup key for a delivery that carries no usable id: the SHA-256 of what identifies it."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass") + b"\x00")
    digest.update(body)
    return f"sha256:{digest.hexdigest()}"


def clean_key(value: object) -> str | None:
    """``value`` if it is a usable id or type (non-empty text, <= 255 chars, no control chars)."""
    if not isinstance(value, str) or not value or len(value) > MAX_KEY_LENGTH:
        return None
    if any(unicodedata.category(ch) in {"Cc", "Cs"} for ch in value):
        return None
    return value
