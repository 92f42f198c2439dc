"""How long the Qt event loop is held: a 5 ms timer records the gaps between its ticks (a gap
beyond the period is time the loop could not run). Used by the tests and bench.app_latency."""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer


class LoopMonitor:
    def __init__(self, period_ms: int = 5) -> None:
        self.gaps: list[float] = []  # seconds between ticks
        self._last = time.perf_counter()
        self._timer = QTimer()
        self._timer.timeout.connect(self._tick)
        self._timer.start(period_ms)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now

    def reset(self) -> None:
        self.gaps.clear()
        self._last = time.perf_counter()

    def longest_ms(self) -> float:
        return max(self.gaps, default=0.0) * 1000

    def stop(self) -> None:
        self._timer.stop()
