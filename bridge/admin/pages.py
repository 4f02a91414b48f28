"""The operator's admin page (``/admin/ui/…``): server-rendered HTML, behind the admin token.

Without ``BRIDGE_ADMIN_TOKEN`` it does not exist (404), like the admin API. The operator pastes
the token into the login form and gets a signed session cookie (see session.py); every POST
carries the session's CSRF token. Every action goes through bridge/admin/operations.py, the code
the JSON API and the commands use.

=============================================  ======================================================
``GET  /admin/ui/``                            dashboard: counts, quota, backlog, pause, last reconcile
``GET  /admin/ui/events?q=&state=``            stored webhooks, searched and filtered
``GET  /admin/ui/events/{id}``                 one webhook: raw body, error, commands it produced
``POST /admin/ui/events/{id}/replay``          map it again
``POST /admin/ui/events/replay``               replay every event matching ``q`` and ``state``
``GET  /admin/ui/commands?q=&state=``          outbox commands, searched and filtered
``GET  /admin/ui/commands/{id}``               one command: payload, attempts, error, API answer
``POST /admin/ui/commands/{id}/retry``         a dead command back to pending
``POST /admin/ui/commands/retry``              retry every dead command matching ``q`` and ``state``
``POST /admin/ui/delivery/pause|resume``       stop or resume all delivery
=============================================  ======================================================
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bridge.admin import session as sessions
from bridge.admin.auth import token_matches
from bridge.admin.details import command_detail, event_detail, reconcile_last
from bridge.admin.i18n import LANGUAGES, negotiate, translator
from bridge.admin.operations import (
    list_commands,
    list_events,
    pause_delivery,
    replay_event,
    replay_matching,
    resume_delivery,
    retry_command,
    retry_matching,
    status,
)
from bridge.admin.search import clean
from bridge.db.models import CommandStatus, EventStatus, utcnow
from bridge.logging import get_logger
from bridge.outbox.quota import QuotaLimiter, QuotaLimits
from bridge.runtime import Runtime

if TYPE_CHECKING:
    from jinja2 import Environment

log = get_logger("bridge.admin.pages")

ROOT = sessions.PATH
MAX_FORM_BYTES = 16 * 1024
LIST_LIMIT = 100
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@functools.cache
def _templates() -> Environment:
    """The templates, loaded on first use (Jinja2 stays out of the start-up path)."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("bridge.admin", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass
class Page:
    """One request to the page: who asks, in which language, with which form."""

    request: Request
    runtime: Runtime
    session: sessions.AdminSession
    form: dict[str, str] = field(default_factory=dict)

    @property
    def lang(self) -> str:
        chosen = self.session.data.get("lang")
        if chosen in LANGUAGES:
            return str(chosen)
        return negotiate(self.request.headers.get("accept-language", ""))

    def render(self, template: str, status_code: int = 200, **values: Any) -> Response:
        flash = self.session.pop("flash")
        html = (
            _templates()
            .get_template(template)
            .render(
                t=translator(self.lang),
                lang=self.lang,
                languages=LANGUAGES,
                csrf=self.session.csrf,
                authenticated=self.session.authenticated,
                flash=flash,
                root=ROOT,
                here=self.request.url.path
                + (f"?{self.request.url.query}" if self.request.url.query else ""),
                **values,
            )
        )
        return HTMLResponse(html, status_code)

    def flash(self, key: str, **params: Any) -> None:
        self.session.set("flash", {"key": key, "params": params})


Handler = Callable[[Page], Response]


def _token(request: Request) -> str:
    runtime: Runtime = request.app.state.runtime
    return runtime.settings.admin_token.get_secret_value()


async def _read_form(request: Request) -> dict[str, str] | None:
    """A urlencoded form (first value of each field), or ``None`` if it is anything else."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        return None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


def _endpoint(
    handler: Handler, *, login_required: bool = True
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        token = _token(request)
        if not token:
            return PlainTextResponse("not found", 404)
        page = Page(request, request.app.state.runtime, sessions.load(request, token))
        response = await _dispatch(page, handler, login_required)
        sessions.save(response, request, page.session, token)
        response.headers.update(HEADERS)
        return response

    return endpoint


async def _dispatch(page: Page, handler: Handler, login_required: bool) -> Response:
    if login_required and not page.session.authenticated:
        return RedirectResponse(f"{ROOT}/login", 303)
    if page.request.method == "POST":
        form = await _read_form(page.request)
        if form is None:
            return page.render("message.html", 400, message="bad_form")
        if not page.session.csrf_matches(form.get("csrf", "")):
            log.warning("admin_page.csrf_refused", path=page.request.url.path)
            return page.render("message.html", 403, message="csrf_refused")
        page.form = form
    return await run_in_threadpool(handler, page)


def _local(target: str, default: str) -> str:
    """``target`` if it is a path on this page (never another site), else ``default``."""
    ok = target.startswith(f"{ROOT}/") and "//" not in target and "\\" not in target
    return target if ok else default


# -- login, logout, language ----------------------------------------------------------------------


def _login(page: Page) -> Response:
    if page.request.method == "GET":
        if page.session.authenticated:
            return RedirectResponse(f"{ROOT}/", 303)
        return page.render("login.html")
    if not token_matches(page.form.get("token", "").strip(), _token(page.request)):
        log.warning("admin_page.login_refused")
        return page.render("login.html", 401, error="login_failed")
    page.session.log_in()
    log.info("admin_page.logged_in")
    return RedirectResponse(f"{ROOT}/", 303)


def _logout(page: Page) -> Response:
    page.session.log_out()
    page.flash("logged_out")
    return RedirectResponse(f"{ROOT}/login", 303)


def _language(page: Page) -> Response:
    lang = page.request.path_params["lang"]
    if lang in LANGUAGES:
        page.session.set("lang", lang)
    back = _local(page.request.query_params.get("next", ""), f"{ROOT}/")
    return RedirectResponse(back, 303)


# -- dashboard and delivery -----------------------------------------------------------------------


def _dashboard(page: Page) -> Response:
    limits = QuotaLimits.from_settings(page.runtime.settings)
    with page.runtime.sessions() as session:
        state = status(session, utcnow(), QuotaLimiter(limits))
        reconcile = reconcile_last(session)
    return page.render("dashboard.html", state=state, limits=limits, reconcile=reconcile)


def _pause(page: Page) -> Response:
    reason = page.form.get("reason", "").strip()[:500] or translator(page.lang)(
        "default_pause_reason"
    )
    with page.runtime.sessions.begin() as session:
        pause_delivery(session, utcnow(), reason=reason, by="admin-page")
    log.warning("delivery.paused", reason=reason, by="admin-page")
    page.flash("paused_done")
    return RedirectResponse(f"{ROOT}/", 303)


def _resume(page: Page) -> Response:
    with page.runtime.sessions.begin() as session:
        was = resume_delivery(session, utcnow(), by="admin-page")
    log.warning("delivery.resumed", by="admin-page", was_paused=was)
    page.flash("resumed_done")
    return RedirectResponse(f"{ROOT}/", 303)


# -- events and commands --------------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """What the events and commands pages share: the rows, their detail and their action."""

    name: str  # "events" or "commands"
    states: tuple[str, ...]
    rows: Callable[..., list[dict[str, Any]]]
    detail: Callable[..., dict[str, Any] | None]
    act_one: Callable[..., bool]
    act_all: Callable[..., int]
    done: str  # flash after an action on n rows
    refused: str  # flash when the one row was not in a state that allows it

    def filters(self, values: Any) -> tuple[str, str]:
        state = values.get("state", "")
        return (state if state in self.states else ""), clean(values.get("q", ""))

    def url(self, state: str, query: str) -> str:
        params = {k: v for k, v in (("state", state), ("q", query)) if v}
        return f"{ROOT}/{self.name}" + (f"?{urlencode(params)}" if params else "")

    def index(self, page: Page) -> Response:
        state, query = self.filters(page.request.query_params)
        with page.runtime.sessions() as session:
            rows = self.rows(session, state, LIST_LIMIT, query=query, newest_first=True)
        return page.render(f"{self.name}.html", rows=rows, state=state, q=query, states=self.states)

    def show(self, page: Page) -> Response:
        with page.runtime.sessions() as session:
            item = self.detail(session, page.request.path_params["item_id"])
        if item is None:
            return page.render("message.html", 404, message="not_found")
        return page.render(f"{self.name[:-1]}.html", item=item)

    def act(self, page: Page) -> Response:
        item_id: int = page.request.path_params["item_id"]
        with page.runtime.sessions.begin() as session:
            ok = self.act_one(session, item_id, utcnow())
        log.info(f"admin_page.{self.name}_requeued", item_id=item_id, ok=ok)
        if ok:
            page.flash(self.done, n=1)
        else:
            page.flash(self.refused, id=item_id)
        return RedirectResponse(f"{ROOT}/{self.name}/{item_id}", 303)

    def act_on_filter(self, page: Page) -> Response:
        state, query = self.filters(page.form)
        if not state and not query:
            page.flash("bulk_needs_filter")
            return RedirectResponse(self.url(state, query), 303)
        with page.runtime.sessions.begin() as session:
            n = self.act_all(session, state, query, utcnow())
        log.info(f"admin_page.{self.name}_requeued", count=n, state=state)
        page.flash(self.done, n=n)
        return RedirectResponse(self.url(state, query), 303)

    def routes(self, verb: str) -> list[BaseRoute]:
        base = f"{ROOT}/{self.name}"
        return [
            Route(base, _endpoint(self.index), methods=["GET"]),
            Route(f"{base}/{verb}", _endpoint(self.act_on_filter), methods=["POST"]),
            Route(f"{base}/{{item_id:int}}", _endpoint(self.show), methods=["GET"]),
            Route(f"{base}/{{item_id:int}}/{verb}", _endpoint(self.act), methods=["POST"]),
        ]


EVENTS = Listing(
    "events",
    tuple(s.value for s in EventStatus),
    list_events,
    event_detail,
    replay_event,
    replay_matching,
    done="replayed",
    refused="not_replayed",
)
COMMANDS = Listing(
    "commands",
    tuple(s.value for s in CommandStatus),
    list_commands,
    command_detail,
    retry_command,
    retry_matching,
    done="retried",
    refused="not_retried",
)


async def _to_dashboard(_request: Request) -> Response:
    return RedirectResponse(f"{ROOT}/", 307)


def page_routes() -> list[BaseRoute]:
    static = StaticFiles(directory=Path(__file__).with_name("static"))
    return [
        Route(ROOT, _to_dashboard, methods=["GET"]),
        Route(f"{ROOT}/", _endpoint(_dashboard), methods=["GET"]),
        Route(f"{ROOT}/login", _endpoint(_login, login_required=False), methods=["GET", "POST"]),
        Route(f"{ROOT}/logout", _endpoint(_logout), methods=["POST"]),
        Route(f"{ROOT}/lang/{{lang}}", _endpoint(_language, login_required=False), methods=["GET"]),
        Route(f"{ROOT}/delivery/pause", _endpoint(_pause), methods=["POST"]),
        Route(f"{ROOT}/delivery/resume", _endpoint(_resume), methods=["POST"]),
        *EVENTS.routes("replay"),
        *COMMANDS.routes("retry"),
        Mount(f"{ROOT}/static", app=static, name="admin-static"),
    ]
