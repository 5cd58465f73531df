"""SAEHD gives the same losses on TensorFlow, JAX and torch: a tiny df-ud configuration with the
patch GAN and the true-face code discriminator, shared initial weights (every network) and a fixed
batch; every loss group's losses before a step, from one multi-group step and after it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from dfl import backend

backend.select(None)

from dfl.models import saehd  # noqa: E402
from dfl.options import resolve_options  # noqa: E402

HERE = Path(__file__).resolve().parent
CHILD_TIMEOUT_S = 300
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
    weights = {
        f"w_{mi:02d}_{wi:04d}": w
        for mi, net in enumerate(training.models)
        for wi, w in enumerate(net.get_weights())
    }
    case = tmp_path / "case.npz"
    np.savez(
        case,
        options=np.array(json.dumps(options)),
        **weights,
        **{f"b_{k}": v for k, v in batch.items()},
    )
    children = {
        name: subprocess.Popen(
            [sys.executable, str(HERE / "saehd_backend_check.py"), str(case)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "KERAS_BACKEND": name},
        )
        for name in backend.BACKENDS
    }
    results = {}
    for name, child in children.items():
        out, err = child.communicate(timeout=CHILD_TIMEOUT_S)
        assert child.returncode == 0, f"{name}: {err[-3000:]}"
        results[name] = json.loads(out.strip().splitlines()[-1])
        assert results[name]["backend"] == name
        assert results[name]["groups"] == GROUPS

    reference = results["tensorflow"]
    keys = sorted(reference["before"])
    assert {"src_dst_loss", "D_code_loss", "GAN_loss"} <= set(keys)
    for phase in ("before", "step", "after"):
        assert sorted(reference[phase]) == keys
        assert all(np.isfinite(reference[phase][k]) for k in keys)
    for group in GROUPS:  # one step moves every group's objective down
        assert reference["after"][f"{group}_loss"] < reference["before"][f"{group}_loss"], group
    for name, result in results.items():
        for phase in ("before", "step", "after"):
            assert sorted(result[phase]) == keys, (name, phase)
            for key in keys:
                assert result[phase][key] == pytest.approx(
                    reference[phase][key], abs=LOSS_TOLERANCE
                ), (name, phase, key, result[phase][key], reference[phase][key])
