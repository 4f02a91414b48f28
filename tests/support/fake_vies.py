"""A local VIES REST API over real HTTP, for :mod:`bridge.tax.vies`.

Speaks ``POST /check-vat-number`` the way the European Commission documents it: a JSON body
``{"countryCode", "vatNumber"}``; a 200 answer ``{"countryCode", "vatNumber", "requestDate",
"valid", "name", "address"}``; an error answer ``{"actionSucceed": false, "errorWrappers":
[{"error": CODE, "message": …}]}`` (400 for ``INVALID_INPUT``, 500 for the others).

``registered`` holds the numbers (``"DE811569869"``) that are valid; ``errors`` makes one member
state answer an error code (``{"DE": "MS_UNAVAILABLE"}``); ``status`` answers every request with
that bare status and a non-JSON body; ``answer`` sends that (status, body) as is; ``delay``
holds each answer that many seconds (released when the server stops). ``seen`` keeps every
request body, so a test can count calls.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.procs import free_port

BASE_PATH = (
    "/taxation_customs/vies/rest-api"  # the public service's, so that the client joins paths
)

MESSAGES = {
    "INVALID_INPUT": "The provided CountryCode is invalid or the VAT number is empty",
    "MS_UNAVAILABLE": "The application at the Member State is not replying or not available",
    "SERVICE_UNAVAILABLE": "An error was encountered either at the network level or the Web application level",
    "TIMEOUT": "The application did not receive a reply within the allocated time period",
    "MS_MAX_CONCURRENT_REQ": "The maximum number of concurrent requests for this Member State has been reached",
    "GLOBAL_MAX_CONCURRENT_REQ": "The maximum number of concurrent requests has been reached",
}


@dataclass
class FakeVies:
    registered: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)  # country prefix -> VIES error code
    status: int | None = None
    answer: tuple[int, Any] | None = None
    delay: float = 0.0
    seen: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    released: threading.Event = field(default_factory=threading.Event)

    def respond(self, path: str, body: Any) -> tuple[int, Any]:
        if path != f"{BASE_PATH}/check-vat-number":
            return 404, {"actionSucceed": False, "errorWrappers": [{"error": "NOT_FOUND"}]}
        if self.answer is not None:
            return self.answer
        if not isinstance(body, dict) or not body.get("countryCode") or not body.get("vatNumber"):
            return _error("INVALID_INPUT")
        country, digits = str(body["countryCode"]), str(body["vatNumber"])
        if country in self.errors:
            return _error(self.errors[country])
        valid = country + digits in self.registered
        return 200, {
            "countryCode": country,
            "vatNumber": digits,
            "requestDate": "2026-12-01T10:00:00.000Z",
            "valid": valid,
            "name": "ACME GMBH" if valid else "---",
            "address": "1 MAIN STREET" if valid else "---",
        }


def _error(code: str) -> tuple[int, Any]:
    status = 400 if code == "INVALID_INPUT" else 500
    wrapper = {"error": code, "message": MESSAGES.get(code, code)}
    return status, {"actionSucceed": False, "errorWrappers": [wrapper]}


@contextmanager
def serve_fake_vies(fake: FakeVies | None = None) -> Iterator[FakeVies]:
    fake = fake or FakeVies()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = None
            fake.seen.append(body if isinstance(body, dict) else {"raw": raw.decode("latin-1")})
            if fake.delay:
                fake.released.wait(fake.delay)
            if fake.status is not None:
                status, data = fake.status, b"<html><body>Service unavailable</body></html>"
                kind = "text/html"
            else:
                status, answer = fake.respond(self.path, body)
                data, kind = json.dumps(answer).encode(), "application/json"
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                return  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}{BASE_PATH}"
    try:
        yield fake
    finally:
        fake.released.set()
        server.shutdown()
        server.server_close()
        thread.join()
