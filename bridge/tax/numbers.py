"""EU VAT numbers and French company ids (SIREN, SIRET), checked locally, without a network.

A VAT number is checked for its shape: an EU prefix (``EL`` for Greece, ``XI`` for Northern
Ireland's goods trade) and the rest in the format the VIES help pages publish for that member
state. A French number is also checked for its key: two digits equal to
``(12 + 3 * (SIREN % 97)) % 97``; the alphanumeric keys (old and new format, letters other than
I and O) are checked for their shape only, their computation being unpublished. Whether a number
is *registered* is VIES's to say (:mod:`bridge.tax.vies`).

A SIREN (9 digits) and a SIRET (14 digits) carry a Luhn check digit; La Poste's establishments
(SIRET ``356000000xxxxx``), too many for the NIC's range, use another rule: the sum of the 14
digits is a multiple of 5 (its head office, ``35600000000048``, passes Luhn as well).

Errors::

    ValueError
      InvalidVatNumberError   not an EU VAT number: one line naming it and what is wrong
      InvalidSiretError       not a SIRET: one line naming it and what is wrong
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SEPARATORS = re.compile(r"[\s.\-]+")
# What follows the prefix, per the VIES format table: 9 a digit, X a letter or a digit,
# S a letter, a digit, "+" or "*", L a letter.
VAT_FORMATS: dict[str, tuple[str, str]] = {
    "AT": (r"U\d{8}", "U and 8 digits"),
    "BE": (r"[01]\d{9}", "10 digits starting with 0 or 1"),
    "BG": (r"\d{9,10}", "9 or 10 digits"),
    "CY": (r"\d{8}[A-Z]", "8 digits and a letter"),
    "CZ": (r"\d{8,10}", "8 to 10 digits"),
    "DE": (r"\d{9}", "9 digits"),
    "DK": (r"\d{8}", "8 digits"),
    "EE": (r"\d{9}", "9 digits"),
    "EL": (r"\d{9}", "9 digits"),
    "ES": (
        r"[A-Z]\d{7}[A-Z0-9]|\d{8}[A-Z]",
        "9 characters, the first and the last a letter or a digit, not both digits",
    ),
    "FI": (r"\d{8}", "8 digits"),
    "FR": (r"[0-9A-HJ-NP-Z]{2}\d{9}", "a 2-character key and the 9-digit SIREN"),
    "HR": (r"\d{11}", "11 digits"),
    "HU": (r"\d{8}", "8 digits"),
    "IE": (
        r"\d{7}[A-W][A-IW]?|\d[A-Z+*]\d{5}[A-W]",
        "7 digits and 1 or 2 letters, or a digit, a letter, 5 digits and a letter",
    ),
    "IT": (r"\d{11}", "11 digits"),
    "LT": (r"\d{9}|\d{12}", "9 or 12 digits"),
    "LU": (r"\d{8}", "8 digits"),
    "LV": (r"\d{11}", "11 digits"),
    "MT": (r"\d{8}", "8 digits"),
    "NL": (r"\d{9}B\d{2}", "9 digits, B and 2 digits"),
    "PL": (r"\d{10}", "10 digits"),
    "PT": (r"\d{9}", "9 digits"),
    "RO": (r"[1-9]\d{1,9}", "2 to 10 digits, not starting with 0"),
    "SE": (r"\d{12}", "12 digits"),
    "SI": (r"\d{8}", "8 digits"),
    "SK": (r"\d{10}", "10 digits"),
    "XI": (r"\d{9}|\d{12}|GD[0-4]\d{2}|HA[5-9]\d{2}", "9 or 12 digits, GD or HA and 3 digits"),
}
_PATTERNS = {prefix: re.compile(pattern, re.ASCII) for prefix, (pattern, _) in VAT_FORMATS.items()}
_NOT_PREFIXES = {
    "GR": "Greek VAT numbers start with EL, not GR",
    "GB": "GB numbers are British, outside the EU since 2021 (Northern Ireland's goods trade: XI)",
}


class InvalidVatNumberError(ValueError):
    """Not an EU VAT number; ``str()`` is one line naming the number and what is wrong."""


class InvalidSiretError(ValueError):
    """Not a SIRET; ``str()`` is one line naming it and what is wrong."""


@dataclass(frozen=True)
class VatNumber:
    """An EU VAT number: ``country`` its prefix as printed (``DE``, ``EL``, ``XI``), ``digits``
    the rest, ``text`` the two together without separators (``DE123456789``)."""

    country: str
    digits: str

    @property
    def text(self) -> str:
        return self.country + self.digits

    def __str__(self) -> str:
        return self.text


def _compact(text: str) -> str:
    return _SEPARATORS.sub("", text).upper()


def parse_vat_number(text: str) -> VatNumber:
    """``text`` as a :class:`VatNumber`, without spaces, dots or dashes, in capitals.

    Raises :class:`InvalidVatNumberError` when the prefix is not an EU one, the rest is not in that
    member state's format, or a French number's numeric key does not match its SIREN.
    """
    compact = _compact(text)
    prefix, rest = compact[:2], compact[2:]
    if prefix in _NOT_PREFIXES:
        raise InvalidVatNumberError(f"{text!r} is not an EU VAT number: {_NOT_PREFIXES[prefix]}")
    if prefix not in _PATTERNS:
        raise InvalidVatNumberError(
            f"{text!r} is not an EU VAT number: it must start with an EU country prefix"
            " (AT, BE, … EL for Greece, XI for Northern Ireland)"
        )
    if not _PATTERNS[prefix].fullmatch(rest):
        raise InvalidVatNumberError(
            f"{text!r} is not a valid {prefix} VAT number: after {prefix} come"
            f" {VAT_FORMATS[prefix][1]}"
        )
    number = VatNumber(prefix, rest)
    if prefix == "FR" and rest[:2].isdigit() and rest[:2] != french_vat_key(rest[2:]):
        raise InvalidVatNumberError(
            f"{text!r} is not a valid FR VAT number: its key {rest[:2]} does not match"
            f" SIREN {rest[2:]} (expected {french_vat_key(rest[2:])})"
        )
    return number


def member_state(number: VatNumber) -> str:
    """The ISO alpha-2 code of the state that issued ``number``: ``GR`` for ``EL``.

    ``XI`` stays ``XI``: Northern Ireland is in the EU's VAT area for goods only, and is part of
    the United Kingdom (``GB``) for everything else; the caller decides which applies.
    """
    return "GR" if number.country == "EL" else number.country


def french_vat_key(siren: str) -> str:
    """The numeric key of the French VAT number of ``siren``: two digits."""
    return f"{(12 + 3 * (int(siren) % 97)) % 97:02d}"


def french_vat_number(siren: str) -> VatNumber:
    """The French VAT number (numeric key) of a valid ``siren``."""
    if not valid_siren(siren):
        raise InvalidVatNumberError(f"{siren!r} is not a SIREN: 9 digits with a Luhn check digit")
    compact = _compact(siren)
    return VatNumber("FR", french_vat_key(compact) + compact)


def siren_of(number: VatNumber) -> str | None:
    """The SIREN inside a French VAT number; None for another member state's number."""
    return number.digits[2:] if number.country == "FR" else None


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


LA_POSTE_SIREN = "356000000"


def valid_siren(text: str) -> bool:
    """Whether ``text`` (spaces, dots, dashes allowed) is a SIREN: 9 digits passing Luhn."""
    compact = _compact(text)
    return len(compact) == 9 and compact.isascii() and compact.isdigit() and _luhn(compact)


def valid_siret(text: str) -> bool:
    """Whether ``text`` (separators allowed) is a SIRET: a SIREN and a NIC, 14 digits, Luhn —
    or, for La Poste (``356000000…``), digits summing to a multiple of 5."""
    compact = _compact(text)
    if len(compact) != 14 or not compact.isascii() or not compact.isdigit():
        return False
    if compact.startswith(LA_POSTE_SIREN):
        return sum(map(int, compact)) % 5 == 0 or _luhn(compact)
    return _luhn(compact)


def normalise_siret(text: str) -> str:
    """``text`` as 14 digits without separators; :class:`InvalidSiretError` if not a SIRET."""
    compact = _compact(text)
    if len(compact) != 14 or not compact.isascii() or not compact.isdigit():
        raise InvalidSiretError(f"{text!r} is not a SIRET: it must be 14 digits")
    if not valid_siret(compact):
        raise InvalidSiretError(f"{text!r} is not a SIRET: its check digit is wrong")
    return compact
