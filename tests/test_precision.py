"""bf16 mixed precision (decision 5): layers compute in bfloat16 while weights, outputs and losses
stay float32; a non-finite bf16 step turns bf16 off for the model and is done again in float32."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import pytest

from dfl import backend

backend.select(None)

from dfl.models.saehd import model as saehd  # noqa: E402
from dfl.nn.keras_internals import sublayers  # noqa: E402
from dfl.training.trainer import Trainer  # noqa: E402
from tests.helpers import (  # noqa: E402
    changed_networks,
    make_setup,
    network_weights,
    tiny_options,
)

TINY = {"archi": "df-ud", "face_type": "f", "gan_power": 0.1, "gan_patch_size": 8, "gan_dims": 4}


@pytest.fixture(autouse=True)
def float32_afterwards() -> Iterator[None]:
    yield
    keras.config.set_dtype_policy("float32")  # the policy is global: leave it as found


def make_trainer(folder: Path, **extra: object) -> Trainer:
    """A tiny df-ud SAEHD with the GAN on (its own precision too), on the fixture faceset."""
    return Trainer(
        make_setup(saehd.SPEC, folder, tiny_options(saehd.SPEC, **TINY, **extra), seed=3)
    )


def compute_dtypes(trainer: Trainer) -> set[str]:
    encoder = trainer.model.networks["encoder"]
    return {layer.compute_dtype for layer in sublayers(encoder)}


def poison_the_next_batch(trainer: Trainer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trainer's next batch holds a NaN pixel; the ones after it are clean."""
    real_next_inputs = trainer.setup.spec.next_inputs
    poisoned = {"left": 1}

    def next_inputs(iteration, inputs, previous):
        inputs = dict(real_next_inputs(iteration, inputs, previous))
        if poisoned["left"]:
            poisoned["left"] -= 1
            inputs["warped_src"] = inputs["warped_src"].copy()
            inputs["warped_src"][0, 0, 0, 0] = np.nan
        return inputs

    spec = dataclasses.replace(trainer.setup.spec, next_inputs=next_inputs)
    monkeypatch.setattr(trainer.setup, "spec", spec)


def test_bf16_trains_in_bfloat16_then_a_non_finite_step_falls_back_to_float32(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One model (building and compiling is most of the cost): two bf16 steps, then a NaN."""
    trainer = make_trainer(tmp_path / "m", bf16=True)
    try:
        assert compute_dtypes(trainer) == {"bfloat16"}
        assert {str(w.dtype) for w in trainer.model.weights} == {"float32"}
        before = network_weights(trainer)
        for _ in range(2):
            _ms, losses = trainer.train_one()
            assert all(np.isfinite(losses))
        assert trainer.iteration == 2 and trainer.setup.options["bf16"] is True
        after = network_weights(trainer)
        assert changed_networks(before, after)
        outputs = trainer.model(trainer.last_inputs, training=False)
        assert keras.backend.standardize_dtype(outputs["pred_src"].dtype) == "float32"
        assert keras.backend.standardize_dtype(outputs["pred_dst_mask"].dtype) == "float32"

        poison_the_next_batch(trainer, monkeypatch)
        before = after
        trainer.train_one()
        # bf16 is off, for good, and the step done again in float32 (still NaN: skipped)
        assert trainer.setup.options["bf16"] is False
        assert compute_dtypes(trainer) == {"float32"}
        assert any("bf16 is now off" in m for m in trainer.take_messages())
        assert trainer.take_messages() == []
        assert trainer.last_step_skipped and trainer.iteration == 2
        assert changed_networks(before, network_weights(trainer)) == set()
        _ms, losses = trainer.train_one()  # training goes on in float32
        assert all(np.isfinite(losses)) and trainer.iteration == 3
        assert trainer.state().options["bf16"] is False  # saved with the model
    finally:
        trainer.close()


def test_fp32_is_the_default(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path / "m")
    try:
        assert trainer.setup.options["bf16"] is False
        assert compute_dtypes(trainer) == {"float32"}
    finally:
        trainer.close()
