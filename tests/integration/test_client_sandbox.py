"""The client's list iteration and quota reporting against the sandbox."""

from __future__ import annotations

import pytest

from bridge.facturation.errors import RateLimitedError
from facturation_sandbox import Sandbox, SandboxConfig
from tests.support.sandbox import FIRM_ID, KEY, LOGIN, in_process_client, new_sandbox


def test_iterating_more_than_120_records_follows_every_page() -> None:
    sandbox = new_sandbox()
    with in_process_client(sandbox) as client:
        created = {
            client.create_customer({"company_name": f"Client {n}"}).data["id"] for n in range(127)
        }
        before = sandbox.stats()["requests"]
        seen = [c["id"] for c in client.iter_customers()]
        assert sandbox.stats()["requests"] - before == 3  # pages of 50, 50, 27
        assert len(seen) == 127
        assert set(seen) == created
        customer = next(iter(created))
        for n in range(121):
            client.create_invoice(
                {
                    "customer_id": customer,
                    "items": [{"title": f"L{n}", "unit_price": "1", "vat": "0.200"}],
                }
            )
        invoices = list(client.iter_invoices(customer_id=customer))
        assert len(invoices) == 121
        assert len({i["id"] for i in invoices}) == 121


def test_remaining_counts_down_to_a_429_with_retry_after() -> None:
    now = [0.0]
    sandbox = Sandbox(
        SandboxConfig(login=LOGIN, key=KEY, firm_id=FIRM_ID, rate_limit=60, rate_window=30),
        clock=lambda: now[0],
    )
    with in_process_client(sandbox) as client:
        remaining = [client.find_invoices().rate.remaining for _ in range(60)]
        assert remaining == list(range(59, -1, -1))
        now[0] = 12.5
        with pytest.raises(RateLimitedError) as exc:
            client.find_invoices()
        assert exc.value.retry_after == 18
        assert exc.value.rate is not None
        assert exc.value.rate.limit == 60
