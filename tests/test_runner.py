"""The trainer and its worker thread, headless, on a tiny Quick96-layout network."""

from __future__ import annotations

import queue
from pathlib import Path

import numpy as np
import pytest

from dfl import backend

backend.select(None)

from dfl.models.quick96 import model as quick96  # noqa: E402
from dfl.store.model_store import ModelStore  # noqa: E402
from dfl.training.events import BackedUp, Command, Error, Message, Preview, Saved, Step, Stopped  # noqa: E402
from dfl.training.runner import Schedule, TrainingRunner  # noqa: E402
from dfl.training.trainer import Trainer, TrainingSetup  # noqa: E402
from tests.helpers import make_setup, run_until, tiny_options  # noqa: E402


def test_save_backup_stop_and_resume_exactly(tmp_path: Path) -> None:
    folder = tmp_path / "tiny_Quick96"
    setup = make_setup(quick96.SPEC, folder, tiny_options(quick96.SPEC, write_preview_history="y"))
    schedule = Schedule(preview_history_every=2)
    runner = TrainingRunner(lambda: Trainer(setup), schedule)
    runner.start()
    events = run_until(
        runner,
        lambda e: isinstance(e, Stopped),
        [Command.SAVE, Command.BACKUP, Command.REFRESH_PREVIEW, Command.SAVE_AND_EXIT],
    )
    runner.join(10)
    steps = [e for e in events if isinstance(e, Step)]
    saves = [e for e in events if isinstance(e, Saved)]
    stopped = events[-1]
    assert stopped.saved
    assert saves[0].iteration == 1  # the save right after the first iteration
    assert saves[-1].iteration == stopped.iteration == steps[-1].iteration
    assert any(isinstance(e, BackedUp) for e in events)
    assert (folder / "autobackups" / "01" / "manifest.json").exists()
    previews = [e for e in events if isinstance(e, Preview)]
    assert previews and [name for name, _ in previews[0].pages] == ["Quick96", "Quick96 masked"]
    assert (folder / "history" / "Quick96" / "_last.jpg").exists()

    loaded = ModelStore(folder).load()
    assert loaded.iteration == stopped.iteration
    resumed = Trainer(_with_loaded(folder, loaded))
    try:
        assert resumed.iteration == stopped.iteration
        assert resumed.loss_history().shape == (stopped.iteration, 2)
        first = Trainer(make_setup(quick96.SPEC, tmp_path / "fresh_Quick96"))
        try:
            enc = resumed.model.networks["encoder"].weights[0].numpy()
            assert not np.allclose(enc, first.model.networks["encoder"].weights[0].numpy())
        finally:
            first.close()
        _ms, losses = resumed.train_one()
        assert resumed.iteration == stopped.iteration + 1
        assert all(np.isfinite(losses))
    finally:
        resumed.close()


def _with_loaded(folder: Path, loaded) -> TrainingSetup:
    setup = make_setup(quick96.SPEC, folder)
    setup.loaded = loaded
    return setup


def test_target_iteration_stops_headless(tmp_path: Path) -> None:
    setup = make_setup(quick96.SPEC, tmp_path / "t_Quick96")
    runner = TrainingRunner(lambda: Trainer(setup), Schedule(target_iter=3, exit_at_target=True))
    runner.start()
    events = run_until(runner, lambda e: isinstance(e, Stopped))
    assert events[-1].iteration == 3 and events[-1].saved
    assert ModelStore(tmp_path / "t_Quick96").load().iteration == 3
    timed = [e.text for e in events if isinstance(e, Message) and "after launch" in e.text]
    assert len(timed) == 1 and timed[0].startswith("First iteration done")

    # Started again already at the target, with nobody to press Enter: it ends at once.
    setup.loaded = ModelStore(tmp_path / "t_Quick96").load()
    runner = TrainingRunner(lambda: Trainer(setup), Schedule(target_iter=3, exit_at_target=True))
    runner.start()
    events = run_until(runner, lambda e: isinstance(e, Stopped))
    assert events[-1].iteration == 3 and not any(isinstance(e, Step) for e in events)


def test_a_failing_trainer_reports_instead_of_hanging(tmp_path: Path) -> None:
    def broken() -> Trainer:
        raise MemoryError("out of memory allocating 4 GB")

    runner = TrainingRunner(broken, Schedule())
    runner.start()
    error = runner.events.get(timeout=10)
    assert isinstance(error, Error)
    assert "lower the batch size" in error.message
    assert isinstance(runner.events.get(timeout=10), Stopped)
    with pytest.raises(queue.Empty):
        runner.events.get(timeout=0.1)
