"""JSON bodies for the inbox that keep every number as it came (``Decimal`` written as a number)."""

from __future__ import annotations

import json
import re
import secrets
from decimal import Decimal
from typing import Any

_NONCE = secrets.token_hex(8)
_MARK = re.compile(r'"\\u0000' + _NONCE + r':([-+0-9.eE]+)\\u0000"')


def _number(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"\x00{_NONCE}:{value}\x00"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dump_body(value: Any) -> bytes:
    """``value`` as compact JSON; a ``Decimal`` from :func:`parse_json` becomes the same number."""
    text = json.dumps(value, default=_number, separators=(",", ":"), ensure_ascii=False)
    return _MARK.sub(r"\1", text).encode("utf-8")
