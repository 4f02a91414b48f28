"""A local Facturation.pro: the documented API the bridge uses, its quota and its failure modes.

Run it with ``facturation-bridge sandbox`` (see docs/sandbox.md), or in-process with
:func:`create_app` and :class:`SandboxTransport` (a sync ``httpx`` transport to the app).
"""

from bridge.facturation.sandbox.app import create_app
from bridge.facturation.sandbox.state import Sandbox, SandboxConfig
from bridge.facturation.sandbox.transport import SandboxTransport

__all__ = ["Sandbox", "SandboxConfig", "SandboxTransport", "create_app"]
