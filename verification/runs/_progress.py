"""A dependency-free progress bar on stderr for long runs (suites, sweeps, training)."""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """``with Progress(total, "checks") as bar: ... bar.update()`` draws
    ``label [#####.....] 12/40 3.1s`` on stderr, redrawn at most ten times a second.

    ``enabled=None`` draws the bar when stderr is a terminal; elsewhere (a log file, a pipe, CI) it
    writes a plain line ``label: 12/40 (31 s)`` at most every :attr:`LINE_EVERY` seconds, so a long
    run is never silent and a short one prints nothing. ``False`` never draws; ``True`` always draws
    the bar.
    """

    #: seconds between two plain progress lines when stderr is not a terminal
    LINE_EVERY = 15.0

    def __init__(self, total: int, label: str = "", *, enabled: bool | None = None, stream=None):
        self.total = max(int(total), 0)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        tty = self.stream.isatty() if hasattr(self.stream, "isatty") else False
        self.lines = enabled is None and not tty
        self.enabled = tty if enabled is None else bool(enabled)
        self.done = 0
        self.start = time.perf_counter()
        self._last = 0.0
        self._shown = -1
        self.failures = 0

    def __enter__(self) -> "Progress":
        self._draw(force=True)
        return self

    def __exit__(self, *exc) -> None:
        if self.lines and time.perf_counter() - self.start >= self.LINE_EVERY and self._shown != self.done:
            self._last = -self.LINE_EVERY  # the closing line of a long run
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
        if self.lines:
            now = time.perf_counter()
            if now - max(self._last, self.start) >= self.LINE_EVERY or self._last < 0:
                self._last, self._shown = now, self.done
                fail = f", {self.failures} failed" if self.failures else ""
                self.stream.write(f"{self.label}: {self.done}/{self.total}{fail} ({now - self.start:.0f} s)\n")
                self.stream.flush()
            return
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
