"""Tests for the Quick96 model module: architecture, losses, optimizer, schedule, training step."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from dfl import backend
from dfl.models.quick96 import model as quick96
from dfl.nn import losses
from dfl.nn.optimizers import RMSprop
from tests.helpers import to_np

BATCH = 2


def make_batch(resolution: int, batch: int = BATCH, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for side in ("src", "dst"):
        out[f"warped_{side}"] = rng.random((batch, resolution, resolution, 3), dtype=np.float32)
        out[f"target_{side}"] = rng.random((batch, resolution, resolution, 3), dtype=np.float32)
        mask = rng.random((batch, resolution, resolution, 1)) > 0.4
        out[f"mask_{side}"] = mask.astype(np.float32)
    return out


def test_quick96_parameter_count_and_shapes():
    model = quick96.build({})
    assert isinstance(model, keras.Model)
    assert abs(model.count_params() - 38.29e6) < 0.01e6
    assert set(model.networks) == {"encoder", "inter", "decoder_src", "decoder_dst"}
    enc, inter, dec = (model.networks[k] for k in ("encoder", "inter", "decoder_src"))
    assert tuple(enc.output.shape) == (None, 6 * 6 * 512)
    assert tuple(inter.output.shape) == (None, 6, 6, 128)
    assert [tuple(o.shape) for o in dec.outputs] == [(None, 96, 96, 3), (None, 96, 96, 1)]
    inter_dense = [layer.units for layer in inter.layers if isinstance(layer, keras.layers.Dense)]
    assert inter_dense == [128, 3 * 3 * 128]
    assert model.networks["decoder_dst"].count_params() == dec.count_params()
    # stable, DFL-like layer names so that saved weights map by name
    assert [layer.name for layer in dec.layers if layer.weights][:4] == [
        "upscale0",
        "res0",
        "upscale1",
        "res1",
    ]
    paths = [v.path for v in model.trainable_variables]
    assert len(paths) == len(set(paths))
    assert "decoder_src/out_convm/kernel" in paths


@pytest.mark.parametrize("opts", ["ud", "u", "udt"])
def test_tiny_architectures_shapes(opts):
    arch = quick96.Architecture(64 if "t" in opts else 32, 16, 4, 4, 2, opts)
    model = quick96.build({}, arch)
    batch = make_batch(arch.resolution)
    outputs = model(batch)
    res = arch.resolution
    assert tuple(outputs["pred_src"].shape) == (BATCH, res, res, 3)
    assert tuple(outputs["pred_dst_mask"].shape) == (BATCH, res, res, 1)
    pred = to_np(outputs["pred_src"])
    assert pred.min() >= 0.0
    assert pred.max() <= 1.0


def np_side_loss(target, mask, pred, pred_mask, res):
    """docs/training.md §4 with the project's own (already tested) DSSIM and blur."""
    blurred = to_np(losses.gaussian_blur(mask, max(1, res // 32)))
    t, p = target * blurred, pred * blurred
    dssim = to_np(losses.dssim(t, p, int(res / 11.6))).mean(axis=-1)
    mse = ((t - p) ** 2).mean(axis=(1, 2, 3))
    mask_mse = ((mask - pred_mask) ** 2).mean(axis=(1, 2, 3))
    return 10 * dssim + 10 * mse + 10 * mask_mse


def test_compute_losses_reduction():
    res = 32
    batch = make_batch(res, batch=3)
    rng = np.random.default_rng(9)
    outputs = {
        "pred_src": rng.random((3, res, res, 3), dtype=np.float32),
        "pred_src_mask": rng.random((3, res, res, 1), dtype=np.float32),
        "pred_dst": rng.random((3, res, res, 3), dtype=np.float32),
        "pred_dst_mask": rng.random((3, res, res, 1), dtype=np.float32),
    }
    got = {k: float(to_np(v)) for k, v in quick96.compute_losses(outputs, batch).items()}
    src = np_side_loss(
        batch["target_src"], batch["mask_src"], outputs["pred_src"], outputs["pred_src_mask"], res
    )
    dst = np_side_loss(
        batch["target_dst"], batch["mask_dst"], outputs["pred_dst"], outputs["pred_dst_mask"], res
    )
    np.testing.assert_allclose(got["loss"], (src + dst).sum(), rtol=1e-5)
    np.testing.assert_allclose(got["src_loss"], src.mean(), rtol=1e-5)
    np.testing.assert_allclose(got["dst_loss"], dst.mean(), rtol=1e-5)


def test_quick96_settings():
    assert quick96.SPEC.name == "Quick96"
    assert quick96.SPEC.asks_options is False
    assert quick96.architecture({}) == quick96.QUICK96
    assert quick96.architecture(quick96.TINY_OPTIONS) == quick96.TINY
    assert quick96.Architecture(96, 128, 64, 64, 16, opts="ud") == quick96.QUICK96
    assert [quick96.batch_size({}, n) for n in (0, 1, 2, 3, 4, 8)] == [4, 4, 4, 3, 4, 8]
    optimizer = quick96.make_optimizer({})
    assert isinstance(optimizer, RMSprop)
    config = optimizer.get_config()
    assert config["learning_rate"] == pytest.approx(2e-4)
    assert config["lr_dropout"] == pytest.approx(0.3)
    assert config["rho"] == pytest.approx(0.9)
    assert config["clipnorm"] == 0.0
    assert config["lr_cos"] == 0


def test_next_inputs_reuses_previous_batch_every_third_iteration():
    previous = make_batch(8, seed=1)
    fresh = make_batch(8, seed=2)
    assert quick96.next_inputs(0, fresh, None) is fresh
    assert quick96.next_inputs(1, fresh, previous) is fresh
    assert quick96.next_inputs(2, fresh, previous) is fresh
    reused = quick96.next_inputs(3, fresh, previous)
    assert reused["warped_src"] is previous["target_src"]
    assert reused["warped_dst"] is previous["target_dst"]
    assert reused["mask_dst"] is previous["mask_dst"]
    assert previous["warped_src"] is not previous["target_src"]  # the caller's batch is untouched
    assert quick96.next_inputs(6, None, previous)["warped_src"] is previous["target_src"]


def test_tiny_training_reduces_loss_and_previews():
    keras.utils.set_random_seed(0)
    model = quick96.build({}, quick96.TINY)
    optimizer = quick96.make_optimizer({})
    step = backend.make_model_step(model, quick96.compute_losses, optimizer)
    batch = make_batch(quick96.TINY.resolution, batch=4)
    before = step.evaluate(batch)
    assert set(before) == {"loss", "src_loss", "dst_loss"}
    assert before["loss"] == pytest.approx(4 * (before["src_loss"] + before["dst_loss"]), rel=1e-5)
    for _ in range(20):
        losses_now = step(batch)
        assert all(np.isfinite(v) for v in losses_now.values())
    after = step.evaluate(batch)
    assert after["loss"] < 0.98 * before["loss"]
    assert after["src_loss"] < before["src_loss"]
    assert after["dst_loss"] < before["dst_loss"]

    step.sync()
    preview = model.predict_preview(batch["target_src"][:3], batch["target_dst"][:3])
    res = quick96.TINY.resolution
    assert set(preview) == {"ss", "ssm", "dd", "ddm", "sd", "sdm"}
    for key, value in preview.items():
        assert isinstance(value, np.ndarray)
        assert value.shape == (3, res, res, 1 if key.endswith("m") else 3)
    sd, sdm = model.swap(batch["target_dst"][:3])
    np.testing.assert_allclose(sd, preview["sd"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sdm, preview["sdm"], rtol=1e-5, atol=1e-6)
    # the synced Keras weights give the step's losses
    outputs = model(
        {"warped_src": batch["warped_src"], "warped_dst": batch["warped_dst"]}, training=False
    )
    direct = float(to_np(quick96.compute_losses(outputs, batch)["loss"]))
    assert direct == pytest.approx(after["loss"], rel=1e-4)

    # a non-finite loss changes neither the weights nor the optimizer state
    weights = model.get_weights()
    iterations = int(to_np(optimizer.iterations))
    assert iterations == 20
    bad = dict(batch, target_src=np.full_like(batch["target_src"], np.nan))
    assert not np.isfinite(step(bad)["loss"])
    step.sync()
    assert int(to_np(optimizer.iterations)) == iterations
    for got, want in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(got, want)
    assert step(batch)["loss"] == pytest.approx(after["loss"], rel=1e-5)
