"""Messages that cross the thread boundary: commands to the trainer, events from it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np


class Command(enum.Enum):
    """What the user asks of the trainer (from the window or the console)."""

    SAVE = "save"
    SAVE_AND_EXIT = "save_and_exit"
    BACKUP = "backup"
    REFRESH_PREVIEW = "refresh_preview"
    NEXT_PAGE = "next_page"  # UI only: cycle preview pages
    LOSS_RANGE = "loss_range"  # UI only: cycle the loss-graph range
    CONFIRM_SAMPLE = "confirm_sample"  # accept the preview-history sample being chosen


@dataclass(frozen=True)
class Started:
    iteration: int
    message: str


@dataclass(frozen=True)
class Step:
    iteration: int  # the iteration count after this step (the first is 1)
    ms: float  # wall time of the step, waiting for samples included
    losses: tuple[float, ...]  # src_loss, dst_loss
    wait_ms: float = 0.0  # of `ms`, spent waiting for samples


@dataclass(frozen=True)
class Preview:
    iteration: int
    pages: tuple[tuple[str, np.ndarray], ...]  # (page name, uint8 BGR image)
    history: np.ndarray = field(repr=False)  # (N, k) float32 loss history


@dataclass(frozen=True)
class Saved:
    iteration: int
    mean_losses: tuple[float, ...]  # means since the previous save
    path: str


@dataclass(frozen=True)
class ChooseSample:
    """A candidate preview-history sample, as its history pages: REFRESH_PREVIEW asks for the
    next candidate, CONFIRM_SAMPLE accepts it (DFL's chooser; docs/dfl-trainer.md)."""

    pages: tuple[tuple[str, np.ndarray], ...]


@dataclass(frozen=True)
class SaveProgress:
    done: int  # files written so far
    total: int


@dataclass(frozen=True)
class BackedUp:
    iteration: int
    path: str


@dataclass(frozen=True)
class Message:
    text: str


@dataclass(frozen=True)
class Error:
    message: str  # for the user: what went wrong and what to do
    details: str = ""  # traceback, for --debug or a bug report


@dataclass(frozen=True)
class Stopped:
    iteration: int
    saved: bool


Event = (
    Started
    | Step
    | Preview
    | ChooseSample
    | SaveProgress
    | Saved
    | BackedUp
    | Message
    | Error
    | Stopped
)
