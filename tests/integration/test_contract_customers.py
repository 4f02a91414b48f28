"""The reference's customer and account examples, replayed through the client against the sandbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.facturation.client import FacturationClient
from tests.support.sandbox import FIRM_ID, LOGIN, in_process_client, new_sandbox

EXAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "facturation_api"


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text("utf-8"))
    return data


def location_of(template: str, **ids: int) -> str:
    path = template.replace("FIRM_ID", str(FIRM_ID))
    for name, value in ids.items():
        path = path.replace(name, str(value))
    return path


@pytest.fixture
def client() -> Iterator[FacturationClient]:
    with in_process_client(new_sandbox()) as c:
        yield c


def test_account_lists_the_firm(client: FacturationClient) -> None:
    documented = example("account_show")["response"]
    result = client.account()
    assert result.status == 200
    assert set(result.data) == set(documented)
    assert result.data["firms"] == [{"id": FIRM_ID, "name": f"Sandbox firm {FIRM_ID}"}]
    assert LOGIN in result.data["email"]


def test_create_customer_answers_as_documented(client: FacturationClient) -> None:
    ex = example("customers_create")
    result = client.create_customer(ex["request"])
    assert result.status == ex["status"]
    assert result.location == location_of(ex["location"], ID=result.data["id"])
    for key, value in ex["response"].items():
        if key != "id":
            assert result.data[key] == value, key
    assert isinstance(result.data["id"], int)


def test_customer_name_derived_from_person_when_no_company(client: FacturationClient) -> None:
    result = client.create_customer(
        {"first_name": "Marie", "last_name": "Curie", "individual": True}
    )
    assert result.data["company_name"] == "Marie Curie"
    assert result.data["individual"] is True


def test_show_and_find_return_every_documented_field(client: FacturationClient) -> None:
    created = client.create_customer({"company_name": "pandora", "country": "FR"}).data
    shown = client.get_customer(created["id"]).data
    assert set(example("customers_show")["response"]) <= set(shown)
    listed = client.find_customers().data
    assert set(example("customers_find")["response"][0]) <= set(listed[0])
    assert listed == [shown]


def test_update_customer_changes_only_what_is_sent(client: FacturationClient) -> None:
    ex = example("customers_update")
    created = client.create_customer({"company_name": "A small company", "city": "Lyon"}).data
    result = client.update_customer(created["id"], ex["request"])
    assert result.status == ex["status"]
    assert result.data["company_name"] == "A big company"
    assert result.data["email"] == "boss@bigcompany.com"
    assert result.data["city"] == "Lyon"
    assert client.get_customer(created["id"]).data == result.data


def test_searches_api_id_exact_and_partial_fields(client: FacturationClient) -> None:
    a = client.create_customer(
        {
            "company_name": "Alpha SARL",
            "email": "compta@alpha.fr",
            "api_id": 123,
            "api_custom": "stripe:cus_A",
        }
    ).data
    b = client.create_customer(
        {
            "company_name": "Beta SA",
            "email": "x@beta.fr",
            "api_id": 1234,
            "api_custom": "stripe:cus_B",
        }
    ).data
    assert [c["id"] for c in client.find_customers(api_id=123).data] == [a["id"]]
    assert client.find_customers(api_id=12).data == []
    client.create_customer({"company_name": "No api_id"})
    assert client.find_customers(api_id="abc").data == []
    assert [c["id"] for c in client.find_customers(api_custom="cus_B").data] == [b["id"]]
    assert [c["id"] for c in client.find_customers(email="ALPHA").data] == [a["id"]]
    assert [c["id"] for c in client.find_customers(company="eta").data] == [b["id"]]
    assert {c["id"] for c in client.find_customers(ids=[a["id"], b["id"]]).data} == {
        a["id"],
        b["id"],
    }
    assert client.find_by_api_id("customers", 1234) == client.get_customer(b["id"]).data
    assert client.find_by_api_id("customers", 999) is None


def test_pagination_header_and_pages(client: FacturationClient) -> None:
    for n in range(130):
        client.create_customer({"company_name": f"Client {n:03d}"})
    first = client.find_customers()
    assert len(first.data) == 50
    page3 = client.find_customers(page=3)
    assert len(page3.data) == 30
    assert page3.data[0]["company_name"] == "Client 100"
    assert client.find_customers(page=4).data == []
