"""Preview window: key mapping, display probe, a real OpenCV window under Xvfb fed by xdotool."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from dfl.training.events import Command
from dfl.ui.window import WINDOW_TITLE, display_available, key_to_command

CHILD_TIMEOUT_S = 20.0


def _load_xvfb():
    path = Path(__file__).with_name("xvfb.py")
    spec = importlib.util.spec_from_file_location("dfl_tests_xvfb", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


xvfb = _load_xvfb()


@pytest.mark.parametrize(
    ("key", "command"),
    [
        (13, Command.SAVE_AND_EXIT),
        (10, Command.SAVE_AND_EXIT),
        (0xFF0D, Command.SAVE_AND_EXIT),  # X11 Return keysym
        (0xFF8D, Command.SAVE_AND_EXIT),  # keypad Enter
        (ord("s"), Command.SAVE),
        (ord("S"), Command.SAVE),
        (0x10000 | ord("S"), Command.SAVE),  # GTK: Shift in the state bits
        (0x100000 | ord("s"), Command.SAVE),  # GTK: NumLock on
        (ord("b"), Command.BACKUP),
        (ord("B"), Command.BACKUP),
        (ord("p"), Command.REFRESH_PREVIEW),
        (ord("P"), Command.REFRESH_PREVIEW),
        (ord(" "), Command.NEXT_PAGE),
        (ord("l"), Command.LOSS_RANGE),
        (ord("L"), Command.LOSS_RANGE),
        (-1, None),
        (27, None),  # Esc
        (ord("q"), None),
        (0xFF53, None),  # Right arrow keysym: low byte is 'S', must not save
        (0xFF51, None),  # Left arrow: low byte 'Q'
        (0xFFE1, None),  # Shift alone
        (0x270000, None),  # Windows: Right arrow
        (63235, None),  # macOS: Right arrow
    ],
)
def test_key_to_command(key, command):
    assert key_to_command(key) is command


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY rule is for Linux")
def test_no_display_without_display_variable(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    ok, reason = display_available()
    assert not ok
    assert reason == "no display (DISPLAY is not set): preview window off, console keys only"


@pytest.mark.ui
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 only")
def test_no_display_when_the_server_is_absent(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":4071")  # nothing listens there: the probe child aborts, not us
    ok, reason = display_available(timeout_s=10)
    assert not ok
    assert ":4071" in reason and reason.endswith("console keys only")


@pytest.fixture(scope="module")
def x_display() -> Iterator[str]:
    missing = xvfb.missing_tools("Xvfb", "xdotool")
    if missing:
        pytest.skip(f"needs {' and '.join(missing)} (apt-get install xvfb xdotool)")
    with xvfb.xvfb_display() as display:
        yield display


CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from dfl.training.events import Command
    from dfl.ui.window import PreviewWindow

    window = PreviewWindow()
    window.show(np.full((120, 200, 3), 90, np.uint8))
    window.poll(50)
    print("READY", flush=True)
    deadline = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < deadline:
        for command in window.poll():
            print(command.name, flush=True)
            if command is Command.SAVE_AND_EXIT:
                deadline = 0
        if window.closed_by_user():
            print("CLOSED_BY_USER", flush=True)
            break
    window.close()
    print("END", flush=True)
    """
)


def _start_window(tmp_path: Path, display: str) -> tuple[subprocess.Popen, dict[str, str], int]:
    script = tmp_path / "window_child.py"
    script.write_text(CHILD)
    env = dict(os.environ, DISPLAY=display)
    child = subprocess.Popen(
        [sys.executable, str(script), str(CHILD_TIMEOUT_S)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "READY", child.communicate(timeout=5)
    found = subprocess.run(
        ["xdotool", "search", "--sync", "--onlyvisible", "--name", f"^{WINDOW_TITLE}$"],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return child, env, int(found.stdout.split()[0])


def _finish(child: subprocess.Popen) -> list[str]:
    try:
        out, err = child.communicate(timeout=CHILD_TIMEOUT_S)
    finally:
        child.kill()
    assert child.returncode == 0, err[-2000:]
    return out.split()


@pytest.mark.ui
def test_display_available_under_xvfb(x_display, monkeypatch):
    monkeypatch.setenv("DISPLAY", x_display)
    assert display_available() == (True, "preview window on")


@pytest.mark.ui
def test_window_keys_from_xdotool(x_display, tmp_path):
    child, env, window_id = _start_window(tmp_path, x_display)
    geometry = subprocess.run(
        ["xdotool", "getwindowgeometry", str(window_id)],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert "Geometry: 200x120" in geometry.stdout  # exactly the image: no toolbar or status bar
    # no window manager under Xvfb: focus the window directly, then type through XTEST
    keys = ["s", "S", "b", "p", "space", "l", "Right", "Escape", "Return"]
    subprocess.run(
        ["xdotool", "windowfocus", "--sync", str(window_id), "key", "--delay", "50", *keys],
        env=env,
        timeout=10,
        check=True,
    )
    assert _finish(child) == [
        "SAVE",
        "SAVE",
        "BACKUP",
        "REFRESH_PREVIEW",
        "NEXT_PAGE",
        "LOSS_RANGE",
        "SAVE_AND_EXIT",
        "END",
    ]


@pytest.mark.ui
def test_window_closed_with_its_x_button(x_display, tmp_path):
    child, _, window_id = _start_window(tmp_path, x_display)
    xvfb.close_like_the_x_button(x_display, window_id)
    assert _finish(child) == ["CLOSED_BY_USER", "END"]
