"""One progress display for every long step: a tqdm bar on a terminal, plain lines otherwise.

A bar redrawn with carriage returns fills a log file or pipe with hundreds of overwritten
updates; written to one, progress is a line at each tenth of the work and at most every
PLAIN_EVERY_S seconds in between, then a last line when the work is done. Work that ends within
PLAIN_QUIET_S seconds (saving a small model) writes only that last line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm

PLAIN_STEPS = 10  # plain output: one line per tenth of the work
PLAIN_EVERY_S = 30.0  # ... and one at least this often while a tenth takes longer
PLAIN_QUIET_S = 2.0  # nothing but the last line for work this short


class Progress:
    """`update(done, total)` as work goes on, `close()` at the end (or use `with`)."""

    def __init__(
        self,
        desc: str,
        unit: str,
        *,
        stream: TextIO | None = None,
        leave: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.desc = desc
        self.unit = unit
        self.stream = stream or sys.stderr
        self._bar: tqdm | None = None
        if self.stream.isatty():
            self._bar = tqdm(
                desc=desc, unit=unit, leave=leave, dynamic_ncols=True, file=self.stream
            )
        self._done = 0
        self._total = 0
        self._printed_step = -1  # the last tenth a plain line was written for
        self._clock = clock
        self._started = self._printed_at = clock()
        self._printed_done = -1

    def update(self, done: int, total: int) -> None:
        self._done, self._total = done, total
        if self._bar is not None:
            self._bar.total = total
            self._bar.n = done
            self._bar.refresh()
            return
        now = self._clock()
        if now - self._started < PLAIN_QUIET_S:
            return  # short work: only close() writes a line
        step = done * PLAIN_STEPS // total if total > 0 else 0
        overdue = now - self._printed_at >= PLAIN_EVERY_S
        if step > self._printed_step or (overdue and done != self._printed_done):
            self._line(step)

    def _line(self, step: int) -> None:
        share = f" ({100 * self._done // self._total}%)" if self._total > 0 else ""
        total = f"/{self._total}" if self._total > 0 else ""
        print(f"{self.desc}: {self._done}{total} {self.unit}{share}", file=self.stream, flush=True)
        self._printed_step = step
        self._printed_at = self._clock()
        self._printed_done = self._done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._done != self._printed_done:  # the last state was not written yet
            self._line(PLAIN_STEPS)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
