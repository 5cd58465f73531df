"""Console side of training: DFL's status line, in-place printing and non-blocking keys."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import select
import sys
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TextIO

import colorama

from dfl.training.events import Command
from dfl.ui.window import char_to_command

if sys.platform == "win32":
    import msvcrt
else:
    import termios
    import tty

SECONDS_FIELD_FROM_MS = 10_000.0  # the time field switches from [0312ms] to [12.34s] at 10 s
WAIT_SHOWN_FROM = 0.10  # share of the step time spent waiting for samples
WAIT_SMOOTHING = 0.2  # weight of the newest step in the smoothed wait share
PLAIN_STATUS_INTERVAL_S = 10.0  # without a terminal, a status line at most this often
READ_CHUNK_BYTES = 1024
ESC = "\x1b"

Clock = dt.datetime | dt.time | time.struct_time | tuple[int, int, int]


def _hms(now: Clock) -> tuple[int, int, int]:
    if isinstance(now, dt.datetime | dt.time):
        return now.hour, now.minute, now.second
    if isinstance(now, time.struct_time):
        return now.tm_hour, now.tm_min, now.tm_sec
    hour, minute, second = now
    return int(hour), int(minute), int(second)


def time_field(ms: float) -> str:
    """`[0312ms]` below 10 s, else the seconds with 4 decimals cut to 5 characters: `[12.34s]`."""
    if ms < SECONDS_FIELD_FROM_MS:
        return f"[{int(ms):04d}ms]"
    return f"[{f'{ms / 1000.0:0.4f}'[:5]}s]"


def status_line(
    now: Clock, iteration: int, ms: float, losses: Sequence[float], wait_share: float = 0.0
) -> str:
    """DFL's status line, e.g. `[14:03:22][#012345][0312ms][0.2345][0.3456]`, plus
    `[wait 23%]` when more than WAIT_SHOWN_FROM of the time goes to waiting for samples."""
    hour, minute, second = _hms(now)
    loss_fields = "".join(f"[{float(loss):.4f}]" for loss in losses)
    wait = f"[wait {wait_share:.0%}]" if wait_share > WAIT_SHOWN_FROM else ""
    clock = f"[{hour:02d}:{minute:02d}:{second:02d}]"
    return f"{clock}[#{iteration:06d}]{time_field(ms)}{loss_fields}{wait}"


def commands_from_text(text: str) -> list[Command]:
    """Commands of typed characters, skipping terminal escape sequences (arrows, F-keys)."""
    commands = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == ESC:
            i = _skip_escape(text, i)
            continue
        command = char_to_command(char)
        if command is not None:
            commands.append(command)
        i += 1
    return commands


def _skip_escape(text: str, i: int) -> int:
    """Index after the escape sequence at text[i] (CSI `ESC [ ... final`, SS3 `ESC O x`)."""
    if i + 1 >= len(text):
        return i + 1
    kind = text[i + 1]
    if kind == "[":
        j = i + 2
        while j < len(text) and not ("\x40" <= text[j] <= "\x7e"):
            j += 1
        return j + 1
    if kind == "O":
        return i + 3
    return i + 2


class ConsoleKeys:
    """Single keys typed in the console while training, read without blocking.

    Use as a context manager: on POSIX terminals it switches stdin to cbreak without echo (Ctrl+C
    still raises KeyboardInterrupt) and restores the saved mode on exit, also after exceptions.
    Windows reads msvcrt. When stdin is not a terminal nothing is read.
    """

    def __init__(self, stdin: TextIO | None = None) -> None:
        self._stdin = stdin if stdin is not None else sys.stdin
        self._fd: int | None = None
        self._eof = False
        self._saved_mode: list | None = None
        self._windows = False
        self.active = False

    def __enter__(self) -> ConsoleKeys:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Begin reading keys if stdin is a terminal (and, on POSIX, we are in its foreground)."""
        if self.active:
            return
        try:
            if self._stdin is None or not self._stdin.isatty():
                return
            fd = self._stdin.fileno()
        except (AttributeError, OSError, ValueError):
            return
        if sys.platform == "win32":
            self._windows = self.active = True
            return
        try:
            if os.tcgetpgrp(fd) != os.getpgrp():
                return  # a background job: touching the terminal would stop us (SIGTTOU/SIGTTIN)
            mode = termios.tcgetattr(fd)
        except (OSError, termios.error):
            return
        self._saved_mode = [list(x) if isinstance(x, list) else x for x in mode]
        mode[tty.LFLAG] &= ~(termios.ICANON | termios.ECHO)  # cbreak: ISIG stays, Ctrl+C works
        mode[tty.CC][termios.VMIN] = 1
        mode[tty.CC][termios.VTIME] = 0
        termios.tcsetattr(fd, termios.TCSANOW, mode)
        self._fd = fd
        self._eof = False
        self.active = True

    def stop(self) -> None:
        """Restore the terminal mode saved by start()."""
        if self._fd is not None and self._saved_mode is not None:
            with contextlib.suppress(termios.error):  # the terminal may be gone
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved_mode)
        self._fd = None
        self._saved_mode = None
        self._windows = False
        self.active = False

    def read_text(self) -> str:
        """Everything typed since the last call, without waiting."""
        if self._windows:
            return _read_windows_console()
        if self._fd is None or self._eof:
            return ""
        chunks = []
        while select.select([self._fd], [], [], 0)[0]:
            data = os.read(self._fd, READ_CHUNK_BYTES)
            if not data:  # end of input: stop reading
                self._eof = True
                break
            chunks.append(data)
        return b"".join(chunks).decode("utf-8", errors="replace")

    def poll(self) -> list[Command]:
        """Commands of the keys typed since the last poll."""
        return commands_from_text(self.read_text())

    def discard_pending(self) -> None:
        """Drop keys typed ahead (e.g. Enter pressed once too often at the start-up prompts)."""
        self.read_text()


def _read_windows_console() -> str:
    chars = []
    while msvcrt.kbhit():
        char = msvcrt.getwch()
        if char in ("\x00", "\xe0"):  # a special key: its code follows, never a command
            msvcrt.getwch()
            continue
        chars.append(char)
    return "".join(chars)


class StatusPrinter:
    """Prints the status line in place, permanent save lines and messages that keep it intact.

    On a terminal the line is rewritten with '\\r'; otherwise (a log file, a pipe) status lines
    are printed whole, at most one per `plain_interval_s`. Colours only on a terminal.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        plain_interval_s: float = PLAIN_STATUS_INTERVAL_S,
        now: Callable[[], Clock] = dt.datetime.now,
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False
        if self.tty:
            colorama.just_fix_windows_console()
        self.plain_interval_s = plain_interval_s
        self._now = now
        self._shown = ""  # the line standing in place (terminal only)
        self._last_ms = 0.0
        self._wait_share = 0.0
        self._last_plain = -float("inf")

    def _paint(self, text: str, colour: str) -> str:
        return f"{colour}{text}{colorama.Style.RESET_ALL}" if self.tty and colour else text

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _clear(self) -> str:
        return "\r" + " " * len(self._shown) + "\r" if self._shown else ""

    def show(self, line: str) -> None:
        """Put `line` in place of the current status line (terminal), or print it (throttled)."""
        if self.tty:
            padding = " " * max(0, len(self._shown) - len(line))
            self._write("\r" + line + padding + "\b" * len(padding))
            self._shown = line
            return
        now = time.monotonic()
        if now - self._last_plain >= self.plain_interval_s:
            self._last_plain = now
            self._write(line + "\n")

    def step(
        self, iteration: int, ms: float, losses: Sequence[float], wait_ms: float = 0.0
    ) -> None:
        """The status line of one training step (`wait_ms` of `ms` went to waiting for samples)."""
        self._last_ms = ms
        share = wait_ms / ms if ms > 0 else 0.0
        # smoothed, so one slow batch does not make the field flicker
        self._wait_share += WAIT_SMOOTHING * (share - self._wait_share)
        self.show(status_line(self._now(), iteration, ms, losses, self._wait_share))

    def saved(self, iteration: int, mean_losses: Sequence[float]) -> None:
        """A permanent line after a save: the mean losses since the previous save."""
        line = status_line(self._now(), iteration, self._last_ms, mean_losses)
        self._write(self._clear() + self._paint(line, colorama.Fore.GREEN) + "\n")
        self._shown = ""

    def transient(self, text: str) -> None:
        """A short note in place of the status line (`Saving....`); the next step replaces it."""
        if self.tty:
            self.show(text)
        else:
            self._write(text + "\n")

    def message(self, text: str, colour: str = "") -> None:
        """A permanent message above the status line, which is then drawn again."""
        shown = self._shown
        self._write(self._clear() + self._paint(text, colour) + "\n")
        self._shown = ""
        if shown:
            self.show(shown)

    def warning(self, text: str) -> None:
        self.message(text, colorama.Fore.YELLOW)

    def error(self, text: str) -> None:
        self.message(text, colorama.Fore.RED)

    def finish(self) -> None:
        """End the in-place line so later output starts on a fresh line."""
        if self._shown:
            self._write("\n")
            self._shown = ""
