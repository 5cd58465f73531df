"""`dfl merge --interactive` in a real window under Xvfb, keys sent with xdotool: Tab leaves the
help screen, 3 picks seamless, Shift+W erodes by 5, `.` moves on, `` ` `` picks original, `>`
merges the rest, Esc saves the session; the merged PNGs follow each frame's mode. Slow: a re-run
resumes at the frame where Esc stopped."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests import xvfb
from tests.e2e import DFL, dfl_env
from tests.merge_models import save_tiny_model

pytestmark = pytest.mark.ui

WINDOW_TITLE = "Merger"
START_TIMEOUT_S = 120  # imports and the model load on 2 busy cores
KEY_TIMEOUT_S = 60
FRAMES = 8
SHIFT_HOLD_S = 0.3


@pytest.fixture
def x_display():
    missing = xvfb.missing_tools("Xvfb", "xdotool")
    if missing:
        pytest.skip(f"needs {' and '.join(missing)} (apt-get install xvfb xdotool)")
    with xvfb.xvfb_display() as display:
        yield display


class _Merger:
    """The running `dfl merge` and its log."""

    def __init__(self, workspace: Path, log: Path, env: dict[str, str]) -> None:
        self.log, self.env = log, env
        args = ["merge", "--workspace", str(workspace), "--interactive", "--cpu-only"]
        self.handle = log.open("w")
        self.child = subprocess.Popen(
            [*DFL, *args], env=env, stdin=subprocess.DEVNULL, stdout=self.handle,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, pattern: str, count: int = 1, timeout: float = KEY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while len(re.findall(pattern, self.text(), re.M)) < count:
            if self.child.poll() is not None:
                raise AssertionError(f"merge ended ({self.child.returncode}):\n{self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} x{count} in:\n{self.text()[-3000:]}")
            time.sleep(0.1)

    def key(self, key: str, shift: bool = False) -> None:
        """Type a key; with Shift held as a person does (the Qt window reports the Shift press
        as a key of its own, and only the last of the keys that arrive together)."""
        window = self._window()
        if shift:
            self._xdotool("windowfocus", "--sync", window, "keydown", "shift")
            time.sleep(SHIFT_HOLD_S)
        self._xdotool("windowfocus", "--sync", window, "key", key)
        if shift:
            self._xdotool("keyup", "shift")

    def leave_help(self) -> None:
        """Tab from the help screen to the frame, and wait until the frame shows (the window
        changes size). Without that wait, a key typed next may arrive with Tab between two reads
        of the window on a busy machine, and OpenCV reports only the last of them."""
        help_size = self._size()
        self.key("Tab")
        deadline = time.monotonic() + KEY_TIMEOUT_S
        while self._size() == help_size:
            assert time.monotonic() < deadline, "Tab did not leave the help screen"
            time.sleep(0.1)

    def _size(self) -> str:
        shown = subprocess.run(
            ["xdotool", "getwindowgeometry", self._window()],
            env=self.env, capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
        found = re.search(r"Geometry: (\d+x\d+)", shown.stdout)
        assert found, shown.stdout
        return found.group(1)

    def _xdotool(self, *args: str) -> None:
        subprocess.run(["xdotool", *args], env=self.env, timeout=10, check=True)

    def _window(self) -> str:
        # no window manager under Xvfb: focus the window, then type through XTEST
        found = subprocess.run(
            ["xdotool", "search", "--sync", "--onlyvisible", "--name", f"^{WINDOW_TITLE}$"],
            env=self.env, capture_output=True, text=True, timeout=START_TIMEOUT_S, check=True,
        )  # fmt: skip
        return found.stdout.split()[-1]

    def close(self) -> None:
        if self.child.poll() is None:
            self.child.kill()
            self.child.wait()
        self.handle.close()


def test_interactive_merger_keys_frames_and_session(
    x_display: str, demo_workspace: Path, tmp_path: Path
) -> None:
    workspace = tmp_path / "workspace"
    shutil.copytree(demo_workspace, workspace)
    frames = sorted((workspace / "data_dst").glob("*.png"))[:FRAMES]
    for extra in sorted((workspace / "data_dst").glob("*.png"))[FRAMES:]:
        extra.unlink()  # fewer frames: faster (their aligned faces are reported and skipped)
    save_tiny_model(workspace / "model", "tiny")
    env = {**os.environ, **dfl_env(DISPLAY=x_display)}
    merger = _Merger(workspace, tmp_path / "merge.log", env)
    try:
        merger.wait_for(r"^MergerConfig 00001\.png:", timeout=START_TIMEOUT_S)
        merger.leave_help()  # the help screen comes first, as in DFL
        merger.key("3")
        merger.wait_for(r"^Mode: seamless$")
        merger.key("w", shift=True)  # Shift: a step of 5
        merger.wait_for(r"^erode_mask_modifier: 5$")
        merger.key("period")
        merger.wait_for(r"^MergerConfig 00002\.png:")
        merger.key("grave")
        merger.wait_for(r"^Mode: original$")
        merger.key("greater")
        merger.wait_for(rf"^Merged frames: {FRAMES}/{FRAMES}\.$")
        merger.key("Escape")
        assert merger.child.wait(timeout=KEY_TIMEOUT_S) == 0, merger.text()
    finally:
        merger.close()
    output = merger.text()
    assert "Session is saved to tiny_Quick96/merger_session.json" in output

    names = [f.name for f in frames]
    merged = workspace / "data_dst" / "merged"
    assert sorted(p.name for p in merged.glob("*.png")) == names
    assert sorted(p.name for p in (workspace / "data_dst" / "merged_mask").glob("*.png")) == names
    first = cv2.imread(str(merged / names[0]))
    assert not np.array_equal(first, cv2.imread(str(frames[0])))  # seamless: the face changed
    for frame in frames[1:]:  # original, carried forward by `.` and `>`: the frame unchanged
        assert np.array_equal(cv2.imread(str(merged / frame.name)), cv2.imread(str(frame)))

    session = json.loads((workspace / "model" / "tiny_Quick96" / "merger_session.json").read_text())
    saved = session["interactive"]["frames"]
    assert saved[names[0]]["settings"]["mode"] == "seamless"
    assert saved[names[0]]["settings"]["erode_mask_modifier"] == 5
    assert {saved[n]["settings"]["mode"] for n in names[1:]} == {"original"}
    assert all(saved[n]["merged"] for n in names)


@pytest.mark.slow
def test_a_rerun_resumes_at_the_frame_where_esc_stopped(
    x_display: str, demo_workspace: Path, tmp_path: Path
) -> None:
    workspace = tmp_path / "workspace"
    shutil.copytree(demo_workspace, workspace)
    save_tiny_model(workspace / "model", "tiny")
    env = {**os.environ, **dfl_env(DISPLAY=x_display)}
    first = _Merger(workspace, tmp_path / "first.log", env)
    try:
        first.wait_for(r"^MergerConfig 00001\.png:", timeout=START_TIMEOUT_S)
        first.leave_help()
        first.key("3")
        first.wait_for(r"^Mode: seamless$")
        first.key("period")
        first.wait_for(r"^MergerConfig 00002\.png:")
        first.key("Escape")
        assert first.child.wait(timeout=KEY_TIMEOUT_S) == 0, first.text()
    finally:
        first.close()
    again = _Merger(workspace, tmp_path / "again.log", env)
    try:  # "Use saved session?" takes its default (y): input is closed
        again.wait_for(r"^Using saved session from tiny_Quick96/merger_session\.json$", 1,
                       START_TIMEOUT_S)  # fmt: skip
        again.wait_for(r"continuing at 00002\.png\.$")
        again.wait_for(r"^MergerConfig 00002\.png:\nMode: seamless$")
        again.key("Escape")
        assert again.child.wait(timeout=KEY_TIMEOUT_S) == 0, again.text()
    finally:
        again.close()
    assert "MergerConfig 00001.png" not in again.text()  # frame 1 was merged: not again
