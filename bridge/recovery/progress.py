"""Backfill progress: a bar with ETA on a terminal (tqdm), a log line per page otherwise."""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from bridge.logging import get_logger

log = get_logger("bridge.recovery.progress")


class Progress:
    """Progress through a period, as the share of it covered so far (0 to 1)."""

    def __init__(self, label: str, *, stream: IO[str] | None = None, start: float = 0.0) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.start = start
        self.covered = start
        self.bar: Any = None
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=100.0,
                initial=round(start * 100, 1),
                desc=label,
                unit="%",
                file=self.stream,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}] {postfix}",
            )

    def update(self, covered: float, **counts: int) -> None:
        covered = min(1.0, max(self.covered, covered))
        if self.bar is not None:
            self.bar.update(round((covered - self.covered) * 100, 3))
            self.bar.set_postfix(counts, refresh=True)
        else:
            log.info(
                "backfill.progress",
                source=self.label,
                covered_pct=round(covered * 100, 1),
                eta_s=self._eta(covered),
                **counts,
            )
        self.covered = covered

    def _eta(self, covered: float) -> float | None:
        done = covered - self.start
        if done <= 0:
            return None
        elapsed = time.monotonic() - self.started
        return round(elapsed * (1.0 - covered) / done, 1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
