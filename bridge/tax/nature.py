"""A line's nature: goods or services, for the VAT mention and, for micro-entrepreneurs, Facturation.pro.

Facturation.pro's line field ``nature`` (values/nature.md: 1 Vente, 2 BIC prestations de service
commerciales ou artisanales, 3 BNC prestation non commerciale, 8 Débours, 9 Non applicable) is used
by auto- and micro-entrepreneurs to compute their social contributions. A mapping's line ``nature``
says what each line is, by name (``goods``, ``services``, ``services_bic``, ``services_bnc``,
``disbursement``, ``none``) or by Facturation.pro's number. The same answer decides the mention of
an invoice without VAT (intra-EU goods or services, export). Names are sent as numbers only when
``BRIDGE_LINE_NATURE`` is ``bic`` or ``bnc`` (which says what ``services`` is); numbers are always
sent.
"""

from __future__ import annotations

from typing import Any

from bridge.tax.decide import GOODS, OTHER, SERVICES

NATURE_CODES = (1, 2, 3, 8, 9)
_NAMES: dict[str, tuple[str, int | None]] = {
    "goods": (GOODS, 1),
    "services": (SERVICES, None),  # 2 or 3, as BRIDGE_LINE_NATURE says
    "services_bic": (SERVICES, 2),
    "services_bnc": (SERVICES, 3),
    "disbursement": (OTHER, 8),
    "none": (OTHER, 9),
}
_KIND_OF_CODE = {1: GOODS, 2: SERVICES, 3: SERVICES, 8: OTHER, 9: OTHER}
_SERVICES_CODE = {"bic": 2, "bnc": 3}
EXPECTED = f"one of {', '.join(_NAMES)} or a number among {', '.join(map(str, NATURE_CODES))}"


class NatureError(ValueError):
    """Not a nature the bridge knows."""


def line_nature(value: Any, mode: str) -> tuple[str | None, int | None]:
    """``(kind, code to send)`` for a mapping's nature ``value`` under ``BRIDGE_LINE_NATURE=mode``.

    ``(None, None)`` when the mapping gives none; raises :class:`NatureError` for an unknown one.
    """
    if value is None or value == "":
        return None, None
    if isinstance(value, int) and not isinstance(value, bool):
        if value not in _KIND_OF_CODE:
            raise NatureError(EXPECTED)
        return _KIND_OF_CODE[value], value
    if not isinstance(value, str) or value.strip().lower() not in _NAMES:
        raise NatureError(EXPECTED)
    kind, code = _NAMES[value.strip().lower()]
    if mode not in _SERVICES_CODE:
        return kind, None
    return kind, _SERVICES_CODE[mode] if code is None else code
