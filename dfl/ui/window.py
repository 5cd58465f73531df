"""The OpenCV preview window: display probe, key -> command mapping; main thread only."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np

from dfl.training.events import Command

WINDOW_TITLE = "Training preview"
KEY_POLL_MS = 10  # the UI loop also pumps events and console keys, so keep each wait short
MAX_KEYS_PER_POLL = 32  # drain at most this many queued keys per poll
PROBE_TIMEOUT_S = 5.0
# the window is exactly the image: no Qt toolbar/status bar (they add 60 px and catch Ctrl+keys)
WINDOW_FLAGS = cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL
NO_WINDOW_SUFFIX = "preview window off, console keys only"

# waitKeyEx codes: GTK puts modifier state above bit 16 (code | state << 16); Qt/GTK give X11
# keysyms for keys without an ASCII form (Return 0xFF0D, keypad Enter 0xFF8D, Right 0xFF53 ...).
KEYCODE_MASK = 0xFFFF
ENTER_KEYSYMS = (0xFF0D, 0xFF8D)
ENTER_CHARS = ("\n", "\r")

_CHAR_COMMANDS = {
    "s": Command.SAVE,
    "b": Command.BACKUP,
    "p": Command.REFRESH_PREVIEW,
    " ": Command.NEXT_PAGE,
    "l": Command.LOSS_RANGE,
}

# A child process opens and closes a tiny window: without a usable display the GUI backend
# aborts the whole process (Qt: "could not connect to display"), which must not be us.
_PROBE_SCRIPT = """
import cv2, numpy as np
name = "dfl display probe"
cv2.namedWindow(name, cv2.WINDOW_AUTOSIZE)
cv2.imshow(name, np.zeros((8, 8, 3), np.uint8))
cv2.waitKey(1)
cv2.destroyWindow(name)
cv2.waitKey(1)
print("DISPLAY_OK", flush=True)
"""


def char_to_command(char: str) -> Command | None:
    """The command of one typed character: Enter, s, b, p, space, l (either case)."""
    if char in ENTER_CHARS:
        return Command.SAVE_AND_EXIT
    return _CHAR_COMMANDS.get(char.lower())


def key_to_command(key: int) -> Command | None:
    """The command of a cv2.waitKeyEx code (or a character code); None for other keys and -1."""
    if key < 0:
        return None
    code = key & KEYCODE_MASK  # drop GTK's modifier bits (Shift, NumLock...)
    if code in ENTER_KEYSYMS:
        return Command.SAVE_AND_EXIT
    if code > 0xFF:  # arrows, F-keys...: never read their low byte as a letter
        return None
    return char_to_command(chr(code))


def _linux_display_missing() -> str | None:
    if sys.platform.startswith(("win", "cygwin", "darwin")):
        return None
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        return "DISPLAY is not set"
    return None


def _opencv_has_gui() -> bool:
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() not in ("", "NONE")
    return True  # unknown layout: let the probe decide


def display_available(timeout_s: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """Whether an OpenCV window can be opened here, and a line to tell the user.

    Quick checks first (Linux without DISPLAY/WAYLAND_DISPLAY, OpenCV built without GUI), then a
    child process opens a tiny window, since a failed cv2.imshow aborts the process (decision 4b).
    """
    missing = _linux_display_missing()
    if missing:
        return False, f"no display ({missing}): {NO_WINDOW_SUFFIX}"
    if not _opencv_has_gui():
        return False, (
            "OpenCV has no GUI support (is opencv-python-headless installed? "
            f"uninstall it and reinstall opencv-python): {NO_WINDOW_SUFFIX}"
        )
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE_SCRIPT],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, f"display probe timed out after {timeout_s:g} s: {NO_WINDOW_SUFFIX}"
    except OSError as error:
        return False, f"display probe could not start ({error}): {NO_WINDOW_SUFFIX}"
    if done.returncode == 0 and "DISPLAY_OK" in done.stdout:
        return True, "preview window on"
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    why = lines[0] if lines else f"probe exit code {done.returncode}"
    where = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or ""
    at = f" on {where}" if where else ""
    return False, f"cannot open a window{at} ({why}): {NO_WINDOW_SUFFIX}"


class PreviewWindow:
    """The preview window. Create, show and poll it from the main thread only (decision 13)."""

    def __init__(self, title: str = WINDOW_TITLE) -> None:
        self.title = title
        self._open = False
        self._seen_visible = False

    @property
    def is_open(self) -> bool:
        return self._open

    def show(self, image: np.ndarray) -> None:
        """Show a uint8 BGR image, opening the window on first use."""
        if not self._open:
            cv2.namedWindow(self.title, WINDOW_FLAGS)
            self._open = True
        cv2.imshow(self.title, image)
        self._visible()  # a close before the next poll must still count as closed

    def _visible(self) -> bool:
        try:
            visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            visible = False
        self._seen_visible = self._seen_visible or visible
        return visible

    def poll(self, ms: int = KEY_POLL_MS) -> list[Command]:
        """Pump window events for about `ms` and return the commands of every key pressed."""
        commands = []
        key = cv2.waitKeyEx(max(1, ms))
        for _ in range(MAX_KEYS_PER_POLL):
            if key == -1:
                break
            command = key_to_command(key)
            if command is not None:
                commands.append(command)
            key = cv2.waitKeyEx(1)
        return commands

    def closed_by_user(self) -> bool:
        """True when the window was seen open and the user has closed it (the X button).

        Backends without the visibility property answer -1 from the start; such a window never
        counts as closed, since it was never seen visible.
        """
        if not self._open:
            return False
        visible = self._visible()
        return self._seen_visible and not visible

    def close(self) -> None:
        """Destroy the window (safe to call twice)."""
        if not self._open:
            return
        self._open = False
        self._seen_visible = False
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)  # let the backend process the destroy
        except cv2.error:
            pass
