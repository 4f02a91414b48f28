"""The VAT rates of the 27 EU member states, as in force on **1 December 2026**.

For each member state: the standard rate, its reduced rates, its super-reduced rate (below 5 %)
and its parking rate, as fractions quantized to 0.001 (``Decimal("0.190")``), keyed by ISO
3166 alpha-2 code (Greece is ``GR``; ``EL``, its VAT prefix, is accepted as an alias). An OSS
sale to a consumer in another member state is invoiced at that state's rates; these tables are
how the bridge recognises one.

France is not repeated here: its rates are :data:`bridge.mapping.functions.FRENCH_VAT_RATES`
(20, 10, 8.5 and 2.1 overseas, 5.5, 2.1), without its 0.000. No country's table holds 0.000: a
line at 0 % is a matter of exemption (export, intra-EU, franchise), not of a country's rates.

Sources: the European Commission's Taxes in Europe Database (TEDB) and the member states' own
announcements of the changes since 2024: Finland 25.5 % (Sept. 2024) and 13.5 % (Jan. 2026);
Estonia 24 % (July 2025), 13 % and 9 % (Jan. 2025); Slovakia 23/19/5 % (Jan. 2025); Romania
21/11 % (Aug. 2025, the 5 % and 9 % merged); Lithuania 12 % replacing 9 % (Jan. 2026); Austria
4.9 % on basic foods (July 2026); Malta 12 % (Jan. 2024); Cyprus 3 % (July 2023). Regional rates
are left out: Madeira and the Azores (Portugal), the Greek islands' reduced rates, Corsica; Büsingen,
Heligoland, Livigno, Campione, Mount Athos, the Canary Islands, Ceuta and Melilla are outside the
EU VAT territory. Rates change: a merchant whose sales need another rate lists the rates its
mapping file knows with the ``vat_rates:`` key (see docs/mappings.md), which overrides this table
for that file.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bridge.mapping.functions import FRENCH_VAT_RATES

RATE_QUANTUM = Decimal("0.001")
RATES_DATE = "2026-12-01"  # the day the table describes


def _rate(percent: str) -> Decimal:
    return (Decimal(percent) / 100).quantize(RATE_QUANTUM)


@dataclass(frozen=True)
class CountryRates:
    """One member state's rates: standard first, then reduced, super-reduced, parking."""

    standard: Decimal
    reduced: tuple[Decimal, ...] = ()
    super_reduced: Decimal | None = None
    parking: Decimal | None = None

    @classmethod
    def of(
        cls,
        standard: str,
        reduced: tuple[str, ...] = (),
        super_reduced: str | None = None,
        parking: str | None = None,
    ) -> CountryRates:
        return cls(
            _rate(standard),
            tuple(_rate(r) for r in reduced),
            _rate(super_reduced) if super_reduced else None,
            _rate(parking) if parking else None,
        )

    @property
    def all(self) -> tuple[Decimal, ...]:
        """Every distinct rate, standard first, then from the highest to the lowest."""
        others = {*self.reduced, self.super_reduced, self.parking} - {None, self.standard}
        return (self.standard, *sorted((r for r in others if r is not None), reverse=True))


_FRANCE = tuple(r for r in FRENCH_VAT_RATES if r)
# Rates in percent, as the member states publish them.
EU_VAT_RATES: dict[str, CountryRates] = {
    "AT": CountryRates.of("20", ("13", "10"), "4.9", parking="13"),
    "BE": CountryRates.of("21", ("12", "6"), parking="12"),
    "BG": CountryRates.of("20", ("9",)),
    "CY": CountryRates.of("19", ("9", "5"), "3"),
    "CZ": CountryRates.of("21", ("12",)),
    "DE": CountryRates.of("19", ("7",)),
    "DK": CountryRates.of("25"),
    "EE": CountryRates.of("24", ("13", "9")),
    "ES": CountryRates.of("21", ("10",), "4"),
    "FI": CountryRates.of("25.5", ("13.5", "10")),
    "FR": CountryRates(_FRANCE[0], _FRANCE[1:]),
    "GR": CountryRates.of("24", ("13", "6")),
    "HR": CountryRates.of("25", ("13", "5")),
    "HU": CountryRates.of("27", ("18", "5")),
    "IE": CountryRates.of("23", ("13.5", "9"), "4.8", parking="13.5"),
    "IT": CountryRates.of("22", ("10", "5"), "4"),
    "LT": CountryRates.of("21", ("12", "5")),
    "LU": CountryRates.of("17", ("8",), "3", parking="14"),
    "LV": CountryRates.of("21", ("12", "5")),
    "MT": CountryRates.of("18", ("12", "7", "5")),
    "NL": CountryRates.of("21", ("9",)),
    "PL": CountryRates.of("23", ("8", "5")),
    "PT": CountryRates.of("23", ("13", "6"), parking="13"),
    "RO": CountryRates.of("21", ("11",)),
    "SE": CountryRates.of("25", ("12", "6")),
    "SI": CountryRates.of("22", ("9.5", "5")),
    "SK": CountryRates.of("23", ("19", "5")),
}
ALIASES = {"EL": "GR"}  # Greece's VAT prefix


def country_rates(country: str) -> CountryRates | None:
    """The rates of ``country`` (ISO alpha-2, or ``EL``), or None outside the EU."""
    code = country.strip().upper()
    return EU_VAT_RATES.get(ALIASES.get(code, code))


def rates_of(country: str) -> tuple[Decimal, ...]:
    """Every VAT rate of ``country``, standard first; ``()`` for a non-EU or unknown code."""
    found = country_rates(country)
    return found.all if found is not None else ()


def is_rate_of(country: str, rate: Decimal) -> bool:
    """Whether ``rate`` (a fraction, e.g. ``Decimal("0.19")``) is one of ``country``'s rates."""
    return rate.is_finite() and rate in rates_of(country)


def eu_rates(country: str | None) -> tuple[Decimal, ...]:
    """``country``'s rates; ``None``: every member state's (a credit note's lines, whose country
    is its invoice's)."""
    if country is not None:
        return rates_of(country)
    return tuple(sorted({rate for rates in EU_VAT_RATES.values() for rate in rates.all}))
