"""Admin API and commands (status, replay), behind BRIDGE_ADMIN_TOKEN. (Filled in by the outbox work.)"""

from __future__ import annotations

import argparse
from typing import Any

from starlette.routing import BaseRoute


def admin_routes() -> list[BaseRoute]:
    return []


def add_admin_commands(sub: Any) -> None:
    _ = (sub, argparse)
