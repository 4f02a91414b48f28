"""The baseline for ``bench/ingest.py``: a bare Starlette endpoint that reads the body and answers 200.

It stores nothing and verifies nothing, so its throughput is the ceiling the HTTP stack (uvicorn +
Starlette on this machine, with this load generator) allows; the ingest benchmark reports the
bridge's throughput as a ratio of it.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def accept(request: Request) -> Response:
    await request.body()
    return JSONResponse({"status": "stored"})


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/webhooks/{source}", accept, methods=["POST"]),
        Route("/readyz", healthz, methods=["GET"]),
    ]
)
