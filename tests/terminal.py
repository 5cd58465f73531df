"""Drive a real terminal for end-to-end tests: a command in a tmux pane, keys in, screen out."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
import uuid
from pathlib import Path

PANE_WIDTH = 160
PANE_HEIGHT = 50
POLL_S = 0.25
COMMAND_LIMIT_S = 900  # a command left running by an interrupted test run ends by itself
PANE_KEEP_S = 300  # the pane outlives the command so its screen can be read


def tmux_available() -> bool:
    return shutil.which("tmux") is not None


class TmuxSession:
    """One detached tmux session running `command`; the pane stays after the command exits."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.name = f"dfltest-{uuid.uuid4().hex[:8]}"
        self.log = cwd / f"{self.name}.log"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        # The exit status is printed so tests can assert it. The pane's shell traps SIGINT so a
        # command that Ctrl+C ends (by signal or with 130) still gets its "[exit N]" line. The
        # watchdog ignores SIGINT, so Ctrl+C reaches only the command, once, as from a keyboard.
        shell = (
            f"trap : INT; "
            f"(trap '' INT; sleep {COMMAND_LIMIT_S} && tmux kill-session -t {self.name}) "
            f">/dev/null 2>&1 & "
            f"cd {shlex.quote(str(cwd))} && env {exports} {shlex.join(command)}; "
            f'echo "[exit $?]"; sleep {PANE_KEEP_S}'
        )
        subprocess.run(
            [
                "tmux",
                "new-session",
                "-d",
                "-s",
                self.name,
                "-x",
                str(PANE_WIDTH),
                "-y",
                str(PANE_HEIGHT),
                "bash",
                "-c",
                shell,
            ],
            check=True,
        )
        subprocess.run(
            ["tmux", "set-option", "-t", self.name, "history-limit", "20000"], check=True
        )

    def send(self, *keys: str) -> None:
        """Send tmux key names (e.g. 'Enter', 's', 'C-c') or literal text."""
        for key in keys:
            subprocess.run(["tmux", "send-keys", "-t", self.name, key], check=True)

    def type(self, text: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text], check=True)

    def screen(self) -> str:
        out = subprocess.run(
            ["tmux", "capture-pane", "-p", "-J", "-S", "-20000", "-t", self.name],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout

    def wait_for(self, pattern: str, timeout: float, after: int = 0) -> re.Match[str]:
        """Wait until `pattern` (a regex) appears on screen past character offset `after`."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            match = re.search(pattern, text[after:], re.MULTILINE)
            if match:
                return match
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f}s waiting for {pattern!r}; "
                    f"screen:\n{text[-4000:]}"
                )
            time.sleep(POLL_S)

    def exit_code(self, timeout: float) -> int:
        match = self.wait_for(r"\[exit (\d+)\]", timeout)
        return int(match.group(1))

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)
