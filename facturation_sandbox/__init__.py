"""A local Facturation.pro: the documented API the bridge uses, its quota and its failure modes.

Run it with ``facturation-sandbox`` (see docs/sandbox.md), or in-process with
:func:`create_app` and :class:`SandboxTransport` (a sync ``httpx`` transport to the app).
"""

from facturation_sandbox.app import create_app
from facturation_sandbox.state import Sandbox, SandboxConfig
from facturation_sandbox.transport import SandboxTransport

__all__ = ["Sandbox", "SandboxConfig", "SandboxTransport", "create_app"]
