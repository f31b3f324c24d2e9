"""Progress of long work, one line: a bar with rate and ETA on a terminal,
plain lines every `plain_every` seconds when the output is piped.

Used by data preparation (videos), k-means feature collection (videos),
each training stage (updates) and evaluation (videos). It writes to stderr,
so a program's results on stdout stay clean.
"""

import math
import sys
import time


def _clock(seconds):
    if not math.isfinite(seconds):
        return "--:--"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{seconds:02d}"
    return f"{minutes:02d}:{seconds:02d}"


class Progress:
    """Counts done units out of `total` and shows it (see the module).

    Args:
        total: the units to do (0 or None: unknown, no ETA).
        what: a label in front of the bar, e.g. 'rgb stage 1'.
        unit: the units' name ('videos', 'updates').
        stream: where to write (default stderr).
        plain_every: seconds between lines off a terminal.
    """

    def __init__(self, total, *, what="", unit="videos", stream=None, plain_every=30.0):
        self._total, self._what, self._unit = total or 0, what, unit
        self._stream = stream or sys.stderr
        self._tty = getattr(self._stream, "isatty", lambda: False)()
        self._every = 0.5 if self._tty else plain_every
        self._start = self._last = time.monotonic()
        self._done = 0
        self.suffix = ""  # shown after the counts, e.g. the last loss

    def update(self, n=1, *, done=None):
        """Adds `n` done units (or sets the count to `done`)."""
        self._done = self._done + n if done is None else done
        now = time.monotonic()
        finished = bool(self._total) and self._done >= self._total
        if not finished and now - self._last < self._every:
            return
        self._last = now
        self._write(now, finished)

    def _write(self, now, finished):
        elapsed = now - self._start
        rate = self._done / elapsed if elapsed > 0 else 0.0
        remaining = (self._total - self._done) / rate if rate > 0 else math.nan
        width = 30
        filled = int(width * self._done / self._total) if self._total else 0
        total = f"/{self._total}" if self._total else ""
        line = (
            f"{self._what + ' ' if self._what else ''}"
            f"[{'#' * filled}{'.' * (width - filled)}] {self._done}{total} "
            f"{self._unit} {rate * 60:.1f}/min elapsed {_clock(elapsed)} "
            f"ETA {_clock(remaining if self._total else math.nan)}"
            f"{' ' + self.suffix if self.suffix else ''}"
        )
        end = "\n" if finished or not self._tty else ""
        self._stream.write(("\r\033[K" if self._tty else "") + line + end)
        self._stream.flush()
