"""The runner keeps a DFL user's habits: the autosave grid, the first-iteration messages, the
preview-history numbering and the preview-history sample chooser (docs/dfl-trainer.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dfl import backend

backend.select(None)

from dfl.models.quick96 import model as quick96  # noqa: E402
from dfl.store.model_store import ModelStore  # noqa: E402
from dfl.store.weights import PREVIEW_SAMPLES_KEY  # noqa: E402
from dfl.training import trainer as trainer_module  # noqa: E402
from dfl.training.events import (  # noqa: E402
    ChooseSample,
    Command,
    Message,
    Saved,
    Step,
    Stopped,
)
from dfl.training.runner import FIRST_ITERATION_MESSAGE, Schedule, TrainingRunner  # noqa: E402
from dfl.training.trainer import Trainer  # noqa: E402
from tests.helpers import make_setup, run_until, tiny_options  # noqa: E402

STEP_S = 10.0  # fake seconds each iteration takes


class SteppedClock:
    """A clock that moves STEP_S per trained iteration (the runner's only time source)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _stepping(trainer: Trainer, clock: SteppedClock, after=None) -> Trainer:
    """Make each train_one advance `clock`; `after(iteration)` runs after each step."""
    train_one = trainer.train_one

    def step():
        result = train_one()
        clock.now += STEP_S
        if after is not None:
            after(trainer.iteration)
        return result

    trainer.train_one = step  # type: ignore[method-assign]
    return trainer


def _messages(events) -> list[str]:
    return [e.text for e in events if isinstance(e, Message)]


def test_autosave_on_a_fixed_grid_not_moved_by_manual_saves(tmp_path: Path) -> None:
    """DFL saves every 25 min from the start of training; a manual save does not move the grid."""
    clock = SteppedClock()
    holder: dict[str, TrainingRunner] = {}

    def save_after_2(iteration: int) -> None:
        if iteration == 2:  # queued now, acted on before step 3: no race with the thread
            holder["runner"].send(Command.SAVE)

    setup = make_setup(quick96.SPEC, tmp_path / "grid_Quick96")
    schedule = Schedule(
        target_iter=8,
        exit_at_target=True,
        save_interval_s=25.0,
        preview_interval_s=1e9,
        autobackup_hours=0,
        timed_from=-1000.0,
    )
    runner = TrainingRunner(
        lambda: _stepping(Trainer(setup), clock, save_after_2), schedule, clock=clock
    )
    holder["runner"] = runner
    runner.start()
    events = run_until(runner, lambda e: isinstance(e, Stopped))
    runner.join(10)
    # grid slots at 25, 50, 75 s: the first steps at or past them are 3 (30 s), 5 and 8;
    # 1 is DFL's save after the first iteration, 2 the manual one
    assert [e.iteration for e in events if isinstance(e, Saved)] == [1, 2, 3, 5, 8]
    # timed from the last answer (fake clock: -1000 s), not from the launch
    assert "First iteration done 1010.0 s after the last answer." in _messages(events)


def test_first_iteration_messages_only_on_a_new_model(tmp_path: Path) -> None:
    folder = tmp_path / "first_Quick96"
    tip = "You are training from scratch."
    schedule = Schedule(target_iter=1, exit_at_target=True, new_model_tips=(tip,))
    runner = TrainingRunner(lambda: Trainer(make_setup(quick96.SPEC, folder)), schedule)
    runner.start()
    said = _messages(run_until(runner, lambda e: isinstance(e, Stopped)))
    runner.join(10)
    assert said.index(tip) < said.index(FIRST_ITERATION_MESSAGE)

    setup = make_setup(quick96.SPEC, folder)
    setup.loaded = ModelStore(folder).load()
    schedule = Schedule(target_iter=2, exit_at_target=True, new_model_tips=(tip,))
    runner = TrainingRunner(lambda: Trainer(setup), schedule)
    runner.start()
    events = run_until(runner, lambda e: isinstance(e, Stopped))
    runner.join(10)
    assert any(isinstance(e, Step) for e in events)
    assert FIRST_ITERATION_MESSAGE not in _messages(events)
    assert tip not in _messages(events)


def test_preview_history_numbered_as_dfl(tmp_path: Path, monkeypatch) -> None:
    """Frames are named and labelled by the iteration before the step: 0000000.jpg (no label),
    then every `preview_history_every` iterations."""
    labels: list[int] = []
    real_graph = trainer_module.loss_graph

    def recording_graph(history, width, iteration, *args, **kwargs):
        labels.append(iteration)
        return real_graph(history, width, iteration, *args, **kwargs)

    monkeypatch.setattr(trainer_module, "loss_graph", recording_graph)
    folder = tmp_path / "hist_Quick96"
    setup = make_setup(quick96.SPEC, folder, tiny_options(quick96.SPEC, write_preview_history="y"))
    schedule = Schedule(target_iter=5, exit_at_target=True, preview_history_every=2)
    runner = TrainingRunner(lambda: Trainer(setup), schedule)
    runner.start()
    run_until(runner, lambda e: isinstance(e, Stopped))
    runner.join(10)
    frames = sorted(p.name for p in (folder / "history" / "Quick96").iterdir())
    assert frames == ["0000000.jpg", "0000002.jpg", "0000004.jpg", "_last.jpg"]
    assert sorted(set(labels)) == [0, 2, 4]  # loss_graph draws no "Iter:" text at 0


def test_preview_sample_chooser(tmp_path: Path) -> None:
    """P shows another candidate, CONFIRM_SAMPLE keeps it as the history sample; nothing is
    trained before that."""
    folder = tmp_path / "choose_Quick96"
    setup = make_setup(quick96.SPEC, folder)
    made: list[Trainer] = []

    def make() -> Trainer:
        made.append(Trainer(setup))
        return made[0]

    schedule = Schedule(target_iter=1, exit_at_target=True, choose_preview_sample=True)
    runner = TrainingRunner(make, schedule)
    runner.start()
    first = run_until(runner, lambda e: isinstance(e, ChooseSample))
    assert not any(isinstance(e, Step) for e in first)
    first_sample = dict(made[0].preview_inputs)  # the runner waits for a key meanwhile
    runner.send(Command.REFRESH_PREVIEW)
    second = run_until(runner, lambda e: isinstance(e, ChooseSample))[-1]
    assert [name for name, _ in second.pages] == ["Quick96", "Quick96 masked"]
    assert not np.array_equal(first[-1].pages[0][1], second.pages[0][1])
    chosen = dict(made[0].preview_inputs)
    runner.send(Command.CONFIRM_SAMPLE)
    events = run_until(runner, lambda e: isinstance(e, Stopped))
    runner.join(10)
    assert events[-1].saved and any(isinstance(e, Step) for e in events)

    stored = ModelStore(folder).load().arrays(PREVIEW_SAMPLES_KEY)
    assert all(np.array_equal(stored[key], chosen[key]) for key in chosen)
    assert not all(np.array_equal(stored[key], first_sample[key]) for key in first_sample)


def test_stop_while_choosing_trains_nothing(tmp_path: Path) -> None:
    setup = make_setup(quick96.SPEC, tmp_path / "stop_Quick96")
    runner = TrainingRunner(lambda: Trainer(setup), Schedule(choose_preview_sample=True))
    runner.start()
    run_until(runner, lambda e: isinstance(e, ChooseSample))
    runner.send(Command.SAVE_AND_EXIT)
    events = run_until(runner, lambda e: isinstance(e, Stopped))
    runner.join(10)
    assert not any(isinstance(e, Step) for e in events)
    assert events[-1].iteration == 0
