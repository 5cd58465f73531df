"""Shared helpers for the end-to-end tests that run the real `dfl` command (in a subprocess or a
tmux terminal): its environment, reading a saved model's state, waiting, answering prompts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from tests.terminal import TmuxSession

DFL = [sys.executable, "-m", "dfl.cli"]
DEMO_FACES = 12
PROMPT_TIMEOUT_S = 60
FIRST_STEP_TIMEOUT_S = 240  # imports, network build and the first compiled step on 2 cores
STEP_TIMEOUT_S = 90
EXIT_TIMEOUT_S = 120
POLL_S = 0.25


def dfl_env(**extra: str) -> dict[str, str]:
    """A clean environment for the command: no display, no colour, unbuffered output."""
    env = {
        "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "NO_COLOR": "1",
        "PYTHONUNBUFFERED": "1",
        "DISPLAY": "",
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
    }
    env.update(extra)
    return env


def run_dfl(args: list[str], cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`dfl <args>` with piped input; waits for it to end."""
    return subprocess.run(
        [*DFL, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=FIRST_STEP_TIMEOUT_S + EXIT_TIMEOUT_S,
        env={**os.environ, **dfl_env()},
    )


def make_demo_workspace(root: Path) -> Path:
    subprocess.run(
        [*DFL, "demo", "--workspace", str(root), "--count", str(DEMO_FACES)],
        check=True,
        capture_output=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    return root


def current_state(model_folder: Path) -> dict:
    """The state.json of a model folder's current checkpoint."""
    pointer = (model_folder / "current").read_text().strip()
    return json.loads((model_folder / "checkpoints" / pointer / "state.json").read_text())


def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except OSError:  # a checkpoint folder replaced while we read it
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(POLL_S)


def iteration_on_screen(session: TmuxSession) -> int:
    found = re.findall(r"\[#(\d{6})\]", session.screen())
    return int(found[-1]) if found else 0


def answer_prompts(
    session: TmuxSession, answers: dict[str, str], until: str, labels: Iterable[str]
) -> list[str]:
    """Answer every prompt (by its label, one of `labels`) until `until` shows; returns the
    labels asked. A label without an answer takes Enter (the default)."""
    alternatives = "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True))
    pattern = rf"(?:\] (?P<label>{alternatives})(?: \([^\n]*\))? :[ \t]*$)|(?P<done>{until})"
    asked: list[str] = []
    after = 0
    while True:
        match = session.wait_for(pattern, PROMPT_TIMEOUT_S + FIRST_STEP_TIMEOUT_S, after)
        after += match.end()
        if match.group("done"):
            return asked
        label = match.group("label")
        asked.append(label)
        answer = answers.get(label)
        if answer:
            session.type(answer)
        session.send("Enter")
