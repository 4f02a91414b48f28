"""``GET /metrics``: Prometheus text, read from the database at scrape time.

The web process and every worker share one database, so the numbers come from it, not from any
process's memory: whichever web process is scraped answers for all of them, and a restart loses
nothing. Every figure is one query on tables the bridge already keeps:

==================================================  ============================================
``facturation_bridge_webhooks_received_total``      stored webhooks by ``source`` and ``outcome``
                                                    (the event's state: an event counted as
                                                    ``received`` moves to its final outcome)
``facturation_bridge_commands``                     outbox commands by ``state``
``facturation_bridge_quota_remaining``              requests left in the rate ``window`` and the
                                                    ``day``
``facturation_bridge_oldest_pending_seconds``       age of the oldest pending or in-flight command
``facturation_bridge_api_requests_total``           answers from Facturation.pro by ``status``:
                                                    ``ok`` (one per confirmed command), ``failed``
                                                    (each failed attempt; a 429 is not an attempt)
``facturation_bridge_delivery_seconds``             histogram: webhook received -> command done
``facturation_bridge_delivery_paused``              1 while delivery is paused
==================================================  ============================================

Access: with ``BRIDGE_ADMIN_TOKEN`` set, the admin token as a bearer token; without one, open only
if ``BRIDGE_METRICS_PUBLIC=true``, else 404.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from bridge.admin.auth import bearer_matches
from bridge.runtime import Runtime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the text format Prometheus reads


async def metrics(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    token = runtime.settings.admin_token.get_secret_value()
    if not token and not runtime.settings.metrics_public:
        return PlainTextResponse("not found\n", 404)
    if token and not bearer_matches(request, token):
        return PlainTextResponse(
            "unauthorised\n", 401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'}
        )
    from bridge.admin.metrics_collector import exposition  # prometheus_client, on first scrape

    body = await run_in_threadpool(exposition, runtime)
    return Response(body, headers={"Content-Type": CONTENT_TYPE})
