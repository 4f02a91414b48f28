"""Fault injection: the failures the bridge must survive, each with a probability, reproducible.

``--faults "error_before=0.10,error_after=0.05,drop_after=0.05,slow_after=0.05"`` applies to writes
(POST and PATCH) only; reads are never faulted. For each write one number is drawn from a generator
seeded with ``--seed``, so the same sequence of writes meets the same faults:

- ``error_before``: 503 before anything is done (nothing stored);
- ``error_after``: the write is stored, then 502 instead of its answer;
- ``drop_after``: the write is stored, then the connection is closed without any answer;
- ``slow_after``: the write is stored, then the answer waits ``--slow-seconds`` (past the client's
  timeout).

The ``*_after`` faults only replace a successful answer: a write the API refuses (4xx) is answered
as is, and the draw counts as no fault.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

KINDS = ("error_before", "error_after", "drop_after", "slow_after")


class FaultSpecError(ValueError):
    """A ``--faults`` value that can't be read."""


def parse_faults(spec: str | None) -> dict[str, float]:
    """``"error_before=0.1,drop_after=0.05"`` -> ``{"error_before": 0.1, "drop_after": 0.05}``."""
    out: dict[str, float] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in KINDS:
            raise FaultSpecError(
                f"{part.strip()!r}: expected one of {', '.join(KINDS)} =probability"
            )
        try:
            probability = float(value)
        except ValueError:
            raise FaultSpecError(f"{part.strip()!r}: the probability must be a number") from None
        if not 0 <= probability <= 1:
            raise FaultSpecError(f"{part.strip()!r}: the probability must be between 0 and 1")
        out[name] = probability
    if sum(out.values()) > 1:
        raise FaultSpecError("the probabilities add up to more than 1")
    return out


@dataclass
class Faults:
    """Draws the fault for each write; counts the faults actually injected."""

    probabilities: Mapping[str, float] = field(default_factory=dict)
    seed: int | None = None
    slow_seconds: float = 35.0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # noqa: S311 -- reproducible test faults, not security
        self._lock = threading.Lock()
        self.injected: dict[str, int] = dict.fromkeys(KINDS, 0)

    def draw(self) -> str | None:
        """The fault for the next write, or None."""
        if not self.probabilities:
            return None
        with self._lock:
            roll = self._random.random()
        edge = 0.0
        for kind in KINDS:
            edge += self.probabilities.get(kind, 0.0)
            if roll < edge:
                return kind
        return None

    def record(self, kind: str) -> None:
        with self._lock:
            self.injected[kind] += 1
