"""``facturation-bridge sandbox``: a local Facturation.pro. (Filled in by the sandbox work.)"""

from __future__ import annotations

from typing import Any


def add_sandbox_command(sub: Any) -> None:
    _ = sub
