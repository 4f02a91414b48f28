"""The sandbox shared by many threads: ids unique, invoice numbers in sequence without gaps."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.support.sandbox import in_process_client, new_sandbox


def test_concurrent_creates_get_unique_ids_and_gapless_numbers() -> None:
    sandbox = new_sandbox()
    with in_process_client(sandbox) as client:
        customer = client.create_customer({"company_name": "Shared"}).data["id"]
        body = {
            "customer_id": customer,
            "items": [{"title": "x", "unit_price": "1", "vat": "0.200"}],
        }
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda _: client.create_invoice(body).data, range(80)))
    ids = [r["id"] for r in results]
    numbers = sorted(int(r["invoice_ref"].split("-")[1]) for r in results)
    assert len(set(ids)) == 80
    assert numbers == list(range(1, 81))
    assert sandbox.stats()["requests"] == 81
