"""AMP gives the same losses on TensorFlow, JAX and torch: a tiny configuration with the patch GAN
and learning-rate dropout off, shared initial weights (every network), a fixed batch and a morph
mask drawn on the host; both loss groups' losses before a step, from the step and after it."""

from __future__ import annotations

from pathlib import Path

import keras

from dfl import backend

backend.select(None)

from dfl.models.amp import model as amp  # noqa: E402
from tests.saehd_backend_check import (  # noqa: E402
    assert_backends_agree,
    run_on_every_backend,
)
from tests.test_amp_model import GAN, TINY, random_batch  # noqa: E402

LOSS_TOLERANCE = 1e-4
GROUPS = ["src_dst", "GAN"]


def test_three_backends_give_the_same_amp_losses(tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    options = amp.full_options({**TINY, **GAN, "lr_dropout": "n"})
    model = amp.build(options)
    training = amp.make_training(options, model)
    assert [g.name for g in training.groups] == GROUPS
    batch = amp.step_inputs(options, random_batch(11), 0)
    results = run_on_every_backend(tmp_path, "amp", options, training, batch)
    assert_backends_agree(results, GROUPS, LOSS_TOLERANCE)
