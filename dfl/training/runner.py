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
    ChooseSample,
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

SAVE_INTERVAL_S = 25 * 60  # DFL's autosave period, on a fixed grid from the start (Trainer.py)
FIRST_ITERATION_MESSAGE = (
    "Trying to do the first iteration. If it runs out of memory, lower the batch size or the "
    "model's dims."
)
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
    choose_preview_sample: bool = False  # let the user pick the history sample first (DFL)
    timed_from: float | None = None  # monotonic time of the user's last answer; None: launch
    new_model_tips: tuple[str, ...] = ()  # said before a new model's first iteration


@dataclass
class _LoopState:
    """What the worker loop remembers between iterations."""

    reached: bool  # the target iteration is reached: preview only
    next_autosave: float  # monotonic; on DFL's fixed grid from the start of training
    last_preview: float
    backup_due: float | None  # None: autobackup off
    dirty: bool = False  # trained since the last save
    first_preview_sent: bool = False
    first_step_timed: bool = False
    first_try_said: bool = False


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

    def __init__(
        self,
        make_trainer: Callable[[], Trainer],
        schedule: Schedule,
        clock: Callable[[], float] = time.monotonic,  # seconds; tests pass a fake one
    ) -> None:
        self._make_trainer = make_trainer
        self.schedule = schedule
        self._clock = clock
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

    # ------------------------------------------------------------ the loop
    def _loop(self, trainer: Trainer) -> bool:
        """Train until asked to stop; returns True when the final state was saved."""
        state = self._begin(trainer)
        if state.reached and self.schedule.exit_at_target:
            return True  # nobody could press Enter: there is nothing to do
        choosing = self.schedule.choose_preview_sample and not state.reached
        if choosing:
            if not self._choose_sample(trainer):
                return True  # stopped while choosing: nothing trained, nothing to save
            state.next_autosave = self._clock() + self.schedule.save_interval_s  # grid: now
        if state.reached:
            self._show_preview(trainer, state)
        while True:
            if self._run_commands(trainer, state):  # commands first: a key acts within a step
                if state.dirty:
                    self._save(trainer)
                return True
            if state.reached:
                time.sleep(IDLE_SLEEP_S)
                continue
            if not self._train_step(trainer, state):
                continue  # a skipped step: nothing changed
            if self._after_step(trainer, state):
                return True

    def _begin(self, trainer: Trainer) -> _LoopState:
        """Say how the run starts (DFL's start banner, then the trainer's notes)."""
        sched = self.schedule
        reached = bool(sched.target_iter) and trainer.iteration >= sched.target_iter
        if reached:
            banner = (
                f"Model already trained to the target iteration {sched.target_iter}: "
                "preview only. Press Enter to exit."
            )
        elif sched.target_iter:
            banner = (
                f"Starting. Target iteration: {sched.target_iter}. "
                "Press Enter to stop training and save the model."
            )
        else:
            banner = "Starting. Press Enter to stop training and save the model."
        self._emit(Started(trainer.iteration, banner))
        for note in trainer.notes:
            self._emit(Message(note))
        now = self._clock()
        backup_due = (
            now + sched.autobackup_hours * SECONDS_PER_HOUR if sched.autobackup_hours else None
        )
        return _LoopState(
            reached=reached,
            next_autosave=now + sched.save_interval_s,
            last_preview=now,
            backup_due=backup_due,
        )

    def _choose_sample(self, trainer: Trainer) -> bool:
        """DFL's preview-history chooser: candidates until CONFIRM_SAMPLE; False when the user
        stopped instead (SAVE_AND_EXIT)."""
        self._emit(ChooseSample(tuple(trainer.preview_pages(fixed=True))))
        while True:
            try:
                command = self.commands.get(timeout=IDLE_SLEEP_S)
            except queue.Empty:
                continue
            if command is Command.CONFIRM_SAMPLE:
                return True
            if command is Command.SAVE_AND_EXIT:
                return False
            if command is Command.REFRESH_PREVIEW:
                trainer.draw_preview_sample()
                self._emit(ChooseSample(tuple(trainer.preview_pages(fixed=True))))

    def _run_commands(self, trainer: Trainer, state: _LoopState) -> bool:
        """Act on every queued command; True when the user asked to stop."""
        stop = False
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                return stop
            if command is Command.SAVE_AND_EXIT:
                stop = True
            elif command is Command.SAVE and not state.reached:
                self._save(trainer)
                state.dirty = False  # manual saves leave the autosave grid where it is (DFL)
            elif command is Command.BACKUP and not state.reached:
                self._backup(trainer)
                state.dirty = False
            elif command is Command.REFRESH_PREVIEW:
                self._show_preview(trainer, state)

    def _train_step(self, trainer: Trainer, state: _LoopState) -> bool:
        """One iteration with its messages; False when its losses were not finite (skipped)."""
        if trainer.iteration == 0 and not state.first_try_said:  # a new model (DFL)
            state.first_try_said = True
            for tip in self.schedule.new_model_tips:
                self._emit(Message(tip))
            self._emit(Message(FIRST_ITERATION_MESSAGE))
        ms, losses = trainer.train_one()
        for message in trainer.take_messages():
            self._emit(Message(message))
        if trainer.last_step_skipped:
            self._emit(Message(f"skipped a step with non-finite losses {losses}"))
            return False
        state.dirty = True
        self._emit(Step(trainer.iteration, ms, losses, trainer.last_wait_ms))
        if not state.first_step_timed:
            state.first_step_timed = True
            self._emit(Message(self._first_step_message()))
        every = self.schedule.preview_history_every
        frame = trainer.iteration - 1  # DFL numbers frames by the iteration before the step
        if every and frame % every == 0:
            trainer.write_preview_history(frame)
        return True

    def _first_step_message(self) -> str:
        since = self.schedule.timed_from
        if since is None:
            return f"First iteration done {time.monotonic() - LAUNCHED_AT:.1f} s after launch."
        return f"First iteration done {self._clock() - since:.1f} s after the last answer."

    def _after_step(self, trainer: Trainer, state: _LoopState) -> bool:
        """Saves, backups, the target and the preview refresh due after a step; True when the
        run ends here (target reached with nobody to press Enter)."""
        sched = self.schedule
        now = self._clock()
        autosave = False
        while now >= state.next_autosave:  # DFL's fixed grid; missed slots make one save
            state.next_autosave += sched.save_interval_s
            autosave = True
        if trainer.iteration == 1 or autosave:
            self._save(trainer)
            state.dirty = False
            if state.backup_due is not None and now >= state.backup_due:
                self._emit(BackedUp(trainer.iteration, trainer.backup(sched.backups_kept)))
                state.backup_due = now + sched.autobackup_hours * SECONDS_PER_HOUR
        if sched.target_iter and trainer.iteration >= sched.target_iter:
            if state.dirty:
                self._save(trainer)
                state.dirty = False
            state.reached = True
            if sched.exit_at_target:
                self._emit(Message("Reached target iteration."))
                return True
            self._emit(Message("Reached target iteration. You can use the preview now."))
        if not state.first_preview_sent or now - state.last_preview >= sched.preview_interval_s:
            self._show_preview(trainer, state)
        return False

    def _show_preview(self, trainer: Trainer, state: _LoopState) -> None:
        self._preview(trainer)
        state.first_preview_sent = True
        state.last_preview = self._clock()
