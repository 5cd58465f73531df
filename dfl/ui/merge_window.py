"""DFL's interactive merger window: the current frame merged with its settings, DFL's keys, a help
screen, per-frame settings kept with the model so that a re-run resumes where it stopped.

The state and the keys live in dfl.merge.interactive (tested without a window); the merging in
dfl.merge.interactive_frames. This module draws, reads keys and saves the session. Keys and
behaviour: docs/merge-run.md "The interactive merger". Main thread only (OpenCV windows).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import cv2
import numpy as np

from dfl.errors import EXIT_OK
from dfl.merge.interactive import ESC, TAB, MergeController, start_settings
from dfl.merge.interactive_frames import FrameMerger, MergedFrame
from dfl.merge.settings import summary_lines
from dfl.ui import text
from dfl.ui.window import KEYCODE_MASK, PreviewWindow

T = TypeVar("T")
WINDOW_TITLE = "Merger"  # DFL's window name
KEY_POLL_MS = 30
BUSY_POLL_MS = 10  # key reads while a frame is merged on the worker thread
MAX_KEYS_PER_POLL = 32
INITIAL_MAX_WIDTH_PX = 1368  # DFL scales a wider first frame down to this width
ZOOM_RANGE = (0.1, 4.0)
ZOOM_STEP = 0.1
SESSION_SAVE_EVERY_S = 10.0  # also saved at the end; a crash loses at most this much
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.45
LINE_PX = 18  # text line height
TEXT_MARGIN_PX = 6
TEXT_COLOUR = (235, 235, 235)
KEY_CODES = {9: TAB, 27: ESC}
# OpenCV's Qt window reports Shift itself (X11 keysyms Shift_L, Shift_R) and then the letter in
# lower case; GTK and Windows report the upper-case letter.
SHIFT_KEYSYMS = (0xFFE1, 0xFFE2)

HELP_TITLE = "Interactive merger keys (Tab: back to the frame)"
HELP_ROWS: tuple[tuple[str, str], ...] = (  # (keys, what they do); "" rows are gaps
    ("Esc", "save the session and finish"),
    ("` 1 2 3 4 5 6", "mode: original, overlay, hist-match, seamless,"),
    ("", "seamless-hist-match, raw-rgb, raw-predict"),
    ("x", "next mask mode"),
    ("c", "next colour transfer (none, rct, lct, mkl, mkl-m, idt, ...)"),
    ("n", "next sharpen mode (none, box, gaussian)"),
    ("z", "masked hist match on/off (hist-match mode only)"),
    ("q / a", "hist match threshold up / down (hist-match modes)"),
    ("w / s", "erode mask up / down"),
    ("e / d", "blur mask up / down"),
    ("r / f", "motion blur up / down"),
    ("y / h", "sharpen amount up / down (below 0: blur)"),
    ("u / j", "output face scale up / down"),
    ("i / k", "degrade by denoise up / down"),
    ("o / l", "degrade by bicubic rescale up / down"),
    ("p / ;", "degrade colour up / down (: is 5 down)"),
    ("Shift", "with the amount keys: steps of 5"),
    ("t / g", "super resolution: not available in dfl"),
    ("", ""),
    (", / .", "previous / next frame"),
    ("<", "back to the first frame"),
    ("m / M", "previous / first frame, taking these settings along"),
    ("/ / ?", "next frame / every later frame takes these settings"),
    (">", "merge all remaining frames with their settings"),
    ("- / =", "zoom out / in"),
    ("v", "checkerboard where the mask is not (shows the mask's edge)"),
)
HELP_KEY_COLUMN_PX = 130  # where the descriptions start
CHECKER_PX = 5  # the `v` view's squares, px of the frame (DFL's MergerScreen)
CHECKER_DIM = 0.75  # the frame's brightness under the checkerboard
CHECKER_LEVEL = 64.0  # the light squares' grey level added outside the mask


def decode_key(code: int, shift: bool = False) -> str | None:
    """A cv2.waitKeyEx code as the typed character ('\\t', '\\x1b' for Tab, Esc), or None;
    `shift`: a Shift key came just before (Qt), so a letter is upper case."""
    if code < 0:
        return None
    code &= KEYCODE_MASK  # drop GTK's modifier bits
    if code in KEY_CODES:
        return KEY_CODES[code]
    if 32 < code < 127:
        return chr(code).upper() if shift else chr(code)
    return None


def _text_width(line: str) -> int:
    return cv2.getTextSize(line, FONT, FONT_SCALE, 1)[0][0] + 2 * TEXT_MARGIN_PX


def _text_block(rows: list[tuple[str, ...]], width: int, column_px: int = 0) -> np.ndarray:
    """Text rows on black; a row's second cell starts at `column_px`."""
    block = np.zeros((len(rows) * LINE_PX + TEXT_MARGIN_PX, width, 3), np.uint8)
    for n, row in enumerate(rows):
        y = (n + 1) * LINE_PX
        for cell, x in zip(row, (TEXT_MARGIN_PX, TEXT_MARGIN_PX + column_px), strict=False):
            cv2.putText(block, cell, (x, y), FONT, FONT_SCALE, TEXT_COLOUR, 1, cv2.LINE_AA)
    return block


def help_image() -> np.ndarray:
    rows = [(HELP_TITLE,), ("",), *HELP_ROWS]
    width = max(_text_width(r[-1]) + (HELP_KEY_COLUMN_PX if len(r) > 1 else 0) for r in rows)
    return _text_block(rows, width, HELP_KEY_COLUMN_PX)


def checkerboard_view(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """DFL's `v` view: the frame dimmed to 3/4, with a checkerboard of CHECKER_PX squares
    (grey CHECKER_LEVEL) added where the mask (uint8, 255 = face) is not."""
    h, w = mask.shape[:2]
    squares = (np.indices((h, w)) // CHECKER_PX).sum(axis=0) % 2
    outside = 1.0 - mask.reshape(h, w, 1).astype(np.float32) / 255.0
    view = image.astype(np.float32) * CHECKER_DIM + CHECKER_LEVEL * squares[..., None] * outside
    return np.clip(view, 0, 255).astype(np.uint8)


def frame_view(image: np.ndarray, zoom: float, status: list[str]) -> np.ndarray:
    """The merged frame at the zoom, over a status bar."""
    h, w = image.shape[:2]
    size = (max(1, round(w * zoom)), max(1, round(h * zoom)))
    shown = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR) if zoom != 1.0 else image
    width = max(shown.shape[1], *(_text_width(line) for line in status))
    canvas = np.zeros((shown.shape[0], width, 3), np.uint8)
    canvas[:, : shown.shape[1]] = shown
    return np.concatenate([canvas, _text_block([(line,) for line in status], width)])


class SessionKeeper:
    """The interactive part of the model's merge session (dfl.merge.session): restored at the
    start (after DFL's "Use saved session?"), saved now and then and at the end."""

    def __init__(self, flow: Any, key: dict[str, Any], merger: FrameMerger) -> None:
        self.flow, self.key = flow, key
        self.fingerprints = merger.fingerprints()

    def restore(self, controller: MergeController, merger: FrameMerger) -> None:
        from dfl.merge.session import SESSION_FILE
        from dfl.ui import merge_questions as questions

        saved = self.flow.session.interactive
        if not saved or not questions.ask_saved_session(self.flow.asker, self.flow.overrides):
            return
        report = controller.restore(saved, self.key, self.fingerprints, merger.outputs_exist)
        text.info(f"Using saved session from {self.flow.folder.name}/{SESSION_FILE}")
        for note in report.notes:
            text.note(note)
        if report.restarted:
            text.note(
                "The model changed since the saved session (trained further, or another morph "
                "factor): every frame is merged again, each with its saved settings."
            )
        elif report.resumed:
            text.info(
                f"{report.resumed} frames were merged in the saved session; continuing at "
                f"{controller.names[controller.index]}."
            )

    def save(self, controller: MergeController, final: bool = False) -> None:
        from dfl.merge.session import save_session

        session = self.flow.session
        session.interactive = controller.to_json(self.key, self.fingerprints)
        session.workers, session.morph_factor = self.flow.workers, self.flow.morph
        try:
            path = save_session(self.flow.folder, session)
        except OSError as exc:
            text.warn(f"The merge session cannot be saved ({exc}).")
            return
        if final:
            text.info(f"Session is saved to {path.parent.name}/{path.name}")


class MergerWindow:
    """One interactive merge: the loop of merging, drawing and keys."""

    def __init__(
        self, controller: MergeController, merger: FrameMerger, flow: Any, keeper: SessionKeeper
    ) -> None:
        self.c, self.merger, self.flow, self.keeper = controller, merger, flow, keeper
        self.window = PreviewWindow(WINDOW_TITLE)
        self.keys: deque[str] = deque()
        self.shift = False  # a Shift key was reported just before (Qt)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="merger-window")
        self.zoom: float | None = None
        self.image: np.ndarray | None = None  # the last merged image shown
        self.mask: np.ndarray | None = None  # its mask (uint8, 255 = face)
        self.shown: tuple[int, Any] | None = None  # (frame, settings) of self.image
        self.note = ""

    # ------------------------------------------------------------------ merging
    def _merge_current(self) -> None:
        from dfl.merge.run import FrameError

        c = self.c
        i, settings = c.index, c.current
        if c.is_done(i):
            if self.shown == (i, settings):
                return
            shown = self.merger.read_output(i) if i not in c.failed else self._last_shown()
            if shown is not None:
                self._show_result(i, settings, shown)
                return
            c.merged.pop(i, None)  # unreadable: merge it again
        batch = range(i, min(c.count, i + self.merger.predictor.batch_size))
        self._busy(f"merging {c.names[i]}...")
        # the next frames with one network call, so that `.` is quick
        self._in_background(self.merger.prepare, list(batch))
        try:
            result = self._in_background(self.merger.merge, i, settings)
        except FrameError as exc:
            c.mark_failed(i, str(exc))
            text.error(f"{c.names[i]} {exc}")
            self.note = f"{c.names[i]} {exc}"
            return
        c.mark_merged(i, settings)
        self._show_result(i, settings, result)

    def _last_shown(self) -> MergedFrame | None:
        """The image on screen with its mask, or None before the first merge."""
        if self.image is None or self.mask is None:
            return None
        return MergedFrame(self.image, self.mask)

    def _show_result(self, i: int, settings: Any, merged: MergedFrame) -> None:
        image = merged.image
        self.image, self.mask, self.shown = image, merged.mask, (i, settings)
        if self.zoom is None:  # DFL: a wide first frame is shown smaller
            self.zoom = min(1.0, INITIAL_MAX_WIDTH_PX / image.shape[1])
        if not self.c.process_remaining:
            for line in summary_lines(settings, self.c.names[i]):
                text.info(line)

    def _process_remaining(self) -> None:
        """Merge the next batch of frames with their settings and move past them."""
        c = self.c
        batch = c.batch(max(self.flow.workers, self.merger.predictor.batch_size))
        jobs = [(i, c.settings[i]) for i in batch if not c.is_done(i)]
        results = self._in_background(self.merger.merge_many, jobs, self.flow.workers)
        for i, result in sorted(results.items()):
            if isinstance(result, str):
                c.mark_failed(i, result)
                text.error(f"{c.names[i]} {result}")
            else:
                c.mark_merged(i, c.settings[i])
                self._show_result(i, c.settings[i], result)
        while c.process_remaining and c.is_done(c.index):
            if not c.forward():
                break
        if not c.process_remaining:
            text.info(f"Merged frames: {c.done_count}/{c.count}.")

    # ------------------------------------------------------------------ drawing and keys
    def _status(self, busy: str = "") -> list[str]:
        c, s = self.c, self.c.current
        state = busy or ("merging the rest..." if c.process_remaining else self.note)
        first = (
            f"{c.names[c.index]}  frame {c.index + 1}/{c.count}  merged {c.done_count}/{c.count}"
            f"  zoom {self.zoom or 1.0:.1f}  {state}"
        )
        ct = s.color_transfer_mode or "none"
        second = (
            f"{s.mode} | mask {s.mask_mode} | colour {ct} | erode {s.erode_mask_modifier}"
            f" blur {s.blur_mask_modifier} | Tab: keys  Esc: save and quit"
        )
        return [first, second]

    def _frame(self) -> np.ndarray:
        """The last merged image, or its checkerboard view (`v`)."""
        assert self.image is not None
        if self.c.show_checkerboard and self.mask is not None:
            return checkerboard_view(self.image, self.mask)
        return self.image

    def _draw(self) -> None:
        if self.c.show_help or self.image is None:
            self.window.show(help_image())
        else:
            self.window.show(frame_view(self._frame(), self.zoom or 1.0, self._status()))

    def _busy(self, note: str) -> None:
        """Say what is being done in the status bar while it is done."""
        if self.image is not None and not self.c.show_help:
            self.window.show(frame_view(self._frame(), self.zoom or 1.0, self._status(note)))

    def _in_background(self, work: Callable[..., T], *args: Any) -> T:
        """Run `work` on the worker thread while the window keeps taking keys (OpenCV keeps
        only the last key that arrived between two reads)."""
        future = self.pool.submit(work, *args)
        while not future.done():
            self._poll(BUSY_POLL_MS)
        return future.result()

    def _poll(self, wait_ms: int | None = None) -> None:
        idle_ms = 1 if self.c.process_remaining or self.keys else KEY_POLL_MS
        code = cv2.waitKeyEx(wait_ms or idle_ms)
        for _ in range(MAX_KEYS_PER_POLL):
            if code == -1:
                break
            if code & KEYCODE_MASK in SHIFT_KEYSYMS:
                self.shift = True
            else:
                key = decode_key(code, self.shift)
                self.shift = False
                if key is not None:
                    self.keys.append(key)
            code = cv2.waitKeyEx(1)

    def _press_keys(self) -> None:
        """Apply queued keys until one needs a merge first (the rest wait for it)."""
        while self.keys and not self.c.quitting:
            result = self.c.press(self.keys.popleft())
            if result.zoom:
                self.zoom = min(max((self.zoom or 1.0) + result.zoom * ZOOM_STEP, ZOOM_RANGE[0]),
                                ZOOM_RANGE[1])  # fmt: skip
            if result.note:
                text.note(result.note)
                self.note = result.note
            if result.changed or result.moved or self.c.process_remaining:
                self.note = "" if not result.note else self.note
                return

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        last_save = time.monotonic()
        while not self.c.quitting:
            if self.window.closed_by_user():
                break  # the window's X button: like Esc
            if self.c.process_remaining:
                self._process_remaining()
            else:
                self._merge_current()
            self._draw()
            self._poll()
            self._press_keys()
            if time.monotonic() - last_save >= SESSION_SAVE_EVERY_S:
                self.keeper.save(self.c)
                last_save = time.monotonic()

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.window.close()


def run_interactive(flow: Any) -> int | None:
    """The interactive merge of a prepared MergeFlow; the exit code, or None when the window
    cannot be opened (the caller falls back to the non-interactive merger)."""
    from dfl.ui import merge_questions as questions

    flow.workers = questions.ask_workers(flow.asker, flow.session.workers, flow.overrides)
    start = start_settings(flow.overrides)
    predictor, key = flow.load_model()
    merger = FrameMerger(
        flow.pairing.frames, predictor, flow.folders.output_dir, flow.folders.mask_dir
    )
    controller = MergeController([f.name for f in flow.pairing.frames], start)
    keeper = SessionKeeper(flow, key, merger)
    keeper.restore(controller, merger)
    ui = MergerWindow(controller, merger, flow, keeper)
    try:
        try:
            ui.window.show(help_image())  # DFL shows the key chart first
        except cv2.error as exc:
            text.warn(f"The merger window cannot be opened ({exc}).")
            return None
        ui.run()
    finally:
        ui.close()
        keeper.save(controller, final=True)
    text.info(
        f"Merged frames: {controller.done_count}/{controller.count} in "
        f"{flow.folders.output_dir} (masks: {flow.folders.mask_dir})."
    )
    return EXIT_OK
