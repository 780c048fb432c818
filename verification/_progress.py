"""A dependency-free progress bar on stderr for long runs (suites, sweeps, training)."""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """``with Progress(total, "checks") as bar: ... bar.update()`` draws
    ``label [#####.....] 12/40 3.1s`` on stderr, redrawn at most ten times a second.

    ``enabled=None`` draws only when stderr is a terminal; ``False`` never draws.
    """

    def __init__(self, total: int, label: str = "", *, enabled: bool | None = None, stream=None):
        self.total = max(int(total), 0)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else bool(enabled)
        self.done = 0
        self.start = time.perf_counter()
        self._last = 0.0
        self.failures = 0

    def __enter__(self) -> "Progress":
        self._draw(force=True)
        return self

    def __exit__(self, *exc) -> None:
        self._draw(force=True)
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()

    def update(self, n: int = 1, failed: int = 0) -> None:
        """Advance by ``n`` items, ``failed`` of which failed."""
        self.done += n
        self.failures += failed
        self._draw()

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last < 0.1 and self.done < self.total:
            return
        self._last = now
        width = 30
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * int(round(frac * width))
        fail = f", {self.failures} failed" if self.failures else ""
        self.stream.write(
            f"\r{self.label} [{bar:<{width}}] {self.done}/{self.total}{fail} {now - self.start:.1f}s"
        )
        self.stream.flush()
