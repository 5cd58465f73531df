"""SAEHD end to end, headless: a tiny configuration trains, saves and resumes; each loss group
(generator, true-face code discriminator, patch GAN) changes only its own weights."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from dfl import backend

backend.select(None)

from dfl.models.saehd import model as saehd  # noqa: E402
from dfl.options import resolve_options  # noqa: E402
from dfl.store.model_store import ModelStore  # noqa: E402
from dfl.store.weights import PREVIEW_SAMPLES_KEY  # noqa: E402
from dfl.training.events import Error, Saved, Stopped  # noqa: E402
from dfl.training.runner import Schedule, TrainingRunner  # noqa: E402
from dfl.training.trainer import Trainer  # noqa: E402
from tests.helpers import (  # noqa: E402
    changed_networks,
    make_setup,
    network_weights,
    owning_networks,
)

EVENT_TIMEOUT_S = 120
TINY = {
    "resolution": 64,
    "ae_dims": 32,
    "e_dims": 16,
    "d_dims": 16,
    "d_mask_dims": 16,
    "batch_size": 2,
    "face_type": "f",
}


def options_for(archi: str, **extra) -> dict:
    given = {"archi": archi, **TINY, "gan_power": 0.1, "gan_patch_size": 8, "gan_dims": 4}
    if archi.startswith("df"):
        given["true_face_power"] = 0.01
    given.update(extra)
    return resolve_options(saehd.option_table(None), overrides=given).options


@pytest.mark.parametrize("archi", ["df-ud", "liae-ud"])
def test_tiny_saehd_trains_saves_and_resumes(tmp_path: Path, archi: str) -> None:
    folder = tmp_path / f"tiny_{archi}_SAEHD"
    options = options_for(archi)
    trainer = Trainer(make_setup(saehd.SPEC, folder, options))
    try:
        groups = [g.name for g in trainer.training.groups]
        expected = ["src_dst", "D_code", "GAN"] if archi.startswith("df") else ["src_dst", "GAN"]
        assert groups == expected
        before = network_weights(trainer)
        for _ in range(2):
            _, losses = trainer.train_one()
            assert all(np.isfinite(losses))
        assert changed_networks(before, network_weights(trainer)) == set(trainer.networks)
        # each group trains its own networks (a group changes only its variables:
        # tests/backend_checks.py); the discriminators are not the generator's
        owners = {g.name: owning_networks(trainer, g.variables) for g in trainer.training.groups}
        assert owners.pop("src_dst") == set(trainer.model.networks)
        assert owners == (
            {"GAN": {"GAN"}, "D_code": {"code_discriminator"}}
            if archi.startswith("df")
            else {"GAN": {"GAN"}}
        )
        trainer.save()
        saved = network_weights(trainer)
    finally:
        trainer.close()
    loaded = ModelStore(folder).load()
    keys = set(loaded.keys)
    for key in ("src_dst_opt", "GAN_opt", "GAN", "preview_samples", "encoder"):
        assert any(k.startswith(key) for k in keys), (key, keys)
    if archi.startswith("df"):
        assert any(k.startswith("D_code_opt") for k in keys)
        assert any(k.startswith("code_discriminator") for k in keys)

    resumed = Trainer(make_setup(saehd.SPEC, folder, options, loaded))
    try:
        assert resumed.iteration == 2
        assert changed_networks(saved, network_weights(resumed)) == set()
        resumed.train_one()
        assert resumed.iteration == 3
    finally:
        resumed.close()

    # a changed GAN patch size re-initialises the GAN only
    changed_gan = dict(options, gan_patch_size=16)
    again = Trainer(make_setup(saehd.SPEC, folder, changed_gan, ModelStore(folder).load()))
    try:
        assert any("GAN starts afresh" in n for n in again.notes)
        assert again.iteration == 2
    finally:
        again.close()


def test_runner_trains_saehd_and_pretrain_off_restarts(tmp_path: Path) -> None:
    folder = tmp_path / "pre_SAEHD"
    options = options_for("liae-ud", pretrain=True, gan_power=0.0)
    schedule = Schedule(target_iter=2, exit_at_target=True)
    runner = TrainingRunner(lambda: Trainer(make_setup(saehd.SPEC, folder, options)), schedule)
    runner.start()
    events = []
    while True:
        event = runner.events.get(timeout=EVENT_TIMEOUT_S)
        events.append(event)
        assert not isinstance(event, Error), event
        if isinstance(event, Stopped):
            break
    runner.join(10)
    assert any(isinstance(e, Saved) and e.iteration == 2 for e in events)

    off = dict(options, pretrain=False)
    loaded = ModelStore(folder).load()
    setup = make_setup(saehd.SPEC, folder, off, loaded)
    setup.seed = 2  # the user's faces: other samples than the pretraining run drew
    trainer = Trainer(setup)
    try:
        assert trainer.iteration == 0
        # the stored preview sample showed pretraining faces: a new one is drawn (DFL)
        pretrain_sample = loaded.arrays(PREVIEW_SAMPLES_KEY)
        assert not all(
            np.array_equal(trainer.preview_inputs[k], pretrain_sample[k]) for k in pretrain_sample
        )
        assert any("Pretraining switched off" in n for n in trainer.notes)
        assert len(trainer.loss_history()) == 0
        inter = keras.ops.convert_to_numpy(trainer.networks["inter_B"].weights[0])
        stored = loaded.arrays("inter_B")
        assert not np.array_equal(inter, stored[sorted(stored)[0]])
        enc = keras.ops.convert_to_numpy(trainer.networks["encoder"].weights[0])
        stored = loaded.arrays("encoder")
        assert np.array_equal(enc, stored[sorted(stored)[0]])
    finally:
        trainer.close()
