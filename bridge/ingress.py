"""Webhook ingress: verify on the raw bytes, store the raw event, answer. (Filled in by the ingress work.)"""

from __future__ import annotations

from starlette.routing import BaseRoute


def webhook_routes() -> list[BaseRoute]:
    return []
