"""Whatever a client sends, the sandbox answers it without a 5xx and keeps its state consistent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from facturation_sandbox import SandboxTransport, create_app
from tests.support.sandbox import FIRM_ID, KEY, LOGIN, new_sandbox

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=20),
    st.sampled_from(["1e999999", "-0.0005", "9999999999999.9995", "2013-02-30", "0.200", "NaN"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = [
    "company_name",
    "customer_id",
    "items",
    "email",
    "api_id",
    "total",
    "paid_on",
    "vat_country",
    "currency",
    "payment_mode",
    "pay_before",
    "invoiced_on",
    "to",
    "title",
    "rebate_percentage",
]
ITEM_FIELDS = [
    "title",
    "quantity",
    "unit_price",
    "vat",
    "id",
    "_destroy",
    "style",
    "nature",
    "optional",
]
items = st.lists(st.fixed_dictionaries({}, optional={k: values for k in ITEM_FIELDS}), max_size=3)
bodies = st.fixed_dictionaries(
    {}, optional={**{k: values for k in FIELDS}, "items": items | values}
)
PATHS = [
    "/customers.json",
    "/customers/1.json",
    "/invoices.json",
    "/invoices.json?type_doc=draft",
    "/invoices/1.json",
    "/invoices/2.json",
    "/invoices/1/refund.json?api_id=99999999999999999999&api_custom=x",
    "/invoices/1/settlements.json",
    "/emails.json?bill_id=1",
]


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    sandbox = new_sandbox()
    with httpx.Client(
        base_url=f"http://sandbox.test/firms/{FIRM_ID}",
        auth=(LOGIN, KEY),
        transport=SandboxTransport(create_app(sandbox=sandbox)),
    ) as client:
        customer = client.post("/customers.json", json={"company_name": "Seed", "email": "a@b.fr"})
        lines = [{"title": "x", "unit_price": "10"}]
        invoice = {"customer_id": customer.json()["id"], "items": lines}
        assert client.post("/invoices.json", json=invoice).json()["id"] == 1  # finalised
        draft = client.post("/invoices.json", params={"type_doc": "draft"}, json=invoice)
        assert draft.json()["id"] == 2
        yield client


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=st.sampled_from(PATHS), body=bodies)
def test_no_body_makes_the_sandbox_fail(
    http: httpx.Client, path: str, body: dict[str, Any]
) -> None:
    method = "PATCH" if path.split("?", maxsplit=1)[0].endswith(("/1.json", "/2.json")) else "POST"
    answer = http.request(
        method, path, content=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    event(f"{method} {path.split('?', maxsplit=1)[0]} -> {answer.status_code}")
    assert answer.status_code < 500, answer.text
    assert answer.status_code in (200, 201, 400, 404, 405, 422), answer.text
    ledger = http.get("http://sandbox.test/__sandbox/ledger").json()
    for invoice in ledger["invoices"]:
        assert invoice["items"], "an invoice never loses all its lines"


@pytest.mark.parametrize(
    "raw",
    [b"[" * 100_000, b'{"a": "\xff"}', b"\x00\x01", b'{"company_name": "A", }', b"123"],
)
def test_malformed_bodies_are_400(http: httpx.Client, raw: bytes) -> None:
    answer = http.post("/customers.json", content=raw, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
