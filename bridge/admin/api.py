"""The admin API (``/admin/…``) and the operator's commands (``facturation-bridge status`` …).

The HTTP API answers only with ``Authorization: Bearer <BRIDGE_ADMIN_TOKEN>`` (compared in constant
time); without a configured token it does not exist (404), so a deployment that never set one
exposes nothing. A database that does not answer gets ``503 {"error": "database unavailable"}``
(with ``Retry-After``). The commands talk to the database directly: whoever can run them on the host
already holds its credentials.

=====================================  ===============================================
``GET  /admin/status``                 counts by state, pause, quota, oldest pending, workers
``GET  /admin/events?status=failed``   stored events in a state (default failed)
``POST /admin/events/{id}/replay``     map a stored event again
``GET  /admin/commands?status=dead``   outbox commands in a state (default dead)
``POST /admin/commands/{id}/retry``    a dead command back to pending
``POST /admin/delivery/pause``         stop all delivery (``{"reason": …}``)
``POST /admin/delivery/resume``        resume delivery (after fixing credentials)
=====================================  ===============================================
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bridge.admin.auth import bearer_matches
from bridge.admin.operations import (
    list_commands,
    list_events,
    pause_delivery,
    replay_event,
    resume_delivery,
    retry_command,
    status,
)
from bridge.config import Settings
from bridge.db.models import CommandStatus, EventStatus, utcnow
from bridge.db.outage import DATABASE_DOWN, database_command
from bridge.logging import get_logger
from bridge.outbox.quota import QuotaLimiter, QuotaLimits
from bridge.runtime import Runtime

log = get_logger("bridge.admin.api")

Endpoint = Callable[[Request], Awaitable[Response]]


def _authorised(request: Request) -> Response | None:
    """``None`` if the request carries the admin token, else the answer to send."""
    runtime: Runtime = request.app.state.runtime
    token = runtime.settings.admin_token.get_secret_value()
    if not token:
        return JSONResponse({"error": "not found"}, 404)
    if not bearer_matches(request, token):
        log.warning("admin.unauthorised", path=request.url.path)
        return JSONResponse(
            {"error": "unauthorised"}, 401, headers={"WWW-Authenticate": 'Bearer realm="admin"'}
        )
    return None


def _guarded(handler: Callable[[Request, Runtime], Any]) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        refused = _authorised(request)
        if refused is not None:
            return refused
        runtime: Runtime = request.app.state.runtime
        try:
            body: Any = await run_in_threadpool(handler, request, runtime)
        except DATABASE_DOWN as exc:
            log.warning(
                "admin.database_unavailable", path=request.url.path, error=type(exc).__name__
            )
            return JSONResponse(
                {"error": "database unavailable"}, 503, headers={"Retry-After": "5"}
            )
        if isinstance(body, Response):
            return body
        return JSONResponse(body)

    return endpoint


def _state(request: Request, allowed: type[EventStatus] | type[CommandStatus], default: str) -> str:
    value = request.query_params.get("status", default)
    return value if value in {s.value for s in allowed} else ""


def _status(_request: Request | None, runtime: Runtime) -> Any:
    settings = runtime.settings
    with runtime.sessions() as session:
        return status(
            session,
            utcnow(),
            QuotaLimiter(QuotaLimits.from_settings(settings)),
            worker_dead_after=settings.worker_dead_after,
        )


def _events(request: Request, runtime: Runtime) -> Any:
    state = _state(request, EventStatus, EventStatus.FAILED.value)
    if not state:
        return JSONResponse({"error": "unknown status"}, 400)
    with runtime.sessions() as session:
        return {"events": list_events(session, state)}


def _commands(request: Request, runtime: Runtime) -> Any:
    state = _state(request, CommandStatus, CommandStatus.DEAD.value)
    if not state:
        return JSONResponse({"error": "unknown status"}, 400)
    with runtime.sessions() as session:
        return {"commands": list_commands(session, state)}


def _act(action: Callable[[Session, int], bool], what: str) -> Callable[[Request, Runtime], Any]:
    def handler(request: Request, runtime: Runtime) -> Any:
        item_id: int = request.path_params["item_id"]
        with runtime.sessions.begin() as session:
            done = action(session, item_id)
        if not done:
            return JSONResponse({"error": f"no {what} {item_id} in a state that allows it"}, 404)
        log.info(f"admin.{what}_requeued", item_id=item_id)
        return {"ok": True, "id": item_id}

    return handler


def _pause(request: Request, runtime: Runtime) -> Any:
    reason = request.query_params.get("reason") or "paused by an operator"
    with runtime.sessions.begin() as session:
        pause_delivery(session, utcnow(), reason=reason[:500], by="admin-api")
    log.warning("delivery.paused", reason=reason[:500], by="admin-api")
    return {"ok": True, "paused": True}


def _resume(request: Request, runtime: Runtime) -> Any:
    with runtime.sessions.begin() as session:
        was = resume_delivery(session, utcnow(), by="admin-api")
    log.warning("delivery.resumed", by="admin-api", was_paused=was)
    return {"ok": True, "was_paused": was}


def admin_routes() -> list[BaseRoute]:
    replay = _act(lambda s, i: replay_event(s, i, utcnow()), "event")
    retry = _act(lambda s, i: retry_command(s, i, utcnow()), "command")
    return [
        Route("/admin/status", _guarded(_status), methods=["GET"]),
        Route("/admin/events", _guarded(_events), methods=["GET"]),
        Route("/admin/events/{item_id:int}/replay", _guarded(replay), methods=["POST"]),
        Route("/admin/commands", _guarded(_commands), methods=["GET"]),
        Route("/admin/commands/{item_id:int}/retry", _guarded(retry), methods=["POST"]),
        Route("/admin/delivery/pause", _guarded(_pause), methods=["POST"]),
        Route("/admin/delivery/resume", _guarded(_resume), methods=["POST"]),
    ]


# -- commands -------------------------------------------------------------------------------------


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _say(ok: bool, done: str, refused: str) -> None:
    print(done if ok else refused, file=sys.stdout if ok else sys.stderr)


def _with_runtime(fn: Callable[[argparse.Namespace, Runtime], int]) -> Any:
    @database_command
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        runtime = Runtime.open(settings)
        try:
            return fn(args, runtime)
        finally:
            runtime.close()

    return handler


def _cmd_status(_args: argparse.Namespace, runtime: Runtime) -> int:
    _print(_status(None, runtime))
    return 0


def _act_or_list(
    args: argparse.Namespace,
    runtime: Runtime,
    *,
    act: Callable[[Session, int, datetime], bool],
    listing: Callable[[Session, str, int], Any],
    done: str,
    missing: str,
) -> int:
    """``events`` and ``commands``: act on one row by id, or list the rows in a state."""
    if args.action != "list":
        with runtime.sessions.begin() as session:
            ok = act(session, args.id, utcnow())
        print(done if ok else missing.format(args.id), file=sys.stdout if ok else sys.stderr)
        return 0 if ok else 1
    with runtime.sessions() as session:
        _print(listing(session, args.status, args.limit))
    return 0


def _cmd_events(args: argparse.Namespace, runtime: Runtime) -> int:
    return _act_or_list(
        args,
        runtime,
        act=replay_event,
        listing=list_events,
        done="replayed",
        missing="no event {} to replay",
    )


def _cmd_commands(args: argparse.Namespace, runtime: Runtime) -> int:
    return _act_or_list(
        args,
        runtime,
        act=retry_command,
        listing=list_commands,
        done="requeued",
        missing="no dead command {}",
    )


def _cmd_delivery(args: argparse.Namespace, runtime: Runtime) -> int:
    with runtime.sessions.begin() as session:
        if args.action == "pause":
            pause_delivery(session, utcnow(), reason=args.reason, by="cli")
        else:
            resume_delivery(session, utcnow(), by="cli")
    print(f"delivery {'paused' if args.action == 'pause' else 'resumed'}")
    return 0


def add_admin_commands(sub: Any) -> None:
    p = sub.add_parser("status", help="counts by state, pause, quota, workers (JSON)")
    p.set_defaults(handler=_with_runtime(_cmd_status))

    p = sub.add_parser("events", help="list stored events, or replay one")
    ev = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = ev.add_parser("list", help="events in a state (default failed)")
    q.add_argument("--status", default="failed", choices=[s.value for s in EventStatus])
    q.add_argument("--limit", type=int, default=100)
    q = ev.add_parser("replay", help="map a stored event again (after fixing a mapping)")
    q.add_argument("id", type=int)
    p.set_defaults(handler=_with_runtime(_cmd_events))

    p = sub.add_parser("commands", help="list outbox commands, or retry a dead one")
    cm = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = cm.add_parser("list", help="commands in a state (default dead)")
    q.add_argument("--status", default="dead", choices=[s.value for s in CommandStatus])
    q.add_argument("--limit", type=int, default=100)
    q = cm.add_parser("retry", help="a dead command back to pending")
    q.add_argument("id", type=int)
    p.set_defaults(handler=_with_runtime(_cmd_commands))

    p = sub.add_parser("delivery", help="pause or resume all delivery to Facturation.pro")
    dl = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = dl.add_parser("pause")
    q.add_argument("--reason", default="paused by an operator")
    dl.add_parser("resume")
    p.set_defaults(handler=_with_runtime(_cmd_delivery))
