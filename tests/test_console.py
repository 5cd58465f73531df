"""Console: DFL's status line, in-place printing, and single keys read through a real pty."""

from __future__ import annotations

import datetime as dt
import io
import os
import select
import sys
import textwrap
import time

import pytest

from dfl.training.events import Command
from dfl.ui.console import ConsoleKeys, StatusPrinter, commands_from_text, status_line

NOON = dt.datetime(2024, 5, 1, 14, 3, 22)
PTY_TIMEOUT_S = 15.0


@pytest.mark.parametrize(
    ("iteration", "ms", "losses", "line"),
    [
        (12345, 312.7, (0.23451, 0.34559), "[14:03:22][#012345][0312ms][0.2345][0.3456]"),
        (1, 5.0, (1.0, 2.0), "[14:03:22][#000001][0005ms][1.0000][2.0000]"),
        (1234567, 9999.9, (0.5,), "[14:03:22][#1234567][9999ms][0.5000]"),
        (7, 10_000.0, (0.1, 0.2), "[14:03:22][#000007][10.00s][0.1000][0.2000]"),
        (7, 12_345.6, (0.1, 0.2), "[14:03:22][#000007][12.34s][0.1000][0.2000]"),
        (7, 123_456.0, (0.1, 0.2), "[14:03:22][#000007][123.4s][0.1000][0.2000]"),
        (0, 0.0, (), "[14:03:22][#000000][0000ms]"),
    ],
)
def test_status_line(iteration, ms, losses, line):
    assert status_line(NOON, iteration, ms, losses) == line


def test_status_line_clock_forms():
    expected = "[09:05:01][#000010][0100ms][0.1000]"
    assert status_line((9, 5, 1), 10, 100, [0.1]) == expected
    assert status_line(dt.time(9, 5, 1), 10, 100, [0.1]) == expected
    assert status_line(time.struct_time((2024, 1, 1, 9, 5, 1, 0, 1, 0)), 10, 100, [0.1]) == expected


def test_commands_from_text_skips_escape_sequences():
    assert commands_from_text("sSbBpP lL\n\rxq") == [
        Command.SAVE, Command.SAVE, Command.BACKUP, Command.BACKUP,
        Command.REFRESH_PREVIEW, Command.REFRESH_PREVIEW, Command.NEXT_PAGE,
        Command.LOSS_RANGE, Command.LOSS_RANGE, Command.SAVE_AND_EXIT, Command.SAVE_AND_EXIT,
    ]  # fmt: skip
    # arrows (ESC [ C), F1 (ESC O P), Ctrl+Right (ESC [ 1 ; 5 C), Alt+s (ESC s): no commands
    assert commands_from_text("\x1b[C\x1bOP\x1b[1;5C\x1bs\x1b") == []
    assert commands_from_text("\x1b[Bs") == [Command.SAVE]


def test_console_keys_without_a_terminal_read_nothing():
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"s\n")
    with os.fdopen(read_fd) as pipe, ConsoleKeys(pipe) as keys:
        assert not keys.active
        assert keys.poll() == []
    os.close(write_fd)
    with ConsoleKeys(io.StringIO("s")) as keys:
        assert keys.poll() == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX terminal")
def test_console_keys_leave_a_background_job_alone(monkeypatch):
    termios = pytest.importorskip("termios")
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "r", closefd=False) as terminal:
            before = termios.tcgetattr(slave)
            monkeypatch.setattr(os, "tcgetpgrp", lambda fd: os.getpgrp() + 1)
            with ConsoleKeys(terminal) as keys:
                assert not keys.active  # changing the mode would stop a background job
                assert termios.tcgetattr(slave) == before
                os.write(master, b"s")
                assert keys.poll() == []
    finally:
        os.close(slave)
        os.close(master)


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True

    def take(self) -> str:
        """What was written since the last take."""
        text = self.getvalue()
        self.seek(0)
        self.truncate()
        return text


def test_status_printer_on_a_terminal():
    out = TtyStream()
    printer = StatusPrinter(out, now=lambda: NOON)
    printer.step(1234567, 312, (0.5, 0.25))
    long_line = "[14:03:22][#1234567][0312ms][0.5000][0.2500]"
    assert out.take() == "\r" + long_line
    printer.step(1, 312, (0.5, 0.25))
    short_line = "[14:03:22][#000001][0312ms][0.5000][0.2500]"
    pad = len(long_line) - len(short_line)
    assert out.take() == "\r" + short_line + " " * pad + "\b" * pad  # erases the longer line
    printer.message("Saving done.")
    clear = "\r" + " " * len(short_line) + "\r"
    assert out.take() == clear + "Saving done.\n" + "\r" + short_line  # status drawn again
    printer.saved(2, (0.4, 0.2))
    text = out.take()
    assert text.startswith(clear) and text.endswith("\n")
    assert "[14:03:22][#000002][0312ms][0.4000][0.2000]" in text
    assert "\x1b[" in text  # coloured on a terminal
    printer.step(3, 100, (0.4, 0.2))
    assert out.take().startswith("\r[14:03:22][#000003]")  # a fresh line after the save


def test_status_printer_without_a_terminal():
    out = io.StringIO()
    printer = StatusPrinter(out, plain_interval_s=3600, now=lambda: NOON)
    printer.step(1, 312, (0.5, 0.25))
    printer.step(2, 312, (0.5, 0.25))  # throttled
    printer.saved(2, (0.5, 0.25))
    printer.error("disk full")
    assert out.getvalue() == (
        "[14:03:22][#000001][0312ms][0.5000][0.2500]\n"
        "[14:03:22][#000002][0312ms][0.5000][0.2500]\n"
        "disk full\n"
    )
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


CHILD = textwrap.dedent(
    """
    import sys, termios, time
    from dfl.training.events import Command
    from dfl.ui.console import ConsoleKeys

    fd = sys.stdin.fileno()
    before = termios.tcgetattr(fd)
    try:
        with ConsoleKeys() as keys:
            during = termios.tcgetattr(fd)
            lflag = during[3]
            print("MODE", not lflag & termios.ECHO, not lflag & termios.ICANON,
                  bool(lflag & termios.ISIG), flush=True)
            print("READY", flush=True)
            deadline = time.monotonic() + float(sys.argv[1])
            while time.monotonic() < deadline:
                for command in keys.poll():
                    print("CMD", command.name, flush=True)
                    if command is Command.SAVE_AND_EXIT:
                        deadline = 0
                time.sleep(0.01)
    except KeyboardInterrupt:
        print("INTERRUPTED", flush=True)
    print("RESTORED", termios.tcgetattr(fd) == before, flush=True)
    """
)


def _read_until(fd: int, marker: bytes | None, timeout: float = PTY_TIMEOUT_S) -> bytes:
    """Read the pty until `marker` appears, or with None until the child closes it."""
    data = b""
    deadline = time.monotonic() + timeout
    while marker is None or marker not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"timed out waiting for {marker!r}; got {data!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the pty
            chunk = b""
        if not chunk:
            if marker is None:
                break
            raise AssertionError(f"child ended before {marker!r}; got {data!r}")
        data += chunk
    return data


def _run_in_pty(tmp_path, typed: bytes) -> str:
    pty = pytest.importorskip("pty")
    script = tmp_path / "keys_child.py"
    script.write_text(CHILD)
    pid, master = pty.fork()
    if pid == 0:  # child: stdin/stdout are the pty
        try:
            os.execv(sys.executable, [sys.executable, str(script), str(PTY_TIMEOUT_S)])
        finally:
            os._exit(127)
    try:
        output = _read_until(master, b"READY")
        os.write(master, typed)
        output += _read_until(master, None)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(master)
    assert os.waitstatus_to_exitcode(status) == 0, output
    return output.decode(errors="replace").replace("\r\n", "\n")


@pytest.mark.ui
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX terminal")
def test_console_keys_through_a_pty(tmp_path):
    output = _run_in_pty(tmp_path, b"sS\x1bOPb p\x1b[Cl\r")
    assert "MODE True True True" in output  # no echo, no line buffering, Ctrl+C still a signal
    commands = [line.split()[1] for line in output.splitlines() if line.startswith("CMD")]
    assert commands == [
        "SAVE", "SAVE", "BACKUP", "NEXT_PAGE", "REFRESH_PREVIEW", "LOSS_RANGE", "SAVE_AND_EXIT",
    ]  # fmt: skip
    assert "RESTORED True" in output
    assert "sS" not in output  # not echoed


@pytest.mark.ui
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX terminal")
def test_console_keys_keep_ctrl_c(tmp_path):
    output = _run_in_pty(tmp_path, b"\x03")
    assert "INTERRUPTED" in output
    assert "RESTORED True" in output


def test_status_line_shows_data_wait_above_ten_percent():
    base = "[14:03:22][#000010][0100ms][0.1000]"
    assert status_line(NOON, 10, 100, [0.1], wait_share=0.10) == base
    assert status_line(NOON, 10, 100, [0.1], wait_share=0.234) == base + "[wait 23%]"


def test_status_printer_smooths_the_wait_share():
    out = io.StringIO()
    printer = StatusPrinter(out, plain_interval_s=0, now=lambda: NOON)
    printer.step(1, 100, (0.1,), wait_ms=90)  # one slow batch: smoothed to 18%
    assert out.getvalue().splitlines()[-1].endswith("[wait 18%]")
    for i in range(2, 30):
        printer.step(i, 100, (0.1,), wait_ms=0)
    assert "wait" not in out.getvalue().splitlines()[-1]
