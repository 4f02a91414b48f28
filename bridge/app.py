"""The Starlette application: health, readiness, webhook ingress, the admin API, page and metrics.

Endpoints stay thin: webhook handlers verify on the raw bytes, store, answer. No call to
Facturation.pro, Stripe or Shopify ever happens inside a request.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bridge.config import Settings
from bridge.db import migrate, migrations_current
from bridge.logging import get_logger
from bridge.runtime import Runtime

log = get_logger("bridge.app")


async def healthz(_request: Request) -> Response:
    """The process is alive."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The database is reachable and its schema is at this code's migration head."""
    runtime: Runtime = request.app.state.runtime
    try:
        current = await run_in_threadpool(migrations_current, runtime.engine)
    except SQLAlchemyError as exc:
        log.warning("readyz.database_unreachable", error=type(exc).__name__)
        return JSONResponse({"status": "unavailable", "reason": "database unreachable"}, 503)
    if not current:
        return JSONResponse({"status": "unavailable", "reason": "migrations not applied"}, 503)
    return JSONResponse({"status": "ready"})


def _routes() -> list[BaseRoute]:
    from bridge.admin.api import admin_routes
    from bridge.admin.metrics import metrics
    from bridge.admin.pages import page_routes
    from bridge.inbound.ingress import webhook_routes

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *webhook_routes(),
        *admin_routes(),
        *page_routes(),
        Route("/metrics", metrics, methods=["GET"]),
    ]


def create_app(
    settings: Settings,
    *,
    auto_migrate: bool = False,
    with_worker: bool = False,
) -> Starlette:
    """Build the app. ``auto_migrate`` for the embedded SQLite; ``with_worker`` for ``serve``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = Runtime.open(settings)
        app.state.runtime = runtime
        from bridge.inbound.ingress import Ingress

        app.state.ingress = Ingress.open(runtime)  # mapped event types read once, at start
        if auto_migrate:
            await run_in_threadpool(migrate, runtime.engine)
        worker = None
        if with_worker:
            from bridge.outbox.worker import WorkerThread

            worker = WorkerThread(runtime)
            worker.start()
        log.info("app.started", database=runtime.engine.url.get_backend_name())
        try:
            yield
        finally:
            if worker is not None:
                await run_in_threadpool(worker.stop)
            runtime.close()
            log.info("app.stopped")

    return Starlette(routes=_routes(), lifespan=lifespan)
