"""Which customer metafields a mapping file asks for, and the customer id they are read for."""

from __future__ import annotations

import pytest

from bridge.mapping.shopify_lookup import customer_gid, metafields_of, metafields_query


def test_metafields_are_the_legal_ids_entries_ending_in_metafield() -> None:
    tables = {
        "legal_ids": {
            "vat_number": ["vat"],
            "vat_number_metafield": "custom.vat_number",
            "siret_metafield": "$app:b2b.siret",
            "eori_metafield": None,  # turned off
        }
    }
    assert metafields_of(tables) == {
        "vat_number": ("custom", "vat_number"),
        "siret": ("$app:b2b", "siret"),
    }
    assert metafields_of({}) == {}


@pytest.mark.parametrize("value", ["vat_number", "custom.", "custom.vat number", 12, ["a.b"]])
def test_a_metafield_that_is_not_namespace_dot_key_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match=r"tables\.legal_ids\.vat_number_metafield: expected"):
        metafields_of({"legal_ids": {"vat_number_metafield": value}})


def test_the_customer_id_becomes_its_graphql_id() -> None:
    gid = "gid://shopify/Customer/7102938475610293847"
    assert customer_gid(7102938475610293847) == gid
    assert customer_gid("7102938475610293847") == gid
    assert customer_gid(gid) == gid
    for bad in ("abc", True, "gid://shopify/Order/1", "١٢٣", {"id": 1}):
        with pytest.raises(ValueError, match="expected a Shopify customer id"):
            customer_gid(bad)


def test_the_query_passes_namespaces_and_keys_as_variables() -> None:
    document, variables = metafields_query({"vat_number": ("custom", "vat_number")})
    assert "m0: metafield(namespace: $ns0, key: $key0) { value }" in document
    assert "customer(id: $id)" in document
    assert "vat_number" not in document  # values never go into the query text
    assert variables == {"ns0": "custom", "key0": "vat_number"}
