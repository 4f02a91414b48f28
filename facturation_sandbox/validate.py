"""Reading a request body the way the API does: typed fields, 422 with an ``errors`` object.

Unknown and read-only fields are ignored (as the API ignores them: totals "ne doivent pas être
transmis" and are recomputed). A value of the wrong type or too long is an error on that field.
Decimals are rounded to the column's scale (``decimal(15,3)`` keeps 3 decimals), like the database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

BLANK = "doit être rempli(e)"
BIGINT_MAX = 2**63 - 1
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class InvalidError(Exception):
    """The data can't be saved: answered 422 with ``{"errors": errors}``."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


class Errors:
    """Collects field errors; :meth:`check` raises :class:`InvalidError` if there are any."""

    def __init__(self) -> None:
        self.by_field: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.by_field.setdefault(field, []).append(message)

    def check(self) -> None:
        if self.by_field:
            raise InvalidError(self.by_field)


def coerce(value: Any, kind: str) -> Any:
    """``value`` as the field type ``kind`` (see values.py); ValueError(message) if it isn't one."""
    if value is None:
        return None
    name, _, arg = kind.partition(":")
    if name in ("str", "text"):
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise ValueError("doit être une chaîne de caractères")
        text = str(value)
        if name == "str" and len(text) > int(arg):
            raise ValueError(f"est trop long (pas plus de {arg} caractères)")
        return text
    if name in ("int", "bigint"):
        return _integer(value, BIGINT_MAX if name == "bigint" else 2**31 - 1)
    if name == "bool":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true"):
            return True
        if str(value).lower() in ("0", "false", ""):
            return False
        raise ValueError("doit être vrai ou faux")
    if name == "date":
        if isinstance(value, str) and _DATE.match(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise ValueError("n'est pas une date valide (AAAA-MM-JJ)")
    if name == "dec":
        precision, scale = (int(x) for x in arg.split(","))
        return _decimal(value, precision, scale)
    raise AssertionError(f"unknown field type {kind}")


def _integer(value: Any, maximum: int) -> int:
    if isinstance(value, bool):
        raise ValueError("n'est pas un nombre entier")
    if isinstance(value, int):
        number = value
    elif (isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip())) or (
        isinstance(value, Decimal) and value == value.to_integral_value()
    ):
        number = int(value)
    else:
        raise ValueError("n'est pas un nombre entier")
    if abs(number) > maximum:
        raise ValueError("est trop grand")
    return number


def _decimal(value: Any, precision: int, scale: int) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError("n'est pas un nombre")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("n'est pas un nombre") from None
    if not number.is_finite():
        raise ValueError("n'est pas un nombre")
    if abs(number) >= Decimal(10) ** (precision - scale):
        raise ValueError("est trop grand")
    number = number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    if abs(number) >= Decimal(10) ** (precision - scale):  # 999.9995 rounds up to 1000.000
        raise ValueError("est trop grand")
    return number


def read_fields(
    body: Mapping[str, Any], spec: Mapping[str, str], errors: Errors, prefix: str = ""
) -> dict[str, Any]:
    """The fields of ``body`` named in ``spec``, coerced; errors are added to ``errors``."""
    out: dict[str, Any] = {}
    for field, kind in spec.items():
        if field not in body:
            continue
        try:
            out[field] = coerce(body[field], kind)
        except ValueError as exc:
            errors.add(prefix + field, str(exc))
    return out


def check_choice(values: Mapping[str, Any], field: str, allowed: Any, errors: Errors) -> None:
    value = values.get(field)
    if value is not None and value != "" and value not in allowed:
        errors.add(field, "n'est pas inclus(e) dans la liste")
