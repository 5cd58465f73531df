"""SAEHD gives the same losses on TensorFlow, JAX and torch: a tiny df-ud configuration with the
patch GAN and the true-face code discriminator, shared initial weights (every network) and a fixed
batch; every loss group's losses before a step, from one multi-group step and after it."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from dfl import backend

backend.select(None)

from dfl.models.saehd import model as saehd  # noqa: E402
from dfl.options import resolve_options  # noqa: E402
from tests.saehd_backend_check import (  # noqa: E402
    assert_backends_agree,
    run_on_every_backend,
)

LOSS_TOLERANCE = 1e-4
BATCH = 2
TINY = {
    "archi": "df-ud",
    "resolution": 64,
    "ae_dims": 32,
    "e_dims": 16,
    "d_dims": 16,
    "d_mask_dims": 16,
    "batch_size": BATCH,
    "face_type": "f",
    "gan_power": 0.1,
    "gan_patch_size": 8,
    "gan_dims": 4,
    "true_face_power": 0.01,
    "lr_dropout": "n",
}
GROUPS = ["src_dst", "D_code", "GAN"]


def test_three_backends_give_the_same_saehd_losses(tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    options = resolve_options(saehd.option_table(None), overrides=TINY).options
    model = saehd.build(options)
    training = saehd.make_training(options, model)
    assert [g.name for g in training.groups] == GROUPS
    rng = np.random.default_rng(0)
    res = int(options["resolution"])
    batch = {}
    for side in ("src", "dst"):
        batch[f"warped_{side}"] = rng.random((BATCH, res, res, 3), dtype=np.float32)
        batch[f"target_{side}"] = rng.random((BATCH, res, res, 3), dtype=np.float32)
        batch[f"mask_{side}"] = (rng.random((BATCH, res, res, 1)) > 0.4).astype(np.float32)
    results = run_on_every_backend(tmp_path, "saehd", options, training, batch)
    assert_backends_agree(results, GROUPS, LOSS_TOLERANCE)
