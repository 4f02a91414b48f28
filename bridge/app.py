"""The Starlette application: health, readiness, webhook ingress, the admin API, page and metrics.

Endpoints stay thin: webhook handlers verify on the raw bytes, store, answer. No call to
Facturation.pro, Stripe or Shopify ever happens inside a request.
"""

from __future__ import annotations

import contextlib
import os
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
from bridge.process.supervisor import WorkerSupervisor, worker_argv
from bridge.runtime import Runtime

log = get_logger("bridge.app")


async def healthz(_request: Request) -> Response:
    """The process is alive."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The database is reachable and at this code's migration head; ``serve``'s worker is alive."""
    runtime: Runtime = request.app.state.runtime
    try:
        current = await run_in_threadpool(migrations_current, runtime.engine)
    except SQLAlchemyError as exc:
        log.warning("readyz.database_unreachable", error=type(exc).__name__)
        return JSONResponse({"status": "unavailable", "reason": "database unreachable"}, 503)
    if not current:
        return JSONResponse({"status": "unavailable", "reason": "migrations not applied"}, 503)
    supervisor: WorkerSupervisor | None = getattr(request.app.state, "worker", None)
    if supervisor is None:  # ``web``: the workers are other processes
        return JSONResponse({"status": "ready"})
    health = supervisor.health()
    if health.dead:
        reason = health.reason or "worker process not running"
        return JSONResponse({"status": "unavailable", "reason": reason}, 503)
    worker = {"state": "running" if health.running else "restarting", "restarts": health.restarts}
    return JSONResponse({"status": "ready", "worker": worker})


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
    """Build the app. ``auto_migrate`` for the embedded SQLite; ``with_worker`` for ``serve``.

    With ``with_worker`` the lifespan starts the delivery worker as a supervised child process
    (:mod:`bridge.process.supervisor`) once the schema is migrated, and stops it (SIGTERM) at shutdown.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = Runtime.open(settings)
        app.state.runtime = runtime
        from bridge.inbound.ingress import Ingress

        app.state.ingress = Ingress.open(runtime)  # mapped event types read once, at start
        if auto_migrate:
            await run_in_threadpool(migrate, runtime.engine)
        app.state.worker = None
        if with_worker:
            app.state.worker = WorkerSupervisor(
                worker_argv(os.getpid()), max_restarts=settings.worker_max_restarts
            )
            app.state.worker.start()
        log.info("app.started", database=runtime.engine.url.get_backend_name())
        try:
            yield
        finally:
            if app.state.worker is not None:  # SIGTERM: its command in flight finishes first
                await run_in_threadpool(app.state.worker.stop)
            runtime.close()
            log.info("app.stopped")

    return Starlette(routes=_routes(), lifespan=lifespan)
