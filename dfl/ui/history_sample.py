"""DFL's preview-history sample choice: the "Choose image for the preview history" question,
asked right after "Write preview history" is answered yes, and the chooser window that follows
(docs/dfl-trainer.md, "Preview history"). The window is the main thread's (decision 13)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from dfl.options import Option, coerce
from dfl.training.events import Command
from dfl.training.preview import to_uint8_bgr

WRITE_HISTORY_OPTION = "write_preview_history"
CHOOSE_LABEL = "Choose image for the preview history"  # DFL's prompt label
# DFL's chooser window title doubles as its key help
CHOOSER_TITLE = "[p] - next. [space] - switch preview type. [enter] - confirm."
CHOOSER_MESSAGE = f"{CHOOSE_LABEL}. {CHOOSER_TITLE}"
CHOOSE_OPTION = Option(
    name="choose_preview_history",  # asked, never stored: it only picks the sample
    label=CHOOSE_LABEL,
    type=bool,
    default=False,
    group="saving",
    help="y: before training starts, a window shows candidate samples for the preview history; "
    "P shows the next one, Space the next preview page, Enter keeps the one shown. "
    "n: the history uses the model's stored sample, or a random one for a new model.",
)

Page = tuple[str, np.ndarray]
Answer = Callable[[Option, Any, Mapping[str, Any]], Any]


class HistorySampleQuestion:
    """An `answer` callback for resolve_options that adds DFL's question after "Write preview
    history" is answered yes; `choose` tells the answer. Only asked when `window_possible`
    (no --no-preview): the candidates are shown in a window."""

    def __init__(self, answer: Answer, *, window_possible: bool) -> None:
        self._answer = answer
        self._window_possible = window_possible
        self.choose = False

    def __call__(self, option: Option, default: Any, resolved: Mapping[str, Any]) -> Any:
        value = self._answer(option, default, resolved)
        if option.name == WRITE_HISTORY_OPTION and self._window_possible:
            if coerce(option, value):
                self.choose = bool(coerce(CHOOSE_OPTION, self._answer(CHOOSE_OPTION, False, {})))
            else:
                self.choose = False
        return value


class WindowLike(Protocol):
    """What the chooser needs of a dfl.ui.window.PreviewWindow."""

    def show(self, image: np.ndarray) -> None: ...

    def poll(self, ms: int) -> list[Command]: ...

    def close(self) -> None: ...


class SampleChooser:
    """The chooser window: shows one page of the candidate sample, Space cycles the pages."""

    def __init__(self, make_window: Callable[[str], WindowLike]) -> None:
        self._make_window = make_window
        self._window: WindowLike | None = None
        self._pages: Sequence[Page] = ()
        self._page = 0

    @property
    def active(self) -> bool:
        return self._window is not None

    def show(self, pages: Sequence[Page]) -> None:
        """Show a (new) candidate, on the page type shown before."""
        if self._window is None:
            self._window = self._make_window(CHOOSER_TITLE)
        self._pages = pages
        self._draw()

    def next_page(self) -> None:
        self._page += 1
        self._draw()

    def poll(self, ms: int) -> list[Command]:
        return self._window.poll(ms) if self._window is not None else []

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None

    def _draw(self) -> None:
        if self._window is not None and self._pages:
            self._window.show(to_uint8_bgr(self._pages[self._page % len(self._pages)][1]))
