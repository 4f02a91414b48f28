"""The named, pure functions a mapping expression may call, on top of JMESPath's own.

Each is a plain Python function, tested on its own, then exposed to JMESPath by
:class:`MappingFunctions` under the same name. They never touch the network, the clock or a
database: mapping one stored event twice gives the same commands.

Money is ``Decimal`` throughout; a float anywhere is an error (``TypeError``), never a rounding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from jmespath import functions

from bridge.facturation.totals import VAT_QUANTUM, to_decimal

# ISO 4217 currencies whose Stripe amounts have no minor unit, or three decimals.
ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA"}
    | {"PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
THREE_DECIMAL = frozenset(("BHD", "JOD", "KWD", "OMR", "TND"))
EU_COUNTRIES = frozenset(
    (
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    )
)
# Not exact amounts: a float is never money, a boolean never a number. A tuple, not ``bool | float``,
# which would build a union type on every call of these hot functions.
INEXACT = (bool, float)
# VAT rates applicable in France (standard, intermediate, reduced, overseas, super-reduced, none).
FRENCH_VAT_RATES = tuple(Decimal(r) for r in ("0.200", "0.100", "0.085", "0.055", "0.021", "0.000"))


_NO_VALUE: Any = object()


class FunctionError(ValueError):
    """A mapping function got a value it cannot convert; the engine names the file and key.

    Made with :meth:`bad_value`, it says what was ``expected`` and keeps the ``value``, so that the
    engine can name where in the event that value was read (:mod:`bridge.mapping.paths`).
    """

    expected: str | None = None
    value: Any = _NO_VALUE

    @classmethod
    def bad_value(cls, expected: str, value: Any) -> FunctionError:
        error = cls(f"expected {expected}, got {value!r}")
        error.expected, error.value = expected, value
        return error

    @property
    def has_value(self) -> bool:
        return self.value is not _NO_VALUE


def currency_exponent(currency: str) -> int:
    """Digits after the decimal point of ``currency``'s minor unit (JPY 0, EUR 2, KWD 3)."""
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def minor(amount: Any, currency: str) -> Decimal | None:
    """Minor units (Stripe's integers) to an amount: ``minor(1999, 'eur') == Decimal('19.99')``.

    ``None`` (a missing amount) stays ``None``: a required amount then fails, naming its field.
    """
    if amount is None:
        return None
    if isinstance(amount, INEXACT):
        raise FunctionError.bad_value("minor units (an integer)", amount)
    try:
        value = to_decimal(amount)
    except (InvalidOperation, TypeError):
        raise FunctionError.bad_value("minor units (an integer)", amount) from None
    if value != value.to_integral_value():
        raise FunctionError.bad_value("minor units (an integer)", amount)
    return value.scaleb(-currency_exponent(currency))


def dec(value: Any) -> Decimal:
    """A Decimal from a decimal string, an int or a Decimal (``None`` and ``""`` are 0)."""
    if isinstance(value, INEXACT):
        raise FunctionError.bad_value("an exact decimal (not a float)", value)
    try:
        return to_decimal(value)
    except (InvalidOperation, TypeError) as exc:
        raise FunctionError.bad_value("a decimal", value) from exc


def dsum(values: Iterable[Any] | None) -> Decimal:
    """The exact sum of decimal strings / ints / Decimals (``None`` entries count as 0)."""
    return sum(map(dec, values or ()), Decimal(0))


def decimal_str(value: Any, places: int = 2) -> str:
    """``Decimal('3.5')`` -> ``"3.50"``: a decimal string with a fixed number of places."""
    return str(dec(value).quantize(Decimal(1).scaleb(-int(places))))


def local_date(value: Any, zone: ZoneInfo) -> str | None:
    """The calendar date in ``zone`` of a Unix timestamp or an ISO 8601 instant (``None`` stays)."""
    if value is None or value == "":
        return None
    if isinstance(value, INEXACT):
        raise FunctionError.bad_value("a timestamp", value)
    if isinstance(value, int | Decimal):
        instant = datetime.fromtimestamp(int(value), tz=UTC)
    else:
        try:
            instant = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as exc:
            raise FunctionError.bad_value("an ISO 8601 date-time", value) from exc
        if instant.tzinfo is None:
            raise FunctionError.bad_value("a date-time with its time zone", value)
    return instant.astimezone(zone).date().isoformat()


def country(value: Any) -> str | None:
    """An ISO 3166 alpha-2 code in capitals (``"fr"`` -> ``"FR"``); anything else is ``None``."""
    if not isinstance(value, str):
        return None
    code = value.strip().upper()
    return code if len(code) == 2 and code.isalpha() and code.isascii() else None


def is_eu(value: Any) -> bool:
    code = country(value)
    return code is not None and code in EU_COUNTRIES


def vat(rate: Any) -> str:
    """A VAT rate as Facturation.pro writes it: ``0.2`` -> ``"0.200"``, ``20`` (percent) too."""
    value = dec(rate)
    if value > 1:
        value = value / 100
    return str(value.quantize(VAT_QUANTUM))


def vat_rate(
    tax: Any, base: Any, currency: str = "EUR", known: Sequence[Decimal] = FRENCH_VAT_RATES
) -> str:
    """The known VAT rate that turns ``base`` into ``tax``, allowing for rounding in ``currency``.

    ``vat_rate('6.50', '32.50', 'EUR') == "0.200"``. Sources round each line, so the tax may be
    off by a unit or so of the currency (a cent, a yen) from ``base * rate``; a rate further off
    than that is an error, not a guess.
    """
    tax_d, base_d = dec(tax), dec(base)
    if base_d == 0:
        if tax_d == 0:
            return "0.000"
        raise FunctionError(f"tax {tax_d} on a zero base")
    best = min(known, key=lambda r: abs(tax_d - base_d * r))
    if not rate_fits(tax_d, base_d, best, currency):
        raise FunctionError(f"tax {tax_d} on base {base_d} is not one of the known VAT rates")
    return str(best.quantize(VAT_QUANTUM))


def rate_fits(tax: Decimal, base: Decimal, rate: Decimal, currency: str) -> bool:
    """``tax`` is ``base * rate`` as a source rounding each line in ``currency`` may have made it
    (off by a unit or so of the currency, or 0.05 % of the base)."""
    unit = Decimal(1).scaleb(-currency_exponent(currency))
    return abs(tax - base * rate) <= unit * Decimal("1.5") + abs(base) * Decimal("0.0005")


def vat_rate_of_gross(
    tax: Any, gross: Any, currency: str = "EUR", known: Sequence[Decimal] = FRENCH_VAT_RATES
) -> str:
    """:func:`vat_rate` when the amount includes its tax: ``vat_rate_of_gross('6.50', '39.00', 'EUR')``."""
    return vat_rate(tax, dec(gross) - dec(tax), currency, known)


def dsumprod(pairs: Iterable[Sequence[Any]] | None) -> Decimal:
    """The exact sum of products: ``dsumprod([['9.99', 3], ['1.50', 2]]) == Decimal('32.97')``."""
    total = Decimal(0)
    for pair in pairs or ():
        if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
            raise FunctionError(f"dsumprod takes [amount, quantity] pairs, got {pair!r}")
        total += dec(pair[0]) * dec(pair[1])
    return total


def email_key(email: Any) -> str | None:
    """A stable, non-identifying key for a guest e-mail: sha256 of the trimmed, lower-cased address.

    Keys travel in logs and ``api_custom``; the address itself does not need to.
    """
    if not isinstance(email, str) or "@" not in email:
        return None
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()[:24]


def fmt(template: str, *args: Any) -> str:
    """``fmt('stripe:invoice:{}', 'in_1')``: positional ``{}`` formatting (ints stay exact)."""
    return template.format(*("" if a is None else a for a in args))


def text(value: Any) -> str | None:
    """A value as text (exact for big integers and Decimals), ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def shopify_refund_taxes_included(refund: Mapping[str, Any]) -> bool:
    """Whether a Shopify refund's line subtotals include their tax.

    The refund body does not carry the order's ``taxes_included``; its transactions do carry the
    amount given back, which equals the subtotals (plus the tax when it is not included) plus the
    order adjustments. Whichever reading adds up is the right one.
    """
    lines = refund.get("refund_line_items") or []
    shipping = refund.get("refund_shipping_lines") or []  # API 2024-10 and later
    subtotal = dsum(_amount(item, "subtotal") for item in lines)
    subtotal += dsum(_amount(item, "subtotal_amount") for item in shipping)
    tax = dsum(_amount(item, "total_tax") for item in lines)
    tax += dsum(_amount(item, "tax_amount") for item in shipping)
    if tax == 0:
        return False
    adjustments = dsum(
        -dec(_amount(adj, "amount")) - dec(_amount(adj, "tax_amount"))
        for adj in refund.get("order_adjustments") or []
    )
    refunded = dsum(
        _amount(t, "amount")
        for t in refund.get("transactions") or []
        if t.get("kind") == "refund" and t.get("status") in ("success", None)
    )
    return bool(subtotal + adjustments == refunded and subtotal + tax + adjustments != refunded)


def _amount(obj: Mapping[str, Any], name: str) -> Any:
    """Presentment amount of ``name`` (``name_set.presentment_money.amount``), else the plain field."""
    money_set = obj.get(f"{name}_set")
    if isinstance(money_set, Mapping):
        presentment = money_set.get("presentment_money")
        if isinstance(presentment, Mapping) and presentment.get("amount") is not None:
            return presentment["amount"]
    return obj.get(name)


_STRING: Any = {"types": ["string"]}
_VARIADIC: Any = {"types": [], "variadic": True}
_ANY: Any = {"types": []}  # any JSON type: the function converts and checks itself


class MappingFunctions(functions.Functions):
    """The functions above, callable from JMESPath. ``tables`` come from the mapping file."""

    def __init__(
        self,
        zone: ZoneInfo,
        tables: Mapping[str, Mapping[str, Any]] | None = None,
        vat_rates: Sequence[Decimal] = FRENCH_VAT_RATES,
    ) -> None:
        super().__init__()
        self.zone = zone
        self.tables = dict(tables or {})
        self.vat_rates = tuple(vat_rates)

    @functions.signature(_ANY, _ANY)
    def _func_minor(self, amount: Any, currency: Any) -> Decimal | None:
        return minor(amount, str(currency or ""))

    @functions.signature(_ANY)
    def _func_dec(self, value: Any) -> Decimal:
        return dec(value)

    @functions.signature(_ANY)
    def _func_dsum(self, values: Any) -> Decimal:
        return dsum(values)

    @functions.signature(_ANY, _ANY)
    def _func_dsub(self, a: Any, b: Any) -> Decimal:
        return dec(a) - dec(b)

    @functions.signature(_ANY, _ANY)
    def _func_dmul(self, a: Any, b: Any) -> Decimal:
        return dec(a) * dec(b)

    @functions.signature(_ANY, _ANY)
    def _func_decimal_str(self, value: Any, places: Any) -> str:
        return decimal_str(value, int(places))

    @functions.signature(_ANY)
    def _func_local_date(self, value: Any) -> str | None:
        return local_date(value, self.zone)

    @functions.signature(_ANY)
    def _func_country(self, value: Any) -> str | None:
        return country(value)

    @functions.signature(_ANY)
    def _func_is_eu(self, value: Any) -> bool:
        return is_eu(value)

    @functions.signature(_ANY)
    def _func_vat(self, rate: Any) -> str:
        return vat(rate)

    @functions.signature(_ANY, _ANY, _ANY)
    def _func_vat_rate(self, tax: Any, base: Any, currency: Any) -> str:
        return vat_rate(tax, base, str(currency or "EUR"), self.vat_rates)

    @functions.signature(_ANY, _ANY, _ANY, _ANY)
    def _func_vat_rate_in(self, tax: Any, base: Any, currency: Any, where: Any) -> str:
        """:func:`vat_rate` among the file's rates, else those of the country ``where`` (a sale
        to a consumer in another EU country, at its rates); ``'EU'``: any member state's. An
        invoice whose lines fit neither set alone is made consistent by the VAT decision
        (:func:`bridge.mapping.taxing.tax_case`)."""
        from bridge.tax.rates import eu_rates  # not at the top: bridge.tax.rates reads this module

        code = None if where == "EU" else country(where)
        extra = eu_rates(code) if where == "EU" or code is not None else ()
        try:  # the file's own rates first: a small amount may fit a neighbour's rate too
            return vat_rate(tax, base, str(currency or "EUR"), self.vat_rates)
        except FunctionError:
            if not extra:
                raise
        return vat_rate(tax, base, str(currency or "EUR"), extra)

    @functions.signature(_ANY, _ANY, _ANY)
    def _func_vat_rate_of_gross(self, tax: Any, gross: Any, currency: Any) -> str:
        return vat_rate_of_gross(tax, gross, str(currency or "EUR"), self.vat_rates)

    @functions.signature(_ANY)
    def _func_dsumprod(self, pairs: Any) -> Decimal:
        return dsumprod(pairs)

    @functions.signature(_ANY)
    def _func_email_key(self, email: Any) -> str | None:
        return email_key(email)

    @functions.signature(_STRING, _VARIADIC)
    def _func_fmt(self, template: str, *args: Any) -> str:
        return fmt(template, *args)

    @functions.signature(_ANY)
    def _func_text(self, value: Any) -> str | None:
        return text(value)

    @functions.signature(_ANY)
    def _func_lower(self, value: Any) -> str | None:
        return value.lower() if isinstance(value, str) else None

    @functions.signature(_ANY)
    def _func_upper(self, value: Any) -> str | None:
        return value.upper() if isinstance(value, str) else None

    @functions.signature(_ANY)
    def _func_trim(self, value: Any) -> str | None:
        return value.strip() or None if isinstance(value, str) else None

    @functions.signature(_STRING, _ANY, _ANY)
    def _func_table(self, name: str, key: Any, default: Any) -> Any:
        if name not in self.tables:
            raise FunctionError(f"no table named {name!r} in this mapping file")
        return self.tables[name].get(text(key) or "", default)

    @functions.signature(_ANY)
    def _func_shopify_refund_taxes_included(self, refund: Any) -> bool:
        return shopify_refund_taxes_included(refund if isinstance(refund, Mapping) else {})


FUNCTION_NAMES = tuple(
    sorted(
        name.removeprefix("_func_") for name in vars(MappingFunctions) if name.startswith("_func_")
    )
)
