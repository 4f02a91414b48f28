"""One running sandbox: its settings, its firm's records, its quota, its faults and its counters."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from facturation_sandbox.faults import Faults
from facturation_sandbox.quota import Quota
from facturation_sandbox.store import Store


@dataclass(frozen=True)
class SandboxConfig:
    login: str = "demo"
    key: str = "demo-key"
    firm_id: int = 1
    rate_limit: int = 600
    rate_window: float = 300.0
    daily_limit: int = 10_000
    day_seconds: float = 86_400.0
    faults: Mapping[str, float] = field(default_factory=dict)
    seed: int | None = None
    slow_seconds: float = 35.0
    vat_rounding: str = "per-rate"  # "per-line": VAT rounded line by line (tests only)


class Sandbox:
    """Everything one sandbox process holds, in memory."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config or SandboxConfig()
        self.store = Store(now=now, vat_rounding=self.config.vat_rounding)
        self.quota = Quota(
            limit=self.config.rate_limit,
            window=self.config.rate_window,
            daily_limit=self.config.daily_limit,
            day=self.config.day_seconds,
            clock=clock,
        )
        self.faults = Faults(self.config.faults, self.config.seed, self.config.slow_seconds)
        self._lock = threading.Lock()
        self.requests = 0
        self.rate_limited = 0
        self.by_status: Counter[int] = Counter()
        self.user_agents: Counter[str] = Counter()

    def count_request(self, user_agent: str | None) -> None:
        with self._lock:
            self.requests += 1
            self.user_agents[user_agent or "(none)"] += 1

    def count_answer(self, status: int) -> None:
        with self._lock:
            self.by_status[status] += 1
            if status == 429:
                self.rate_limited += 1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
                "rate_limited": self.rate_limited,
                "faults": dict(self.faults.injected),
                "quota_remaining": self.quota.peek().remaining,
                "user_agents": dict(self.user_agents),
            }

    def ledger(self) -> dict[str, Any]:
        return {**self.store.ledger(), "counters": self.stats()}
