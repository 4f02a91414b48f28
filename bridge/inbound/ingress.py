"""Webhook ingress: verify on the raw bytes, store the raw event, answer.

``POST /webhooks/stripe`` and ``POST /webhooks/shopify``. The answer tells the sender whether it
must retry; a 2xx is sent only once the event is committed to the inbox.

======  ==================================================================================
200     stored (``received``, or ``ignored`` when no mapping handles its type, or ``failed``
        when a correctly signed body can't be parsed), or a duplicate of a stored event
400     missing or invalid signature, Stripe timestamp outside the tolerance, malformed
        request (bad ``Content-Length``, missing Shopify topic or ids): nothing stored
403     Shopify shop not in ``SHOPIFY_SHOP_DOMAINS``: nothing stored
405     not a POST
408     the body did not arrive within ``BRIDGE_HTTP_BODY_TIMEOUT`` (a slow or stalled client)
413     body over ``BRIDGE_MAX_BODY_BYTES`` (checked on ``Content-Length`` and while reading)
503     the event could not be stored (database down or busy), or no secret is configured:
        the sender retries later
======  ==================================================================================

Anything unexpected after the body is read becomes a 503 (retry), never a 500 and never a 2xx
for an event that is not stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send
from structlog.contextvars import bound_contextvars

from bridge.config import Settings
from bridge.db.models import EventStatus
from bridge.inbound.events import Source
from bridge.inbound.inbox import Entry, Inbox, InboxUnavailableError
from bridge.inbound.sources import UNKNOWN_TYPE, Delivery, WebhookRejectedError, body_key
from bridge.inbound.sources import shopify as shopify_source
from bridge.inbound.sources import stripe as stripe_source
from bridge.inbound.writer import InboxWriter
from bridge.logging import get_logger
from bridge.mapping.files import all_mapping_files, file_stem
from bridge.runtime import Runtime

log = get_logger("bridge.inbound.ingress")

ALLOW = "POST"
# Beyond the busy timeout, before answering 503 to a waiting request. With the default 2 s busy
# timeout a sender hears back within 3.5 s, inside Shopify's 5 s delivery timeout.
STORE_MARGIN_SECONDS = 1.5


class BodyTooLargeError(Exception):
    """The body is over the configured limit."""


class BodyTooSlowError(Exception):
    """The body did not arrive within ``BRIDGE_HTTP_BODY_TIMEOUT``."""


class Ingress:
    """What the webhook endpoints share: settings, the inbox writer and the mapped event types.

    The mapped types are read once, when the app starts: a new mapping file takes effect at the
    next start (events stored as ``ignored`` meanwhile can be replayed).

    Verifying and reading a delivery is a little CPU work (an HMAC, a JSON parse of at most
    ``BRIDGE_MAX_BODY_BYTES``) done on the event loop; storing it is done by the inbox writer's
    thread, which commits the deliveries of concurrent requests together (group commit).
    """

    def __init__(
        self, settings: Settings, writer: InboxWriter, mapped: frozenset[tuple[str, str]]
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.mapped = mapped

    @classmethod
    def open(cls, runtime: Runtime) -> Ingress:
        settings = runtime.settings
        inbox = Inbox(runtime.engine, busy_timeout=settings.db_busy_timeout)
        return cls(
            settings,
            InboxWriter(inbox, timeout=settings.db_busy_timeout + STORE_MARGIN_SECONDS),
            frozenset(all_mapping_files(settings.mappings_dir)),
        )

    @classmethod
    def of(cls, request: Request) -> Ingress:
        """The app's ingress, built at start-up (or on first use if the app was built without)."""
        state = request.app.state
        ingress: Ingress | None = getattr(state, "ingress", None)
        if ingress is None:
            ingress = cls.open(state.runtime)
            state.ingress = ingress
        return ingress

    def classify(self, delivery: Delivery) -> Entry:
        """The delivery with the status it is stored with, and why if it isn't ``received``."""
        if delivery.parse_error is not None:
            return Entry(delivery, EventStatus.FAILED, delivery.parse_error)
        if (delivery.source.value, file_stem(delivery.event_type)) not in self.mapped:
            reason = f"no mapping for {delivery.source} {delivery.event_type}"
            return Entry(delivery, EventStatus.IGNORED, reason)
        return Entry(delivery, EventStatus.RECEIVED)

    def stripe(self, body: bytes, headers: Headers) -> Entry:
        """Verify and read a Stripe delivery; :class:`WebhookRejectedError` if it must not be stored."""
        stripe_source.verify(
            body,
            headers.get(stripe_source.SIGNATURE_HEADER),
            self.settings.stripe_webhook_secrets,
            tolerance=self.settings.stripe_tolerance,
        )
        return self._read(lambda: stripe_source.delivery(body), body, Source.STRIPE, "")

    def shopify(self, body: bytes, headers: Headers) -> Entry:
        """Verify and read a Shopify delivery; :class:`WebhookRejectedError` if it must not be stored."""
        shopify_source.verify(
            body,
            shopify_source.header(headers, shopify_source.HMAC_HEADER),
            self.settings.shopify_webhook_secrets,
        )
        kept = shopify_source.kept_headers(headers)
        shopify_source.check_shop(kept, self.settings.shopify_shop_domains)
        topic = kept.get(shopify_source.TOPIC, "")
        return self._read(lambda: shopify_source.delivery(body, kept), body, Source.SHOPIFY, topic)

    def _read(self, read: Callable[[], Delivery], body: bytes, source: Source, hint: str) -> Entry:
        try:
            delivery = read()
        except WebhookRejectedError:
            raise
        except Exception as exc:  # a bug in reading a signed body must not lose it
            log.exception("ingress.read_failed", source=source.value)
            delivery = Delivery(
                source,
                body_key(body, hint),
                UNKNOWN_TYPE,
                body,
                parse_error=f"could not read the delivery: {type(exc).__name__}: {exc}",
            )
        return self.classify(delivery)


async def read_body(request: Request, limit: int, deadline_s: float) -> bytes:
    """The raw body, refusing more than ``limit`` bytes without buffering them.

    Raises :class:`BodyTooLargeError`, :class:`BodyTooSlowError` when the body is not all there
    within ``deadline_s`` seconds, or :class:`WebhookRejectedError` for a malformed ``Content-Length``.
    """
    try:
        async with asyncio.timeout(deadline_s):
            return await _read_body(request, limit)
    except TimeoutError:
        raise BodyTooSlowError from None


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        declared = declared.strip()
        if not declared.isascii() or not declared.isdigit() or len(declared) > 18:
            raise WebhookRejectedError("malformed Content-Length header")
        if int(declared) > limit:
            raise BodyTooLargeError
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status_code: int, reason: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": reason}, status_code, headers=headers)


class WebhookEndpoint:
    """The ASGI endpoint of one source: every method reaches it, so that a 405 is JSON too."""

    def __init__(self, source: Source) -> None:
        self.source = source

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        if request.method != "POST":
            return _error(405, f"use POST to deliver {self.source} webhooks", {"Allow": ALLOW})
        with bound_contextvars(source=self.source.value):
            return await self._receive(request)

    async def _receive(self, request: Request) -> Response:
        client = request.client.host if request.client else None
        try:
            ingress = Ingress.of(request)
            settings = ingress.settings
            body = await read_body(request, settings.max_body_bytes, settings.http_body_timeout)
        except BodyTooSlowError:
            timeout = request.app.state.runtime.settings.http_body_timeout
            log.warning("ingress.body_timeout", source=self.source.value, client=client)
            return _error(408, f"body not received within {timeout:g} s", {"Connection": "close"})
        except BodyTooLargeError:
            limit = request.app.state.runtime.settings.max_body_bytes
            log.warning("ingress.too_large", source=self.source.value, client=client, limit=limit)
            return _error(413, f"body larger than {limit} bytes")
        except WebhookRejectedError as exc:
            log.warning(
                "ingress.rejected", source=self.source.value, client=client, reason=exc.reason
            )
            return _error(exc.status_code, exc.reason)
        except ClientDisconnect:
            log.info("ingress.client_disconnected", source=self.source.value, client=client)
            return _error(400, "client disconnected before the body was read")

        read = ingress.stripe if self.source is Source.STRIPE else ingress.shopify
        try:
            entry = read(body, request.headers)
            with bound_contextvars(event_id=entry.delivery.event_id):
                stored = await ingress.writer.store(entry)
        except WebhookRejectedError as exc:
            log.warning(
                "ingress.rejected",
                source=self.source.value,
                client=client,
                reason=exc.reason,
                status_code=exc.status_code,
            )
            return _error(exc.status_code, exc.reason)
        except InboxUnavailableError as exc:
            log.error(
                "ingress.store_unavailable",
                source=self.source.value,
                event_id=entry.delivery.event_id,
                error=str(exc),
            )
            return _error(503, "the event could not be stored; retry later", {"Retry-After": "5"})
        except Exception:  # never a 500, never a 2xx for an event not stored
            log.exception("ingress.unexpected_error", source=self.source.value)
            return _error(503, "the event could not be stored; retry later", {"Retry-After": "5"})
        log.info(
            "ingress.duplicate" if stored.duplicate else "ingress.stored",
            source=self.source.value,
            event_id=entry.delivery.event_id,
            event_type=entry.delivery.event_type,
            inbox_event_id=stored.inbox_event_id,
            status=stored.status.value,
            reason=entry.reason,
        )
        return JSONResponse(
            {
                "status": "duplicate" if stored.duplicate else "stored",
                "inbox_event_id": stored.inbox_event_id,
                "event_status": stored.status.value,
            }
        )


def webhook_routes() -> list[BaseRoute]:
    """``/webhooks/stripe`` and ``/webhooks/shopify``, mounted by :func:`bridge.app.create_app`."""
    return [
        Route("/webhooks/stripe", WebhookEndpoint(Source.STRIPE), name="webhook_stripe"),
        Route("/webhooks/shopify", WebhookEndpoint(Source.SHOPIFY), name="webhook_shopify"),
    ]
