"""The AMP model (docs/networks.md §5; docs/training.md §3, §6-7; docs/dfl-trainer.md §6):
network shapes and the parameter count, morph mixing, the losses against numpy, the frozen
inters, the GAN group, the previews and a tiny headless train/save/resume through
dfl.training.trainer."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from dfl import backend

backend.select(None)

from dfl.interop.deepfacelab import mapping, reader  # noqa: E402
from dfl.models import registry  # noqa: E402
from dfl.models.amp import losses as amp_losses  # noqa: E402
from dfl.models.amp import model as amp  # noqa: E402
from dfl.models.amp import network as amp_archi  # noqa: E402
from dfl.nn import losses  # noqa: E402
from dfl.nn.optimizers import AdaBelief  # noqa: E402
from dfl.store.model_store import ModelStore  # noqa: E402
from dfl.training.trainer import Trainer  # noqa: E402
from tests import helpers  # noqa: E402
from tests.helpers import (  # noqa: E402
    changed_networks,
    make_setup,
    network_weights,
    owning_networks,
    to_np,
)

RES = 64
BATCH = 2
TINY = {**amp.TINY_OPTIONS, "face_type": "f"}
GAN = {"gan_power": 0.1, "gan_patch_size": 8, "gan_dims": 4}
DEFAULT_PARAMETERS = 101_345_195  # docs/networks.md §5: ≈ 101.35 M at 224 px


def tiny_options(**extra) -> dict:
    return amp.full_options({**TINY, **extra})


def random_batch(seed: int = 0, batch: int = BATCH, res: int = RES) -> dict[str, np.ndarray]:
    return helpers.random_batch(res, batch, seed, extra_masks=("em",))  # AMP's eye-and-mouth masks


@pytest.fixture(scope="module")
def tiny_model() -> amp_archi.AMPAutoencoder:
    keras.utils.set_random_seed(3)
    return amp.build(tiny_options())


# ------------------------------------------------------------------------------ networks
def test_parameter_count_at_the_default_224_config():
    counts = amp_archi.parameter_count(amp.architecture({}))
    assert sum(counts.values()) == DEFAULT_PARAMETERS
    assert round(counts["encoder"] / 1e6, 1) == 22.1
    assert round(counts["inter_src"] / 1e6, 1) == 12.9
    assert counts["decoder"] == pytest.approx((45.1 + 8.3) * 1e6, rel=2e-3)  # RGB + mask


def test_shapes_and_the_counting_formula_match_the_built_networks(tiny_model):
    arch = tiny_model.arch
    assert arch.inter_res == 2
    assert set(tiny_model.networks) == {"encoder", "inter_src", "inter_dst", "decoder"}
    assert set(amp.TRAINED_NETWORKS) == {"encoder", "decoder"}
    assert set(amp.FROZEN_NETWORKS) == set(tiny_model.networks) - set(amp.TRAINED_NETWORKS)
    counts = amp_archi.parameter_count(arch)
    for name, net in tiny_model.networks.items():
        assert net.count_params() == counts[name], name
        assert isinstance(net, keras.Model) and net.inputs, name  # functional sub-models
    assert tuple(tiny_model.encoder.outputs[0].shape) == (None, 32)
    assert tuple(tiny_model.inter_src.outputs[0].shape) == (None, 2, 2, 32)
    image, mask = tiny_model.decoder.outputs
    assert tuple(image.shape) == (None, RES, RES, 3) and tuple(mask.shape) == (None, RES, RES, 1)
    layers = [layer.name for layer in tiny_model.encoder.layers]
    assert layers[-3:] == ["flatten", "pixel_norm", "dense1"]
    inputs = amp.step_inputs(tiny_options(), random_batch(), 0)
    out = tiny_model(inputs)
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "pred_src": (BATCH, RES, RES, 3),
        "pred_src_mask": (BATCH, RES, RES, 1),
        "pred_dst": (BATCH, RES, RES, 3),
        "pred_dst_mask": (BATCH, RES, RES, 1),
    }
    with pytest.raises(KeyError, match="morph_mask"):
        tiny_model(random_batch())


def test_layer_names_and_shapes_match_a_model_dfl_saved():
    """Every variable has its counterpart in DFL's own files of a tiny AMP model (same name after
    the importer's mapping, same shape), so DFL weights load into these layers as they are."""
    folder = Path(__file__).parent / "data" / "dfl-models" / "tiny-amp-64"
    dims = {"ae_dims": 32, "inter_dims": 64, "e_dims": 16, "d_dims": 16, "d_mask_dims": 16}
    model = amp.build({**dims, "resolution": RES})
    for name, net in model.networks.items():
        theirs = reader.read_weights(folder / f"tiny_AMP_{name}.npy")
        theirs = {key.removesuffix(":0"): tuple(w.shape) for key, w in theirs.items()}
        mine = {
            mapping.dfl_weight_name(v.path, name, amp.SPEC): tuple(v.shape) for v in net.weights
        }
        assert mine == theirs, name


def test_resolution_must_be_a_multiple_of_32():
    with pytest.raises(ValueError, match="multiple of 32"):
        amp_archi.AMPArchitecture(resolution=80)


# --------------------------------------------------------------------------------- morph
def test_morph_mask_has_exactly_k_random_ones_per_sample():
    rng = np.random.default_rng(0)
    mask = amp.morph_mask(rng, 16, 1024, 0.5)
    assert mask.dtype == np.float32 and mask.shape == (16, 1024)
    assert set(np.unique(mask)) == {0.0, 1.0}
    assert (mask.sum(axis=1) == 512).all()
    assert len({row.tobytes() for row in mask}) == 16  # each sample its own subset
    assert (amp.morph_mask(rng, 4, 100, 0.33).sum(axis=1) == 33).all()
    assert (amp.morph_mask(rng, 4, 1024, 0.1).sum(axis=1) == 102).all()
    # drawn from the iteration and the batch: reproducible, different per iteration
    options, batch = tiny_options(), random_batch()
    first = amp.step_inputs(options, batch, 7)["morph_mask"]
    assert np.array_equal(first, amp.step_inputs(options, batch, 7)["morph_mask"])
    assert not np.array_equal(first, amp.step_inputs(options, batch, 8)["morph_mask"])
    assert (first.sum(axis=1) == 16).all()


def test_swap_takes_the_first_k_channels_from_inter_src(tiny_model):
    images = random_batch()["target_dst"]
    features = tiny_model.encoder(images)
    src, dst = to_np(tiny_model.inter_src(features)), to_np(tiny_model.inter_dst(features))
    for value, k in ((0.0, 0), (0.25, 8), (0.65, 20), (1.0, 32)):
        (code,) = tiny_model.morph_codes(images, (value,))
        code = to_np(code)
        np.testing.assert_array_equal(code[..., :k], src[..., :k])
        np.testing.assert_array_equal(code[..., k:], dst[..., k:])
    # the training call: an all-ones mask is src through inter_src, dst always via inter_dst
    batch = random_batch()
    ones = {**batch, "morph_mask": np.ones((BATCH, 32), np.float32)}
    out = tiny_model(ones)
    (src_full, _), *_ = tiny_model.predict_morph(batch["warped_src"], (1.0,))
    (dd, ddm), (sd, _) = tiny_model.predict_morph(batch["warped_dst"], (0.0, 1.0))
    np.testing.assert_allclose(to_np(out["pred_src"]), src_full, atol=1e-5)
    np.testing.assert_allclose(to_np(out["pred_dst"]), dd, atol=1e-5)
    np.testing.assert_allclose(to_np(out["pred_dst_mask"]), ddm, atol=1e-5)
    mixed = {**batch, "morph_mask": amp.morph_mask(np.random.default_rng(1), BATCH, 32, 0.5)}
    ss, _ = tiny_model.predict_mixed(batch["warped_src"], mixed["morph_mask"])
    np.testing.assert_allclose(to_np(tiny_model(mixed)["pred_src"]), ss, atol=1e-5)
    assert not np.allclose(sd, dd)


# -------------------------------------------------------------------------------- losses
def test_loss_config_windows_and_fixed_choices():
    config = amp_losses.AMPLossConfig.from_options(amp.full_options({}))
    assert config.masked_training and config.eyes_mouth_prio
    assert config.dssim_windows == ((5.0, 19), (5.0, 9))  # two scales at 224 (docs/training.md §3)
    assert amp_losses.AMPLossConfig(resolution=64).dssim_windows == ((5.0, 5), (5.0, 2))
    assert config.mask_blur_radius == 7
    assert not config.trains_gan
    assert amp_losses.AMPLossConfig.from_options(tiny_options(**GAN)).trains_gan


def test_generator_terms_against_numpy():
    batch = random_batch(5)
    rng = np.random.default_rng(6)
    outputs = {
        "pred_src": rng.random((BATCH, RES, RES, 3), dtype=np.float32),
        "pred_src_mask": rng.random((BATCH, RES, RES, 1), dtype=np.float32),
        "pred_dst": rng.random((BATCH, RES, RES, 3), dtype=np.float32),
        "pred_dst_mask": rng.random((BATCH, RES, RES, 1), dtype=np.float32),
    }
    config = amp_losses.AMPLossConfig(resolution=RES)
    terms = {k: to_np(v) for k, v in amp_losses.generator_terms(outputs, batch, config).items()}
    assert set(terms) == {
        *(f"{s}_{t}" for s in ("src", "dst") for t in ("dssim", "mse", "eyes_mouth", "mask")),
        "background",
        "background_tv",
    }
    for side in ("src", "dst"):
        t, p = batch[f"target_{side}"], outputs[f"pred_{side}"]
        m, em = batch[f"mask_{side}"], batch[f"em_{side}"]
        mb = np.clip(to_np(losses.gaussian_blur(m, RES // 32)), 0.0, 0.5) * 2.0
        mse = 10.0 * ((t * mb - p * mb) ** 2).mean(axis=(1, 2, 3))
        np.testing.assert_allclose(terms[f"{side}_mse"], mse, rtol=1e-5)
        eyes = 300.0 * np.abs(t * em - p * em).mean(axis=(1, 2, 3))
        np.testing.assert_allclose(terms[f"{side}_eyes_mouth"], eyes, rtol=1e-5)
        mask = 10.0 * ((m - outputs[f"pred_{side}_mask"]) ** 2).mean(axis=(1, 2, 3))
        np.testing.assert_allclose(terms[f"{side}_mask"], mask, rtol=1e-5)
        dssim = sum(5.0 * to_np(losses.dssim(t * mb, p * mb, w)).mean(-1) for w in (5, 2))
        np.testing.assert_allclose(terms[f"{side}_dssim"], dssim, rtol=1e-5)
    anti = 1.0 - np.clip(to_np(losses.gaussian_blur(batch["mask_dst"], 2)), 0.0, 0.5) * 2.0
    pd, td = outputs["pred_dst"] * anti, batch["target_dst"] * anti
    np.testing.assert_allclose(
        terms["background"], 0.1 * ((pd - td) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5
    )
    tv = ((pd[:, 1:] - pd[:, :-1]) ** 2).sum(axis=(1, 2, 3))
    tv += ((pd[:, :, 1:] - pd[:, :, :-1]) ** 2).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(terms["background_tv"], 1e-6 * tv, rtol=1e-4)

    reported = amp_losses.generator_losses(outputs, batch, config)
    src = sum(terms[k] for k in terms if k.startswith("src_"))
    dst = sum(terms[k] for k in terms if k.startswith("dst_"))
    assert float(reported["src_loss"]) == pytest.approx(src.mean(), rel=1e-5)
    assert float(reported["dst_loss"]) == pytest.approx(dst.mean(), rel=1e-5)
    total = src + dst + terms["background"] + terms["background_tv"]
    assert float(reported["loss"]) == pytest.approx(total.sum(), rel=1e-5)


# ----------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    ("extra", "dropout", "cos", "clip"),
    [
        ({}, 1.0, 0, 0.0),
        ({"lr_dropout": "y"}, 0.3, 500, 0.0),
        ({"lr_dropout": "cpu"}, 0.3, 500, 0.0),  # behaves like y in AMP (docs/training.md §6)
        ({"clipgrad": True}, 1.0, 0, 1.0),
    ],
)
def test_make_optimizer(extra, dropout, cos, clip):
    opt = amp.make_optimizer(tiny_options(**extra))
    assert isinstance(opt, AdaBelief)
    assert float(opt.learning_rate) == pytest.approx(5e-5)
    assert (opt.lr_dropout, opt.lr_cos, opt.global_clip) == (dropout, cos, clip)


def test_augment_configs_and_registry():
    src, dst = amp.augment_configs(
        tiny_options(face_type="wf", ct_mode="rct", uniform_yaw=True, random_src_flip=True)
    )
    assert src.face_type == dst.face_type == "whole_face"
    assert src.eyes_mouth and dst.eyes_mouth
    assert src.ct_mode == "rct" and dst.ct_mode is None
    assert src.uniform_yaw and src.random_flip and dst.random_flip
    assert src.scale_range == (-0.15, 0.15) and src.random_hsv_power == 0.0
    src, _ = amp.augment_configs(tiny_options(random_warp=False))
    assert not src.random_warp and src.ct_mode is None
    assert amp.batch_size({"batch_size": 8}, 3) == 6
    assert "AMP" in registry.MODELS and registry.load("amp") is amp.SPEC
    fresh, reset, notes = amp.fresh_on_resume(
        tiny_options(**GAN), tiny_options(**{**GAN, "gan_dims": 8})
    )
    assert fresh == {"GAN", "GAN_opt"} and not reset and "gan_dims" in notes[0]
    assert amp.fresh_on_resume(tiny_options(**GAN), tiny_options(**GAN)) == (set(), False, [])


# ------------------------------------------------------------------------------ previews
def test_preview_pages(tiny_model):
    batch = random_batch(2, batch=4)
    pages = amp.preview(tiny_model, batch, fixed=True)
    assert [name for name, _ in pages] == [
        "AMP morph 1.0",
        "AMP morph list",
        "AMP morph list masked",
    ]
    for _, page in pages:
        assert page.shape == (2 * RES, 3 * RES, 3) and page.dtype == np.uint8
    again = amp.preview(tiny_model, batch, fixed=True)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(pages, again, strict=True))
    first = np.clip(batch["target_src"][0] * 255 + 0.5, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(pages[0][1][:RES, :RES], first)  # the history shows row 0
    unmasked, masked = pages[1][1], pages[2][1]
    np.testing.assert_array_equal(unmasked[:RES, :RES], masked[:RES, :RES])  # DD tile unmasked
    assert not np.array_equal(unmasked[RES:], masked[RES:])
    assert len(amp.preview(tiny_model, batch)) == 3  # live: a random row


# ------------------------------------------------------------------- training (headless)
def test_tiny_amp_trains_with_frozen_inters_saves_and_resumes(tmp_path: Path) -> None:
    folder = tmp_path / "tiny_AMP"
    options = amp.full_options({**TINY, **GAN, "lr_dropout": "y", "ct_mode": "rct"})
    options.update({"random_src_flip": False, "random_dst_flip": True, "batch_size": BATCH})
    trainer = Trainer(make_setup(amp.SPEC, folder, options))
    try:
        assert [g.name for g in trainer.training.groups] == ["src_dst", "GAN"]
        assert set(trainer.optimizers) == {"src_dst_opt", "GAN_opt"}
        before = network_weights(trainer)
        for _ in range(2):
            _, result = trainer.train_one()
            assert all(np.isfinite(result))
        # the inters stay frozen: the generator trains the encoder and decoder only, the GAN
        # group its own weights (a group changes only its variables: tests/backend_checks.py)
        assert changed_networks(before, network_weights(trainer)) == {"encoder", "decoder", "GAN"}
        owners = {g.name: owning_networks(trainer, g.variables) for g in trainer.training.groups}
        assert owners == {"src_dst": {"encoder", "decoder"}, "GAN": {"GAN"}}
        pages = trainer.preview_pages(fixed=True)
        assert [p.shape for _, p in pages] == [(2 * RES, 3 * RES, 3)] * 3
        trainer.save()
        saved = network_weights(trainer)
    finally:
        trainer.close()
    loaded = ModelStore(folder).load()
    for key in ("encoder", "inter_src", "inter_dst", "decoder", "src_dst_opt", "GAN", "GAN_opt"):
        assert loaded.has(key), key

    resumed = Trainer(make_setup(amp.SPEC, folder, options, loaded))
    try:
        assert resumed.iteration == 2
        assert changed_networks(saved, network_weights(resumed)) == set()
        resumed.train_one()
        assert resumed.iteration == 3
    finally:
        resumed.close()
