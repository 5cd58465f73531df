"""Runs a Trainer in one worker thread: commands in, events out, schedules in between."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from dfl import LAUNCHED_AT
from dfl.store.weights import WeightsMismatchError
from dfl.training.events import (
    BackedUp,
    Command,
    Error,
    Event,
    Message,
    Preview,
    Saved,
    SaveProgress,
    Started,
    Step,
    Stopped,
)
from dfl.training.trainer import Trainer, TrainingError

SAVE_INTERVAL_S = 25 * 60  # DFL's autosave period
PREVIEW_INTERVAL_S = (
    5.0  # the live preview refreshes itself this often while training (decision 13)
)
IDLE_SLEEP_S = 0.05  # wait between command checks when not training (target reached)
SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class Schedule:
    """When the runner saves, backs up and stops on its own."""

    target_iter: int = 0  # 0 = no target
    autobackup_hours: float = 2.0  # 0 = off (decision 14)
    backups_kept: int = 8
    save_interval_s: float = SAVE_INTERVAL_S
    preview_interval_s: float = PREVIEW_INTERVAL_S
    exit_at_target: bool = False  # when nobody can press Enter (no window, no terminal)
    preview_history_every: int = 0  # iterations between preview-history frames; 0 = off


def _oom_advice(exc: BaseException) -> str | None:
    text = f"{type(exc).__name__}: {exc}".lower()
    if any(s in text for s in ("out of memory", "resourceexhausted", "oom", "cannot allocate")):
        return (
            "out of memory: lower the batch size, the resolution or the network dims "
            "(the last saved state is kept)"
        )
    return None


class TrainingRunner:
    """Owns the worker thread; the main thread sends commands and reads events."""

    def __init__(self, make_trainer: Callable[[], Trainer], schedule: Schedule) -> None:
        self._make_trainer = make_trainer
        self.schedule = schedule
        self.commands: queue.Queue[Command] = queue.Queue()
        self.events: queue.Queue[Event] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="trainer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def send(self, command: Command) -> None:
        self.commands.put(command)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # ------------------------------------------------------------ worker side
    def _emit(self, event: Event) -> None:
        self.events.put(event)

    def _run(self) -> None:
        trainer: Trainer | None = None
        saved = False
        try:
            trainer = self._make_trainer()
            saved = self._loop(trainer)
        except (TrainingError, WeightsMismatchError) as exc:  # the message says what to do
            self._emit(Error(str(exc)))
        except Exception as exc:  # noqa: BLE001 - every failure must reach the user, never a hang
            advice = _oom_advice(exc)
            self._emit(Error(advice or f"training failed: {exc}", traceback.format_exc()))
        finally:
            if trainer is not None:
                with contextlib.suppress(Exception):  # closing must not hide the real outcome
                    trainer.close()
            self._emit(Stopped(trainer.iteration if trainer else 0, saved))

    def _save(self, trainer: Trainer) -> None:
        def progress(done: int, total: int, name: str) -> None:
            self._emit(SaveProgress(done, total))

        path, means = trainer.save(progress)
        self._emit(Saved(trainer.iteration, means, path))

    def _backup(self, trainer: Trainer) -> None:
        self._save(trainer)  # B backs up the current state, not the last save (decision 14)
        self._emit(BackedUp(trainer.iteration, trainer.backup(self.schedule.backups_kept)))

    def _preview(self, trainer: Trainer) -> None:
        self._emit(
            Preview(trainer.iteration, tuple(trainer.preview_pages()), trainer.loss_history())
        )

    def _loop(self, trainer: Trainer) -> bool:
        """Train until asked to stop; returns True when the final state was saved."""
        sched = self.schedule
        reached = bool(sched.target_iter) and trainer.iteration >= sched.target_iter
        if reached:
            self._emit(
                Started(
                    trainer.iteration,
                    f"Model already trained to the target iteration {sched.target_iter}: "
                    "preview only. Press Enter to exit.",
                )
            )
        elif sched.target_iter:
            self._emit(
                Started(
                    trainer.iteration,
                    f"Starting. Target iteration: {sched.target_iter}. "
                    "Press Enter to stop training and save the model.",
                )
            )
        else:
            self._emit(
                Started(
                    trainer.iteration, "Starting. Press Enter to stop training and save the model."
                )
            )
        for note in trainer.notes:
            self._emit(Message(note))
        now = time.monotonic()
        last_save = now
        last_preview = now
        first_step_timed = False
        backup_due = (
            now + sched.autobackup_hours * SECONDS_PER_HOUR if sched.autobackup_hours else None
        )
        dirty = False  # trained since the last save
        first_preview_sent = False
        if reached:
            if sched.exit_at_target:  # nobody could press Enter: there is nothing to do
                return True
            self._preview(trainer)
            first_preview_sent = True

        while True:
            # Commands first, so a key press is acted on within one step.
            stop = False
            while True:
                try:
                    command = self.commands.get_nowait()
                except queue.Empty:
                    break
                if command is Command.SAVE_AND_EXIT:
                    stop = True
                elif command is Command.SAVE and not reached:
                    self._save(trainer)
                    dirty = False
                    last_save = time.monotonic()
                elif command is Command.BACKUP and not reached:
                    self._backup(trainer)
                    dirty = False
                    last_save = time.monotonic()
                elif command is Command.REFRESH_PREVIEW:
                    self._preview(trainer)
                    last_preview = time.monotonic()
            if stop:
                if dirty:
                    self._save(trainer)
                return True

            if reached:
                time.sleep(IDLE_SLEEP_S)
                continue

            if not first_preview_sent:
                self._emit(Message("Trying to do the first iteration..."))
            ms, losses = trainer.train_one()
            for message in trainer.take_messages():
                self._emit(Message(message))
            if trainer.last_step_skipped:
                self._emit(Message(f"skipped a step with non-finite losses {losses}"))
                continue
            dirty = True
            self._emit(Step(trainer.iteration, ms, losses, trainer.last_wait_ms))
            if not first_step_timed:
                first_step_timed = True
                startup_s = time.monotonic() - LAUNCHED_AT
                self._emit(Message(f"First iteration done {startup_s:.1f} s after launch."))
            every = sched.preview_history_every
            if every and (trainer.iteration - 1) % every == 0:
                trainer.write_preview_history()  # DFL counts frames from iteration 0
            now = time.monotonic()

            if trainer.iteration == 1 or now - last_save >= sched.save_interval_s:
                self._save(trainer)
                dirty = False
                last_save = now
                if backup_due is not None and now >= backup_due:
                    self._emit(BackedUp(trainer.iteration, trainer.backup(sched.backups_kept)))
                    backup_due = now + sched.autobackup_hours * SECONDS_PER_HOUR
            if sched.target_iter and trainer.iteration >= sched.target_iter:
                if dirty:
                    self._save(trainer)
                    dirty = False
                reached = True
                if sched.exit_at_target:
                    self._emit(Message("Reached target iteration."))
                    return True
                self._emit(Message("Reached target iteration. You can use the preview now."))
            if not first_preview_sent or now - last_preview >= sched.preview_interval_s:
                self._preview(trainer)
                first_preview_sent = True
                last_preview = time.monotonic()
