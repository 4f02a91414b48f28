"""``facturation-bridge map`` and ``mappings check``. (Filled in by the mapping work.)"""

from __future__ import annotations

from typing import Any


def add_mapping_commands(sub: Any) -> None:
    _ = sub
