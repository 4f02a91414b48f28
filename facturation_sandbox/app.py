"""The sandbox's routes: the documented endpoints the bridge uses, over the in-memory store.

Writes need ``Content-Type: application/json`` (else 501) and a JSON object (else 400); invalid data
is answered 422 with an ``errors`` object; a missing record 404 "The record could not be found";
a create 201 with ``Location``. Lists hold 50 records per page (``page=N``) and carry
``X-Pagination``. ``GET /__sandbox/ledger`` and ``/__sandbox/stats`` are read-only and open.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from facturation_sandbox.middleware import (
    FaultInjector,
    Gate,
    json_response,
    pagination_header,
)
from facturation_sandbox.search import int_param
from facturation_sandbox.state import Sandbox, SandboxConfig
from facturation_sandbox.store import RecordNotFoundError
from facturation_sandbox.validate import InvalidError

PER_PAGE = 50
NOT_FOUND = "The record could not be found"


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def json_body(request: Request) -> dict[str, Any]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(501, "send JSON with 'Content-Type: application/json; charset=utf-8'")
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ApiError(400, f"JSON invalide : {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "JSON invalide : un objet est attendu")
    return data


def _sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


def _id(request: Request, name: str) -> int:
    value: int = request.path_params[name]
    return value


def _page(request: Request, records: list[dict[str, Any]]) -> Response:
    page = max(1, int_param(request.query_params.get("page")) or 1)
    start = (page - 1) * PER_PAGE
    return json_response(
        records[start : start + PER_PAGE],
        headers={"X-Pagination": pagination_header(page, PER_PAGE, len(records))},
    )


def _created(request: Request, data: dict[str, Any], path: str) -> Response:
    firm = _sandbox(request).config.firm_id
    return json_response(data, 201, headers={"Location": f"/firms/{firm}{path}"})


async def account(request: Request) -> Response:
    config = _sandbox(request).config
    return json_response(
        {
            "id": 1,
            "email": f"{config.login}@sandbox.invalid",
            "firms": [{"id": config.firm_id, "name": f"Sandbox firm {config.firm_id}"}],
        }
    )


async def customers(request: Request) -> Response:
    store = _sandbox(request).store
    if request.method == "GET":
        return _page(request, store.find_customers(request.query_params))
    customer = store.create_customer(await json_body(request))
    return _created(request, customer, f"/customers/{customer['id']}.json")


async def customer(request: Request) -> Response:
    store = _sandbox(request).store
    if request.method == "GET":
        return json_response(store.get_customer(_id(request, "customer_id")))
    return json_response(
        store.update_customer(_id(request, "customer_id"), await json_body(request))
    )


async def invoices(request: Request) -> Response:
    store = _sandbox(request).store
    if request.method == "GET":
        return _page(request, store.find_invoices(request.query_params))
    draft = request.query_params.get("type_doc") == "draft"
    invoice = store.create_invoice(await json_body(request), draft=draft)
    return _created(request, invoice, f"/invoices/{invoice['id']}.json")


async def invoice(request: Request) -> Response:
    store = _sandbox(request).store
    invoice_id = _id(request, "invoice_id")
    if request.method == "GET":
        return json_response(store.get_invoice(invoice_id))
    if request.method == "DELETE":
        store.delete_invoice(invoice_id)
        return json_response({}, 200)
    body = await json_body(request)
    type_doc = request.query_params.get("type_doc")
    return json_response(store.update_invoice(invoice_id, body, type_doc=type_doc))


async def invoice_pdf(request: Request) -> Response:
    pdf = _sandbox(request).store.invoice_pdf(_id(request, "invoice_id"))
    return Response(pdf, media_type="application/pdf")


async def refund(request: Request) -> Response:
    await json_body(request)
    params = request.query_params
    note = _sandbox(request).store.refund_invoice(
        _id(request, "invoice_id"), params.get("api_id"), params.get("api_custom")
    )
    return _created(request, note, f"/invoices/{note['id']}.json")


async def settlements(request: Request) -> Response:
    store = _sandbox(request).store
    invoice_id = _id(request, "invoice_id")
    if request.method == "GET":
        return json_response(store.list_settlements(invoice_id))
    settlement = store.create_settlement(invoice_id, await json_body(request))
    return _created(
        request, settlement, f"/invoices/{invoice_id}/settlements/{settlement['id']}.json"
    )


async def settlement(request: Request) -> Response:
    store = _sandbox(request).store
    return json_response(
        store.get_settlement(_id(request, "invoice_id"), _id(request, "settlement_id"))
    )


async def emails(request: Request) -> Response:
    body = await json_body(request)
    bill_id = int_param(request.query_params.get("bill_id"))
    if bill_id is None:
        raise RecordNotFoundError
    return json_response(_sandbox(request).store.send_email(bill_id, body), 201)


async def ledger(request: Request) -> Response:
    return json_response(_sandbox(request).ledger())


async def stats(request: Request) -> Response:
    return json_response(_sandbox(request).stats())


async def _invalid(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidError)  # noqa: S101 -- registered for InvalidError only
    return json_response({"errors": exc.errors}, 422)


async def _not_found(_request: Request, _exc: Exception) -> Response:
    return json_response({"errors": NOT_FOUND}, 404)


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)  # noqa: S101 -- registered for ApiError only
    return json_response({"errors": exc.message}, exc.status)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 -- registered for HTTPException only
    message = NOT_FOUND if exc.status_code == 404 else exc.detail
    return json_response({"errors": message}, exc.status_code, headers=exc.headers)


FIRM = "/firms/{firm_id:int}"
ROUTES = [
    Route("/account.json", account),
    Route(f"{FIRM}/customers.json", customers, methods=["GET", "POST"]),
    Route(f"{FIRM}/customers/{{customer_id:int}}.json", customer, methods=["GET", "PATCH"]),
    Route(f"{FIRM}/invoices.json", invoices, methods=["GET", "POST"]),
    Route(f"{FIRM}/invoices/{{invoice_id:int}}.json", invoice, methods=["GET", "PATCH", "DELETE"]),
    Route(f"{FIRM}/invoices/{{invoice_id:int}}.pdf", invoice_pdf),
    Route(f"{FIRM}/invoices/{{invoice_id:int}}/refund.json", refund, methods=["POST"]),
    Route(
        f"{FIRM}/invoices/{{invoice_id:int}}/settlements.json",
        settlements,
        methods=["GET", "POST"],
    ),
    Route(f"{FIRM}/invoices/{{invoice_id:int}}/settlements/{{settlement_id:int}}.json", settlement),
    Route(f"{FIRM}/emails.json", emails, methods=["POST"]),
    Route("/__sandbox/ledger", ledger),
    Route("/__sandbox/stats", stats),
]


def create_app(config: SandboxConfig | None = None, *, sandbox: Sandbox | None = None) -> Starlette:
    """The sandbox as an ASGI app; pass ``sandbox`` to keep a handle on its state."""
    sandbox = sandbox or Sandbox(config)
    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(Gate, sandbox=sandbox), Middleware(FaultInjector, sandbox=sandbox)],
        exception_handlers={
            InvalidError: _invalid,
            RecordNotFoundError: _not_found,
            ApiError: _api_error,
            HTTPException: _http_error,
        },
    )
    app.state.sandbox = sandbox
    return app
