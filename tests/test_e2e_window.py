"""End to end with the real preview window under Xvfb: S, B and Enter sent by xdotool, while a
saved tiny SAEHD trains on (the window and its keys do not depend on the model)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import xvfb
from tests.merge_models import save_tiny_model

pytestmark = pytest.mark.ui

DFL = [sys.executable, "-m", "dfl.cli"]
WINDOW_TITLE = "Training preview"
FIRST_STEP_TIMEOUT_S = 240
ACTION_TIMEOUT_S = 90


@pytest.fixture
def x_display():
    missing = xvfb.missing_tools("Xvfb", "xdotool")
    if missing:
        pytest.skip(f"needs {' and '.join(missing)} (apt-get install xvfb xdotool)")
    with xvfb.xvfb_display() as display:
        yield display


def _state(model: Path) -> dict:
    pointer = (model / "current").read_text().strip()
    return json.loads((model / "checkpoints" / pointer / "state.json").read_text())


def _wait(condition, timeout: float, what: str, child: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except OSError:
            pass
        if child.poll() is not None:
            raise AssertionError(f"trainer exited early ({child.returncode}) waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def _window_id(env: dict[str, str], timeout: float) -> int:
    found = subprocess.run(
        ["xdotool", "search", "--sync", "--onlyvisible", "--name", f"^{WINDOW_TITLE}$"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return int(found.stdout.split()[-1])


def _key(env: dict[str, str], key: str) -> None:
    # Look the window up again each time: it is re-created when the preview changes size.
    # No window manager under Xvfb: focus the window directly, then type through XTEST.
    subprocess.run(
        ["xdotool", "windowfocus", "--sync", str(_window_id(env, 10)), "key", key],
        env=env,
        timeout=10,
        check=True,
    )


def test_preview_window_keys_save_backup_exit(x_display: str, tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    subprocess.run(
        [*DFL, "demo", "--workspace", str(workspace), "--count", "8"],
        check=True,
        capture_output=True,
    )
    model = save_tiny_model(workspace / "model", "win", "SAEHD")
    env = {**os.environ, "DISPLAY": x_display, "NO_COLOR": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    log = (tmp_path / "train.log").open("w")
    child = subprocess.Popen(
        [*DFL, "train", "--workspace", str(workspace), "--model", "SAEHD", "--name", "win"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _window_id(env, FIRST_STEP_TIMEOUT_S)
        _wait(lambda: (model / "current").exists(), FIRST_STEP_TIMEOUT_S, "the first save", child)

        first = _state(model)["iteration"]
        pointer = (model / "current").read_text()
        _key(env, "s")
        _wait(lambda: (model / "current").read_text() != pointer, ACTION_TIMEOUT_S, "S", child)

        _key(env, "b")
        _wait(
            lambda: (model / "autobackups" / "01" / "manifest.json").exists(),
            ACTION_TIMEOUT_S,
            "B to back up",
            child,
        )

        _key(env, "Return")
        assert child.wait(timeout=ACTION_TIMEOUT_S) == 0
    finally:
        if child.poll() is None:
            child.kill()
        log.close()
    output = (tmp_path / "train.log").read_text()
    assert "Done." in output, output[-3000:]
    assert "console keys only" not in output
    # Enter saved the final state: the saved iteration is the last one trained.
    trained = [int(n) for n in re.findall(r"\[#(\d{6})\]", output)]
    assert _state(model)["iteration"] == max(trained) >= first
    shutil.rmtree(workspace)
