"""The crash windows again, against the sandbox's real API logic and ledger (in-process).

A crash is raised by a transport wrapped around the sandbox's: before the first write leaves, or
after the sandbox has stored it and before the answer reaches the worker. The worker "dies" there,
a second worker takes over when the lease expires, and the ledger must hold exactly one customer
and one invoice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from bridge.facturation.client import FacturationClient
from facturation_sandbox import Sandbox, SandboxTransport, create_app
from tests.support.fake_api import Crash
from tests.support.outbox_kit import Clock, drain, put, runtime_for, sale, worker_for
from tests.support.sandbox import FIRM_ID, KEY, LOGIN, USER_AGENT, new_sandbox

LEASE = 30.0


class CrashingTransport(httpx.BaseTransport):
    """Forwards to the sandbox; dies once at the chosen point of the first write."""

    def __init__(self, inner: httpx.BaseTransport, when: str | None) -> None:
        self.inner = inner
        self.when = when

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        armed = self.when is not None and request.method == "POST"
        if armed and self.when == "before_send":
            self.when = None
            raise Crash("before the request left")
        response = self.inner.handle_request(request)
        if armed and self.when == "after_send":
            self.when = None
            response.read()
            raise Crash("after the sandbox stored it")
        return response


@contextmanager
def client(sandbox: Sandbox) -> Iterator[tuple[FacturationClient, CrashingTransport]]:
    transport = CrashingTransport(SandboxTransport(create_app(sandbox=sandbox)), None)
    api = FacturationClient(
        base_url="http://sandbox.test",
        login=LOGIN,
        api_key=KEY,
        firm_id=FIRM_ID,
        user_agent=USER_AGENT,
        timeout=5.0,
        transport=transport,
    )
    try:
        yield api, transport
    finally:
        api.close()


@pytest.mark.parametrize("window", ["after_claim", "before_send", "after_send", "after_record"])
@pytest.mark.parametrize("crashing", ["customer", "invoice"])
def test_each_window_ends_with_one_object_in_the_ledger(
    db_url: str, window: str, crashing: str
) -> None:
    sandbox = new_sandbox()
    clock = Clock()
    with runtime_for(db_url, lease_seconds=LEASE) as runtime:
        put(runtime, sale(1, "cus_a"), clock())
        when = window if window in {"before_send", "after_send"} else None
        with client(sandbox) as (api, transport):
            w1 = worker_for(runtime, api, clock, "w1")
            if crashing == "invoice":
                assert w1.step()  # the customer is delivered normally
            transport.when = when
            if window == "after_claim":
                assert w1.outbox.claim("w1") is not None
            elif window == "after_record":
                assert w1.step()
            else:
                with pytest.raises(Crash):
                    w1.step()
        clock.advance(LEASE + 1)
        with client(sandbox) as (api, _):
            drain(worker_for(runtime, api, clock, "w2"), clock)
    ledger = sandbox.ledger()
    assert len(ledger["customers"]) == 1
    assert len(ledger["invoices"]) == 1
    assert ledger["invoices"][0]["api_custom"] == "invoice:test:in_1"
    assert ledger["invoices"][0]["total_with_vat"] in {"14.4", "14.40"}
