"""Resuming keeps what DFL keeps: every optimizer moment that still applies (state keyed by weight
name) across lr_dropout, random_warp and pretraining changes, the iteration counters, and the
discriminators' saved state while they are switched off (docs/training.md)."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from dfl import backend

backend.select(None)

from dfl.models.saehd import model as saehd  # noqa: E402
from dfl.store.model_store import ModelStore  # noqa: E402
from dfl.store.optimizer_state import (  # noqa: E402
    COUNTER_KEY,
    is_indexed,
    optimizer_to_arrays,
    restore_optimizer,
)
from dfl.store.weights import weights_to_arrays  # noqa: E402
from dfl.training.trainer import Trainer, TrainingSetup  # noqa: E402
from tests.helpers import make_setup, tiny_options  # noqa: E402

SLOW = pytest.mark.slow  # builds and traces a tiny SAEHD a few times
G_OPT = "src_dst_opt"


def options_for(archi: str, **extra) -> dict:
    return tiny_options(saehd.SPEC, archi=archi, face_type="f", gan_power=0.0, seed=1, **extra)


def setup_for(folder: Path, options: dict, resume: bool = False) -> TrainingSetup:
    loaded = ModelStore(folder).load() if resume else None
    return make_setup(saehd.SPEC, folder, options, loaded=loaded)


def train(folder: Path, options: dict, steps: int, resume: bool) -> tuple[dict, list[str]]:
    """Train `steps` iterations and save; returns (every optimizer's and discriminator's
    arrays after the save, the trainer's notes)."""
    trainer = Trainer(setup_for(folder, options, resume))
    try:
        for _ in range(steps):
            trainer.train_one()
        trainer.save()
        state = {key: optimizer_to_arrays(opt) for key, opt in trainer.optimizers.items()}
        for name in ("GAN", "code_discriminator"):
            if name in trainer.networks:
                state[name] = weights_to_arrays(trainer.networks[name].weights)
        return state, list(trainer.notes)
    finally:
        trainer.close()


def resumed_state(folder: Path, options: dict) -> tuple[Trainer, dict]:
    trainer = Trainer(setup_for(folder, options, resume=True))
    trainer.step_fn.sync()
    return trainer, {key: optimizer_to_arrays(opt) for key, opt in trainer.optimizers.items()}


def assert_same(saved: dict, now: dict, keys) -> None:
    for key in keys:
        np.testing.assert_array_equal(now[key], saved[key], err_msg=key)


def moments(arrays: dict) -> set[str]:
    return {k for k in arrays if k.endswith(("/ms", "/vs", "/acc"))}


@SLOW
def test_lr_dropout_toggle_keeps_the_moments_and_counter(tmp_path: Path) -> None:
    folder = tmp_path / "lrd_SAEHD"
    options = options_for("df-ud", lr_dropout="n")
    saved, _ = train(folder, options, 2, resume=False)
    trainer, now = resumed_state(folder, dict(options, lr_dropout="y"))
    try:
        before, after = saved[G_OPT], now[G_OPT]
        assert moments(after) == moments(before) and len(moments(before)) > 0
        assert np.abs(before["encoder/down1/downs_0/conv1/kernel/ms"]).max() > 0.0  # trained
        assert_same(before, after, moments(before))
        assert int(after[COUNTER_KEY]) == 2
        assert not [n for n in trainer.notes if G_OPT in n], trainer.notes
    finally:
        trainer.close()


@SLOW
def test_random_warp_toggle_on_liae_keeps_frozen_moments(tmp_path: Path) -> None:
    folder = tmp_path / "rw_SAEHD"
    options = options_for("liae-ud", random_warp=True)
    first, _ = train(folder, options, 2, resume=False)
    inter_ab = {k for k in moments(first[G_OPT]) if k.startswith("inter_AB/")}
    assert inter_ab
    # random warp off: inter_AB is frozen; its moments are not trained, but kept on disk
    off = dict(options, random_warp=False)
    second, notes = train(folder, off, 1, resume=True)
    assert not inter_ab & set(second[G_OPT])
    assert not [n for n in notes if G_OPT in n], notes
    trainer, now = resumed_state(folder, options)  # back on: everything is loaded
    try:
        assert_same(first[G_OPT], now[G_OPT], inter_ab)
        others = moments(second[G_OPT])
        assert_same(second[G_OPT], now[G_OPT], others)
        assert int(now[G_OPT][COUNTER_KEY]) == 3
        assert not [n for n in trainer.notes if G_OPT in n], trainer.notes
    finally:
        trainer.close()


@SLOW
def test_a_new_trained_network_is_reported_with_counts(tmp_path: Path) -> None:
    folder = tmp_path / "new_SAEHD"
    options = options_for("liae-ud", random_warp=False)
    train(folder, options, 1, resume=False)
    trainer, now = resumed_state(folder, dict(options, random_warp=True))
    try:
        (note,) = [n for n in trainer.notes if G_OPT in n]
        fresh = [k for k in moments(now[G_OPT]) if k.startswith("inter_AB/")]
        loaded = len(moments(now[G_OPT])) - len(fresh)
        assert f"{loaded} moments loaded" in note and f"{len(fresh)} of " in note
        assert "inter_AB" in note and "start at zero" in note
        assert all(not now[G_OPT][k].any() for k in fresh)
    finally:
        trainer.close()


@SLOW
def test_pretraining_end_keeps_the_moments_and_counter(tmp_path: Path) -> None:
    folder = tmp_path / "pre_SAEHD"
    options = options_for("liae-ud", pretrain=True)
    saved, _ = train(folder, options, 2, resume=False)
    trainer, now = resumed_state(folder, dict(options, pretrain=False))
    try:
        assert trainer.iteration == 0  # the model's count restarts (DFL)
        assert int(now[G_OPT][COUNTER_KEY]) == 2  # the optimizer's counter goes on (DFL)
        assert_same(saved[G_OPT], now[G_OPT], moments(saved[G_OPT]))
        # inter_AB was frozen in pretraining: its moments start at zero, and it is said
        assert any(G_OPT in n and "inter_AB" in n for n in trainer.notes), trainer.notes
    finally:
        trainer.close()


@SLOW
def test_an_old_index_keyed_checkpoint_still_loads(tmp_path: Path) -> None:
    folder = tmp_path / "old_SAEHD"
    options = options_for("df-ud")
    saved, _ = train(folder, options, 2, resume=False)
    # rewrite the checkpoint with the optimizer stored by position, as before name keys
    store = ModelStore(folder)
    loaded = store.load()
    trainer = Trainer(setup_for(folder, options, resume=True))
    try:
        old_group = weights_to_arrays(trainer.optimizers[G_OPT].variables)
    finally:
        trainer.close()
    assert is_indexed(old_group)
    arrays = {key: loaded.arrays(key) for key in loaded.keys}
    arrays[G_OPT] = old_group
    store.save(loaded.state, arrays, summary_text="", loss_rows=loaded.loss_rows)

    trainer, now = resumed_state(folder, options)
    try:
        assert_same(saved[G_OPT], now[G_OPT], moments(saved[G_OPT]) | {COUNTER_KEY})
        assert not [n for n in trainer.notes if G_OPT in n]
    finally:
        trainer.close()
    # another variable list cannot be matched by position: reset, and said
    trainer = Trainer(setup_for(folder, dict(options, lr_dropout="y"), resume=True))
    try:
        assert any(G_OPT in n and "older dfl" in n for n in trainer.notes), trainer.notes
    finally:
        trainer.close()


@SLOW
def test_discriminators_switched_off_are_kept_and_reloaded(tmp_path: Path) -> None:
    folder = tmp_path / "gan_SAEHD"
    on = options_for("df-ud", gan_power=0.1, gan_patch_size=8, gan_dims=4, true_face_power=0.01)
    first, _ = train(folder, on, 2, resume=False)
    off = dict(on, gan_power=0.0, true_face_power=0.0)
    train(folder, off, 1, resume=True)
    assert {"GAN", "GAN_opt", "code_discriminator", "D_code_opt"} <= set(
        ModelStore(folder).load().keys
    )
    trainer = Trainer(setup_for(folder, on, resume=True))
    try:
        trainer.step_fn.sync()
        for name in ("GAN", "code_discriminator"):
            now = weights_to_arrays(trainer.networks[name].weights)
            assert_same(first[name], now, first[name])
        for key in ("GAN_opt", "D_code_opt"):
            assert_same(first[key], optimizer_to_arrays(trainer.optimizers[key]), first[key])
        assert not [n for n in trainer.notes if "afresh" in n], trainer.notes
    finally:
        trainer.close()
    # a changed GAN shape option while it was off: the GAN starts afresh, and it is said
    trainer = Trainer(setup_for(folder, dict(on, gan_patch_size=16), resume=True))
    try:
        assert any("GAN starts afresh" in n for n in trainer.notes), trainer.notes
    finally:
        trainer.close()


def test_restore_optimizer_reports_and_keeps_unused_slots() -> None:
    optimizer = saehd.make_optimizer(options_for("df-ud"), name="opt")
    a = keras.Variable(np.ones((2, 3), "float32"), name="a")
    optimizer.build([a])
    saved = optimizer_to_arrays(optimizer)
    assert set(moments(saved)) == {f"{a.path}/ms", f"{a.path}/vs"}
    stored = {
        **saved,
        f"{a.path}/ms": np.full((2, 3), 0.5, "float32"),
        "gone/kernel/ms": np.ones(2),
    }
    report = restore_optimizer(optimizer, stored)
    assert report.loaded == 2 and report.counter_loaded and report.note("opt") is None
    assert set(report.kept) == {"gone/kernel/ms"}
    np.testing.assert_array_equal(optimizer_to_arrays(optimizer)[f"{a.path}/ms"], 0.5)
