"""The main thread while training: shows events, pumps the preview window, maps keys to commands."""

from __future__ import annotations

import queue
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from dfl.training.events import (
    BackedUp,
    ChooseSample,
    Command,
    Error,
    Message,
    Preview,
    Saved,
    SaveProgress,
    Started,
    Step,
    Stopped,
)
from dfl.training.preview import HEADER_LINE_1, HEADER_LINE_2, LOSS_RANGES, compose_window
from dfl.training.runner import TrainingRunner
from dfl.ui.console import ConsoleKeys, StatusPrinter
from dfl.ui.history_sample import CHOOSER_MESSAGE, SampleChooser, WindowLike
from dfl.ui.progress import Progress

PUMP_INTERVAL_S = 0.05  # the window and console are serviced at 20 Hz (decision 13: >= 10 Hz)
STOP_GRACE_S = 600.0  # how long Ctrl+C waits for the final save before giving up
# DFL's header wording (Trainer.py); Enter saves before it exits, as the start banner says
KEY_HELP = f"Keys (preview window or this console): {HEADER_LINE_1} {HEADER_LINE_2}"


@dataclass
class SessionResult:
    iteration: int
    saved: bool
    error: Error | None


class _StopRequested(Exception):
    """Raised from the SIGTERM handler to leave the event loop like Ctrl+C."""


class TrainingSession:
    """Runs the UI loop until the runner stops; owns every window call (main thread only)."""

    def __init__(
        self,
        runner: TrainingRunner,
        *,
        window: object | None,
        out: TextIO = sys.stdout,
        make_window: Callable[[str], WindowLike] | None = None,
    ):
        self.runner = runner
        self.window = window  # a dfl.ui.window.PreviewWindow, or None without a display
        # the preview-history sample chooser opens its own window (DFL's)
        self.chooser = SampleChooser(make_window or _preview_window)
        self.out = out
        self.status = StatusPrinter(out)
        self.pages: tuple[tuple[str, np.ndarray], ...] = ()
        self.page_index = 0
        self.range_index = 0
        self.history = np.zeros((0, 2), np.float32)
        self.iteration = 0
        self.stop_sent = False
        # Console keys count once training has started: an Enter typed ahead during start-up
        # (one too many at the prompts) must not stop the run (DFL drained stdin for this).
        self.training = False
        self._save_bar: Progress | None = None

    # ------------------------------------------------------------------ events
    def _handle(self, event: object) -> SessionResult | None:
        if isinstance(event, Step):
            self.iteration = event.iteration
            self.status.step(event.iteration, event.ms, event.losses, event.wait_ms)
        elif isinstance(event, Preview):
            self.pages = event.pages
            self.history = event.history
            self.iteration = event.iteration
            self.page_index %= max(1, len(self.pages))
            self._redraw()
        elif isinstance(event, SaveProgress):
            self._save_progress(event)
        elif isinstance(event, Saved):
            self.status.saved(event.iteration, event.mean_losses)
        elif isinstance(event, BackedUp):
            self.status.message(f"Backup made: {event.path}")
        elif isinstance(event, ChooseSample):
            if not self.chooser.active:
                self.status.message(CHOOSER_MESSAGE)
            self.chooser.show(event.pages)
        elif isinstance(event, Started):
            self.training = True
            self.status.message(event.message)
        elif isinstance(event, Message):
            self.status.message(event.text)
        elif isinstance(event, Error):
            self._error = event
        elif isinstance(event, Stopped):
            return SessionResult(event.iteration, event.saved, getattr(self, "_error", None))
        return None

    def _save_progress(self, event: SaveProgress) -> None:
        if self._save_bar is None:
            if self.status.tty:
                self.status.transient("")  # the bar takes the status line's place
            self._save_bar = Progress("Saving", "files", leave=False)
        self._save_bar.update(event.done, event.total)
        if event.done >= event.total:
            self._save_bar.close()
            self._save_bar = None

    def _redraw(self) -> None:
        if self.window is None:
            return
        image = compose_window(
            list(self.pages), self.page_index, self.history, self.range_index, self.iteration
        )
        self.window.show(image)

    # -------------------------------------------------------------------- keys
    def _act(self, command: Command) -> None:
        if self.chooser.active:
            self._act_choosing(command)
        elif command is Command.NEXT_PAGE:
            if self.pages:
                self.page_index = (self.page_index + 1) % len(self.pages)
                self._redraw()
        elif command is Command.LOSS_RANGE:
            self.range_index = (self.range_index + 1) % len(LOSS_RANGES)
            self._redraw()
        elif command is Command.SAVE_AND_EXIT:
            self._request_stop()
        else:
            if command is Command.SAVE:
                self.status.message("Saving...")
            elif command is Command.BACKUP:
                self.status.message("Creating backup...")
            self.runner.send(command)

    def _act_choosing(self, command: Command) -> None:
        """Keys while the preview-history sample is chosen: P next candidate, Space next page,
        Enter keeps the candidate shown (DFL's chooser)."""
        if command is Command.SAVE_AND_EXIT:
            self.chooser.close()
            self.runner.send(Command.CONFIRM_SAMPLE)
        elif command is Command.REFRESH_PREVIEW:
            self.runner.send(Command.REFRESH_PREVIEW)
        elif command is Command.NEXT_PAGE:
            self.chooser.next_page()

    def _request_stop(self) -> None:
        if not self.stop_sent:
            self.status.message("Saving and exiting...")
            self.runner.send(Command.SAVE_AND_EXIT)
            self.stop_sent = True

    # -------------------------------------------------------------------- loop
    def run(self) -> SessionResult:
        def on_sigterm(signum: int, frame: object) -> None:
            raise _StopRequested

        previous = signal.signal(signal.SIGTERM, on_sigterm)
        try:
            with ConsoleKeys() as keys:
                return self._loop(keys)
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.chooser.close()
            if self.window is not None:
                self.window.close()
            self.status.finish()

    def _loop(self, keys: ConsoleKeys) -> SessionResult:
        deadline: float | None = None
        self._redraw()  # the window shows the key help while the first iteration runs
        self.status.message(KEY_HELP)
        while True:
            try:
                result = self._drain()
                if result is not None:
                    return result
                if self.training:
                    commands = list(keys.poll())
                else:
                    keys.discard_pending()
                    commands = []
                if self.window is not None and self.window.closed_by_user():
                    self.window.close()
                    self.window = None
                    self.status.message("Preview window closed: keys work from this console.")
                commands += self._poll_windows()
                for command in commands:
                    self._act(command)
                if deadline is not None and time.monotonic() > deadline:
                    return SessionResult(self.iteration, False, Error("the trainer did not stop"))
            except (KeyboardInterrupt, _StopRequested):
                # Ctrl+C and SIGTERM save and exit (decision 12); a second one keeps waiting.
                self._request_stop()
                deadline = deadline or time.monotonic() + STOP_GRACE_S

    def _poll_windows(self) -> list[Command]:
        """Keys of the open windows, pumping them for PUMP_INTERVAL_S (or just waiting)."""
        ms = int(PUMP_INTERVAL_S * 1000)
        if self.chooser.active:
            commands = self.chooser.poll(ms if self.window is None else 1)
        else:
            commands = []
        if self.window is not None:
            commands += self.window.poll(ms)
        elif not self.chooser.active:
            time.sleep(PUMP_INTERVAL_S)
        return commands

    def _drain(self) -> SessionResult | None:
        while True:
            try:
                event = self.runner.events.get_nowait()
            except queue.Empty:
                return None
            result = self._handle(event)
            if result is not None:
                return result


def _preview_window(title: str) -> WindowLike:
    from dfl.ui.window import PreviewWindow

    return PreviewWindow(title)
