"""EU VAT numbers, French keys, SIREN and SIRET, checked locally (bridge/tax/numbers.py)."""

from __future__ import annotations

import pytest

from bridge.tax.numbers import (
    VAT_FORMATS,
    InvalidSiretError,
    InvalidVatNumberError,
    VatNumber,
    french_vat_key,
    french_vat_number,
    member_state,
    normalise_siret,
    parse_vat_number,
    siren_of,
    valid_siren,
    valid_siret,
)

# One number in each member state's format (as printed on invoices), and one a digit or a letter off.
VALID = {
    "AT": "ATU13585627",
    "BE": "BE0403170701",
    "BG": "BG175074752",
    "CY": "CY10259033P",
    "CZ": "CZ25123891",
    "DE": "DE811569869",
    "DK": "DK13585628",
    "EE": "EE100594102",
    "EL": "EL094014201",
    "ES": "ESA28015865",
    "FI": "FI20774740",
    "FR": "FR40303265045",
    "HR": "HR33392005961",
    "HU": "HU12892312",
    "IE": "IE6388047V",
    "IT": "IT00743110157",
    "LT": "LT119511515",
    "LU": "LU26375245",
    "LV": "LV40003521600",
    "MT": "MT11679112",
    "NL": "NL004495445B01",
    "PL": "PL5260250995",
    "PT": "PT500697256",
    "RO": "RO1630615",
    "SE": "SE556188840401",
    "SI": "SI50223054",
    "SK": "SK2020317068",
    "XI": "XI980780684",
}
INVALID = {
    "AT": "AT13585627",  # no U
    "BE": "BE2403170701",  # starts with 2
    "BG": "BG17507475",  # 8 digits
    "CY": "CY102590331",  # no final letter
    "CZ": "CZ2512389",  # 7 digits
    "DE": "DE81156986",  # 8 digits
    "DK": "DK1358562",  # 7 digits
    "EE": "EE10059410",  # 8 digits
    "EL": "EL09401420",  # 8 digits
    "ES": "ES128015865",  # first and last both digits
    "FI": "FI2077474",  # 7 digits
    "FR": "FR41303265045",  # key 41, SIREN 303265045 has key 40
    "HR": "HR3339200596",  # 10 digits
    "HU": "HU1289231",  # 7 digits
    "IE": "IE63880477",  # no letter
    "IT": "IT0074311015",  # 10 digits
    "LT": "LT1195115151",  # 10 digits
    "LU": "LU2637524",  # 7 digits
    "LV": "LV4000352160",  # 10 digits
    "MT": "MT1167911",  # 7 digits
    "NL": "NL004495445A01",  # A instead of B
    "PL": "PL526025099",  # 9 digits
    "PT": "PT50069725",  # 8 digits
    "RO": "RO01630615",  # leading zero
    "SE": "SE5561888404",  # 10 digits
    "SI": "SI5022305",  # 7 digits
    "SK": "SK202031706",  # 9 digits
    "XI": "XI98078068",  # 8 digits
}


def test_every_member_state_and_northern_ireland_has_examples() -> None:
    assert set(VALID) == set(INVALID) == set(VAT_FORMATS)
    assert len(VAT_FORMATS) == 28  # 27 member states (Greece as EL) and XI


@pytest.mark.parametrize(("prefix", "text"), sorted(VALID.items()))
def test_a_number_in_its_member_states_format_is_accepted(prefix: str, text: str) -> None:
    number = parse_vat_number(text)
    assert (number.country, number.text) == (prefix, text)
    assert number.digits == text[2:]


@pytest.mark.parametrize(("prefix", "text"), sorted(INVALID.items()))
def test_a_number_off_its_member_states_format_is_refused(prefix: str, text: str) -> None:
    with pytest.raises(InvalidVatNumberError) as caught:
        parse_vat_number(text)
    message = str(caught.value)
    assert "\n" not in message
    assert repr(text) in message
    assert f"valid {prefix} VAT number" in message


@pytest.mark.parametrize(
    ("written", "text"),
    [
        ("de 811 569 869", "DE811569869"),
        ("FR 40-303.265.045", "FR40303265045"),
        (" nl004495445b01 ", "NL004495445B01"),
        ("ie\t6388047v", "IE6388047V"),
    ],
)
def test_spaces_dots_dashes_and_case_are_normalised(written: str, text: str) -> None:
    assert parse_vat_number(written).text == text


def test_more_formats_of_the_vies_table() -> None:
    accepted = [
        "BE1012345675",  # Belgian numbers starting with 1 (since 2023)
        "BG1750747525",  # 10 digits
        "CZ251238912",  # 9 digits
        "CZ2512389123",  # 10 digits
        "ES12345678Z",  # digit first, letter last
        "ESX1234567L",  # letter first, letter last
        "IE1234567WA",  # 7 digits and two letters
        "IE1A23456B",  # old format: digit, letter, 5 digits, letter
        "IE1+23456B",
        "LT119511515123",  # 12 digits
        "RO18",  # 2 digits
        "RO1234567890",  # 10 digits
        "XI980780684000",  # 12 digits
        "XIGD001",  # government department
        "XIHA500",  # health authority
        "FR0A303265045",  # alphanumeric keys: shape only
        "FRAB303265045",
    ]
    for text in accepted:
        assert parse_vat_number(text).text == text
    refused = [
        "ES1234567",
        "RO1",
        "RO12345678901",
        "XIGD500",
        "XIHA499",
        "FRIO303265045",
        "ATU1234567X",
    ]
    for text in refused:
        with pytest.raises(InvalidVatNumberError):
            parse_vat_number(text)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("GR094014201", "start with EL, not GR"),
        ("GB980780684", "outside the EU"),
        ("US123456789", "EU country prefix"),
        ("CH123456789", "EU country prefix"),
        ("", "EU country prefix"),
        ("123456789", "EU country prefix"),
    ],
)
def test_a_prefix_that_is_not_an_eu_one_is_named(text: str, says: str) -> None:
    with pytest.raises(InvalidVatNumberError, match=says):
        parse_vat_number(text)


def test_digits_from_other_scripts_are_not_digits() -> None:
    with pytest.raises(InvalidVatNumberError):
        parse_vat_number("DE" + "\u0668\u0661\u0661" * 3)  # Arabic-Indic digits


def test_the_error_is_a_value_error() -> None:
    assert issubclass(InvalidVatNumberError, ValueError)
    assert issubclass(InvalidSiretError, ValueError)


def test_member_state_maps_greece_and_keeps_northern_ireland() -> None:
    assert member_state(parse_vat_number("EL094014201")) == "GR"
    assert member_state(parse_vat_number("XI980780684")) == "XI"
    assert member_state(parse_vat_number("DE811569869")) == "DE"


# -- France: the key, the SIREN ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("siren", "key"),
    [("303265045", "40"), ("443061841", "64"), ("732829320", "44"), ("000000000", "12")],
)
def test_the_french_numeric_key(siren: str, key: str) -> None:
    assert french_vat_key(siren) == key
    assert (12 + 3 * (int(siren) % 97)) % 97 == int(key)
    assert parse_vat_number(f"FR{key}{siren}").text == f"FR{key}{siren}"


def test_a_wrong_french_key_names_the_expected_one() -> None:
    with pytest.raises(
        InvalidVatNumberError, match=r"key 65 does not match SIREN 443061841 \(expected 64\)"
    ):
        parse_vat_number("FR65443061841")


def test_siren_of_a_french_number_only() -> None:
    assert siren_of(parse_vat_number("FR64443061841")) == "443061841"
    assert siren_of(parse_vat_number("FRAB303265045")) == "303265045"
    assert siren_of(parse_vat_number("DE811569869")) is None


def test_the_french_vat_number_of_a_siren() -> None:
    assert french_vat_number("443 061 841") == VatNumber("FR", "64443061841")
    with pytest.raises(InvalidVatNumberError, match="not a SIREN"):
        french_vat_number("443061842")


@pytest.mark.parametrize(
    "text", ["732829320", "443 061 841", "303.265.045", "356000000", "552-032-534"]
)
def test_valid_sirens(text: str) -> None:
    assert valid_siren(text)


@pytest.mark.parametrize(
    "text",
    ["732829321", "443061840", "73282932", "7328293200", "73282932A", "", "\u0667\u0663\u0662" * 3],
)
def test_invalid_sirens(text: str) -> None:
    assert not valid_siren(text)


@pytest.mark.parametrize(
    "text",
    [
        "73282932000074",
        "732 829 320 00074",
        "44306184100047",
        "35600000000048",  # La Poste's head office: Luhn
        "35600000000001",  # a La Poste establishment: digits sum to 15
        "35600000049837",  # digits sum to 45
    ],
)
def test_valid_sirets(text: str) -> None:
    assert valid_siret(text)
    assert normalise_siret(text) == text.replace(" ", "")


@pytest.mark.parametrize(
    "text",
    [
        "73282932000075",  # check digit off
        "35600000000002",  # La Poste: digits sum to 16, and not Luhn
        "7328293200007",  # 13 digits
        "732829320000744",  # 15 digits
        "MONACOCONFO001",
    ],
)
def test_invalid_sirets(text: str) -> None:
    assert not valid_siret(text)
    with pytest.raises(InvalidSiretError, match=repr(text)):
        normalise_siret(text)


def test_normalise_siret_says_which_rule_failed() -> None:
    with pytest.raises(InvalidSiretError, match="14 digits"):
        normalise_siret("732 829 320")
    with pytest.raises(InvalidSiretError, match="check digit"):
        normalise_siret("732 829 320 00075")
