"""The reference's invoice, credit note, settlement and e-mail examples, replayed against the sandbox."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from bridge.facturation.client import FacturationClient
from bridge.facturation.errors import NotFoundError, RejectedError
from tests.integration.test_contract_customers import example, location_of
from tests.support.sandbox import in_process_client, new_sandbox

# Fields of the documented answer that are the server's own numbering, not a function of the request.
GENERATED = {"id", "customer_id", "invoice_ref"}
ITEM_GENERATED = {"id"}


@pytest.fixture
def client() -> Iterator[FacturationClient]:
    with in_process_client(new_sandbox()) as c:
        yield c


@pytest.fixture
def customer_id(client: FacturationClient) -> int:
    cid: int = client.create_customer({"company_name": "Big Corp", "email": "ap@bigcorp.fr"}).data[
        "id"
    ]
    return cid


def create_documented_invoice(client: FacturationClient, customer_id: int) -> dict[str, Any]:
    body = {**example("invoices_create")["request"], "customer_id": customer_id}
    data: dict[str, Any] = client.create_invoice(body).data
    return data


def test_create_invoice_answers_as_documented(client: FacturationClient, customer_id: int) -> None:
    ex = example("invoices_create")
    result = client.create_invoice({**ex["request"], "customer_id": customer_id})
    assert result.status == ex["status"]
    assert result.location == location_of(ex["location"], **{"1": result.data["id"]})
    for key, value in ex["response"].items():
        if key in GENERATED:
            continue
        if key == "items":
            assert len(result.data["items"]) == len(value)
            for got, want in zip(result.data["items"], value, strict=True):
                assert {k: got[k] for k in want if k not in ITEM_GENERATED} == {
                    k: v for k, v in want.items() if k not in ITEM_GENERATED
                }
        else:
            assert result.data[key] == value, key
    assert result.data["customer_id"] == customer_id
    assert re.fullmatch(r"201307-\d+", result.data["invoice_ref"])
    # Not in the example, computed by the server with the documented assumption (20 % on 700.00).
    assert result.data["total_with_vat"] == "840.0"
    assert result.data["balance"] == "840.0"


def test_show_and_find_carry_the_documented_fields(
    client: FacturationClient, customer_id: int
) -> None:
    created = create_documented_invoice(client, customer_id)
    shown = client.get_invoice(created["id"]).data
    assert set(example("invoices_show")["response"]) <= set(shown)
    listed = client.find_invoices().data
    assert set(example("invoices_find")["response"][0]) - {"items"} <= set(listed[0])
    assert "items" not in listed[0]  # lines only with with_details=1, as documented
    detailed = client.find_invoices(with_details=1).data
    assert detailed[0]["items"] == shown["items"]


def test_totals_are_computed_per_vat_rate_never_taken_from_the_request(
    client: FacturationClient, customer_id: int
) -> None:
    body = {
        "customer_id": customer_id,
        "total": "1.00",
        "total_with_vat": "1.00",
        "items": [
            {"title": "a", "quantity": "3", "unit_price": Decimal("9.995"), "vat": "0.200"},
            {"title": "b", "quantity": "1", "unit_price": "10.00", "vat": "0.055", "total": "0"},
            {"title": "section", "style": "comment"},
        ],
    }
    data = client.create_invoice(body).data
    # 3 x 9.995 = 29.985 -> 29.99 ; VAT 20 % of 29.99 = 6.00 ; 5.5 % of 10.00 = 0.55
    assert [i["total"] for i in data["items"]] == ["29.99", "10.0", "0.0"]
    assert data["total"] == "39.99"
    assert data["total_with_vat"] == "46.54"


def test_draft_then_finalised_invoice(client: FacturationClient, customer_id: int) -> None:
    body = {**example("invoices_create")["request"], "customer_id": customer_id}
    draft = client.create_invoice(body, draft=True).data
    assert draft["draft"] is True
    assert draft["invoice_ref"] is None
    items = [{"title": "Seule ligne", "quantity": "2", "unit_price": "10", "vat": "0.200"}]
    edited = client.update_invoice(draft["id"], {"items": items}).data
    assert edited["total"] == "20.0"
    assert edited["draft"] is True
    final = client.update_invoice(draft["id"], {}, type_doc="final").data
    assert final["draft"] is False
    assert final["invoice_ref"]
    with pytest.raises(RejectedError) as exc:
        client.update_invoice(draft["id"], {"items": items})
    assert exc.value.status == 422
    assert "items" in exc.value.errors
    with pytest.raises(RejectedError):
        client.update_invoice(draft["id"], {"currency": "USD"})
    with pytest.raises(RejectedError):
        client.update_invoice(draft["id"], {}, type_doc="draft")


def test_finalised_invoices_are_numbered_in_sequence(
    client: FacturationClient, customer_id: int
) -> None:
    refs = [create_documented_invoice(client, customer_id)["invoice_ref"] for _ in range(3)]
    numbers = [int(r.split("-")[1]) for r in refs]
    assert numbers == [numbers[0], numbers[0] + 1, numbers[0] + 2]


def test_update_records_the_payment(client: FacturationClient, customer_id: int) -> None:
    ex = example("invoices_update")
    invoice = create_documented_invoice(client, customer_id)
    result = client.update_invoice(invoice["id"], ex["request"])
    assert result.status == ex["status"]
    assert result.data["paid_on"] == "2020-04-06"
    assert result.data["payment_mode"] == 1
    assert result.data["balance"] == "0.0"
    assert result.data["total"] == invoice["total"]


def test_refund_makes_a_credit_note_as_documented(
    client: FacturationClient, customer_id: int
) -> None:
    ex = example("invoices_refund")
    documented = ex["response"]
    invoice = create_documented_invoice(client, customer_id)
    result = client.refund_invoice(
        invoice["id"], api_id=documented["api_id"], api_custom=documented["api_custom"]
    )
    note = result.data
    assert result.status == 201
    assert result.location == location_of("/firms/FIRM_ID/invoices/ID.json", ID=note["id"])
    for key in ("api_custom", "api_id", "currency", "draft", "title", "total", "payment_mode"):
        assert note[key] == documented[key], key
    assert note["refund_id"] == invoice["id"]
    assert note["total_with_vat"] == "-840.0"
    assert note["paid_on"] is not None
    assert int(note["invoice_ref"].split("-")[1]) == int(invoice["invoice_ref"].split("-")[1]) + 1
    assert (
        client.find_by_api_id("invoices", documented["api_id"])
        == client.get_invoice(note["id"]).data
    )


def test_refund_of_a_draft_is_rejected(client: FacturationClient, customer_id: int) -> None:
    body = {**example("invoices_create")["request"], "customer_id": customer_id}
    draft = client.create_invoice(body, draft=True).data
    with pytest.raises(RejectedError) as exc:
        client.refund_invoice(draft["id"], api_id=1, api_custom="x")
    assert exc.value.status == 422


def test_settlements_mark_the_invoice_paid_once_covered(
    client: FacturationClient, customer_id: int
) -> None:
    ex = example("settlements_create")
    invoice = create_documented_invoice(client, customer_id)  # 840.00 incl. VAT
    result = client.create_settlement(invoice["id"], {**ex["request"], "invoice_id": invoice["id"]})
    assert result.status == ex["status"]
    assert result.location == location_of(
        ex["location"].replace("/1/settlements/1", "/INV/settlements/SET"),
        INV=invoice["id"],
        SET=result.data["id"],
    )
    assert {k: v for k, v in result.data.items() if k not in ("id", "invoice_id")} == {
        k: v for k, v in ex["response"].items() if k not in ("id", "invoice_id")
    }
    after_first = client.get_invoice(invoice["id"]).data
    assert after_first["paid_on"] is None
    assert after_first["balance"] == "740.0"
    with pytest.raises(RejectedError) as exc:
        client.create_settlement(invoice["id"], {"total": "740.01", "payment_mode": 2})
    assert "total" in exc.value.errors
    client.create_settlement(
        invoice["id"], {"total": "740.00", "payment_mode": 2, "paid_on": "2021-01-20"}
    )
    paid = client.get_invoice(invoice["id"]).data
    assert paid["paid_on"] == "2021-01-20"
    assert paid["payment_mode"] == 2
    assert [s["total"] for s in paid["settlements"]] == ["100.0", "740.0"]


def test_email_only_for_finalised_invoices(client: FacturationClient, customer_id: int) -> None:
    ex = example("invoices_email")
    invoice = create_documented_invoice(client, customer_id)
    result = client.send_email(invoice["id"], ex["request"])
    assert result.status == ex["status"]
    assert result.data["to"] == "machin@test.com"
    defaulted = client.send_email(invoice["id"])
    assert defaulted.data["to"] == "ap@bigcorp.fr"  # the customer's address
    body = {**example("invoices_create")["request"], "customer_id": customer_id}
    draft = client.create_invoice(body, draft=True).data
    with pytest.raises(RejectedError) as exc:
        client.send_email(draft["id"])
    assert exc.value.status == 422
    with pytest.raises(NotFoundError):
        client.send_email(999_999)


def test_pdf_download(client: FacturationClient, customer_id: int) -> None:
    invoice = create_documented_invoice(client, customer_id)
    pdf = client.download_invoice_pdf(invoice["id"])
    assert pdf.startswith(b"%PDF-1.")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert invoice["invoice_ref"].encode() in pdf
    with pytest.raises(NotFoundError):
        client.download_invoice_pdf(999_999)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"customer_id": 999_999}, "customer"),
        ({"items": []}, "items"),
        ({"items": [{"title": "x", "unit_price": "1", "vat": "0.190"}]}, "items.vat"),
        ({"items": [{"title": "x", "unit_price": "abc", "vat": "0.200"}]}, "items.unit_price"),
        ({"currency": "XXX"}, "currency"),
        ({"invoiced_on": "29/07/2013"}, "invoiced_on"),
        ({"title": "t" * 256}, "title"),
    ],
)
def test_invalid_invoices_are_rejected_with_an_errors_object(
    client: FacturationClient, customer_id: int, change: dict[str, Any], field: str
) -> None:
    body = {**example("invoices_create")["request"], "customer_id": customer_id, **change}
    with pytest.raises(RejectedError) as exc:
        client.create_invoice(body)
    assert exc.value.status == 422
    assert field in exc.value.errors
    assert client.find_invoices().data == []  # nothing stored


def test_foreign_vat_rates_are_accepted_with_a_vat_country(
    client: FacturationClient, customer_id: int
) -> None:
    body = {
        "customer_id": customer_id,
        "vat_country": "DE",
        "items": [{"title": "x", "quantity": "1", "unit_price": "100", "vat": "0.190"}],
    }
    assert client.create_invoice(body).data["total_with_vat"] == "119.0"
