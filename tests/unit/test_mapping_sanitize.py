"""Texts cleaned at mapping time: nothing a payload carries can fail locally on every send."""

from __future__ import annotations

import pytest

from bridge.facturation.client import encode_json
from bridge.mapping.sanitize import clean_text, cut, sanitized
from bridge.mapping.spec import MappingError
from bridge.outbox.commands import Command, CommandKind


def test_lone_surrogates_become_replacement_characters_and_controls_are_dropped() -> None:
    assert clean_text("Hugo\ud800") == "Hugo\ufffd"
    assert clean_text("Le\x00f\x07èvre") == "Lefèvre"
    assert clean_text("  8 allée des Tilleuls\r\n") == "8 allée des Tilleuls"
    assert clean_text("ligne 1\nligne 2\tfin") == "ligne 1\nligne 2\tfin"
    assert clean_text("\udc80\udbff") == "\ufffd\ufffd"


def test_free_text_is_cut_with_an_ellipsis() -> None:
    assert cut("abcdef", 6) == "abcdef"
    assert cut("abcdefg", 6) == "abcde…"
    assert len(cut("x" * 300, 255)) == 255


def test_a_customer_payload_is_clean_and_within_the_api_limits() -> None:
    command = Command(
        CommandKind.ENSURE_CUSTOMER,
        "customer:k",
        {"first_name": "Hugo\ud800", "company_name": "A" * 300, "individual": False},
    )
    payload = sanitized(command).payload
    assert payload["first_name"] == "Hugo\ufffd"
    assert len(payload["company_name"]) == 255
    assert payload["company_name"].endswith("…")
    assert payload["individual"] is False
    encode_json(payload)  # the request can be built: no local error later


def test_invoice_items_are_cleaned_too() -> None:
    command = Command(
        CommandKind.CREATE_INVOICE,
        "invoice:k",
        {"title": "Commande\x00 #1", "items": [{"title": "Bougie\ud800", "unit_price": "1.000"}]},
    )
    payload = sanitized(command).payload
    assert payload["title"] == "Commande #1"
    assert payload["items"] == [{"title": "Bougie\ufffd", "unit_price": "1.000"}]


@pytest.mark.parametrize(
    ("field", "value"), [("vat_number", "FR" + "1" * 40), ("zip_code", "4" * 21)]
)
def test_an_identifier_too_long_is_refused_not_cut(field: str, value: str) -> None:
    command = Command(CommandKind.ENSURE_CUSTOMER, "customer:k", {field: value})
    with pytest.raises(MappingError, match=f"{field}: .* at most"):
        sanitized(command)
