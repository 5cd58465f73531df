"""SAEHD loss terms (dfl.nn.losses additions, dfl.models.saehd.losses) against numpy references
(docs/training.md §1-2)."""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest
from keras import ops
from numpy.lib.stride_tricks import sliding_window_view

from dfl.models.quick96 import model as quick96
from dfl.models.saehd import losses as sl
from dfl.nn import archi_networks as networks
from dfl.nn import autoencoders as archi
from dfl.nn import discriminators, losses
from tests.helpers import to_np

to_np64 = functools.partial(to_np, dtype=np.float64)  # compared with float64 references

RES = 32
B = 2


# ----------------------------------------------------------------------------- numpy references
def np_corr1d(x: np.ndarray, g: np.ndarray, axis: int) -> np.ndarray:
    """VALID correlation of x with the 1-D window g along `axis` (float64)."""
    windows = sliding_window_view(x.astype(np.float64), len(g), axis=axis)
    return np.tensordot(windows, g, axes=([-1], [0]))


def np_sep_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """VALID NHWC filtering with the separable window outer(g, g) (g sums to 1)."""
    return np_corr1d(np_corr1d(x, g, axis=1), g, axis=2)


def np_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    ks = max(3, int(4 * sigma))
    ks += ks % 2 == 0
    g = np.exp(-((np.arange(ks) - ks // 2) ** 2) / (2 * sigma**2))
    p = ks // 2
    return np_sep_valid(np.pad(x, ((0, 0), (p, p), (p, p), (0, 0))), g / g.sum())


def np_dssim(x: np.ndarray, y: np.ndarray, size: int) -> np.ndarray:
    """(1 - SSIM)/2 averaged over channels: (B,)."""
    g = np.exp(-((np.arange(size) - (size - 1) / 2) ** 2) / (2 * 1.5**2))
    g /= g.sum()
    c1, c2 = 1e-4, 9e-4
    mx, my = np_sep_valid(x, g), np_sep_valid(y, g)
    sxx = np_sep_valid(x * x, g) - mx**2
    syy = np_sep_valid(y * y, g) - my**2
    sxy = np_sep_valid(x * y, g) - mx * my
    ssim = ((2 * mx * my + c1) / (mx**2 + my**2 + c1)) * ((2 * sxy + c2) / (sxx + syy + c2))
    return ((1 - ssim.mean(axis=(1, 2))) / 2).mean(axis=-1)


def np_mse(a, b):
    return ((a - b) ** 2).mean(axis=(1, 2, 3))


def np_mae(a, b):
    return np.abs(a - b).mean(axis=(1, 2, 3))


def np_style(a: np.ndarray, b: np.ndarray, radius: float, weight: float) -> np.ndarray:
    if radius > 0:
        a, b = np_blur(a, radius), np_blur(b, radius)
    ma, mb = a.mean(axis=(1, 2)), b.mean(axis=(1, 2))
    sa = np.sqrt(a.var(axis=(1, 2)) + 1e-5)
    sb = np.sqrt(b.var(axis=(1, 2)) + 1e-5)
    return (((ma - mb) ** 2).sum(-1) + ((sa - sb) ** 2).sum(-1)) * weight / a.shape[-1]


def np_tv(x: np.ndarray) -> np.ndarray:
    return ((x[:, 1:] - x[:, :-1]) ** 2).sum(axis=(1, 2, 3)) + (
        (x[:, :, 1:] - x[:, :, :-1]) ** 2
    ).sum(axis=(1, 2, 3))


def np_bce(label: float, logits: np.ndarray) -> np.ndarray:
    """-[z·log σ(x) + (1-z)·log(1-σ(x))], per sample mean; log σ via logaddexp (stable)."""
    x = logits.astype(np.float64)
    per = label * np.logaddexp(0, -x) + (1 - label) * np.logaddexp(0, x)
    return per.reshape(len(x), -1).mean(axis=1)


def np_mask_blur(m: np.ndarray, res: int) -> np.ndarray:
    return np.clip(np_blur(m, max(1, res // 32)), 0, 0.5) * 2


def np_blur_out(t: np.ndarray, m: np.ndarray, sigma: float) -> np.ndarray:
    x = np_blur(t * (1 - m), sigma)
    y = 1 - np_blur(m, sigma)
    y = np.where(y == 0, 1.0, y)
    return t * m + (x / y) * (1 - m)


# toy discriminators written twice: keras.ops for the code under test, numpy for the reference
def toy_gan(x):
    center = ops.mean(x, axis=(1, 2, 3), keepdims=True) * 6.0 - 2.0
    pixels = (x[..., 0:1] - x[..., 1:2]) * 5.0 + x[..., 2:3]
    return center, pixels


def np_toy_gan(x):
    return x.mean(axis=(1, 2, 3), keepdims=True) * 6 - 2, (x[..., 0:1] - x[..., 1:2]) * 5 + x[
        ..., 2:3
    ]


def toy_code_d(code):
    return ops.mean(code, axis=-1, keepdims=True) * 3.0


def np_toy_code_d(code):
    return code.mean(axis=-1, keepdims=True) * 3


# ------------------------------------------------------------------------------------ test data
def disc_masks(res: int, radii, rng) -> np.ndarray:
    yy, xx = np.mgrid[:res, :res]
    out = []
    for r in radii:
        cy, cx = res / 2 + rng.uniform(-2, 2), res / 2 + rng.uniform(-2, 2)
        out.append(((yy - cy) ** 2 + (xx - cx) ** 2 <= r**2).astype(np.float32))
    return np.stack(out)[..., None]


def make_batch(res: int = RES, batch: int = B, seed: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)

    def image():
        coarse = rng.random((batch, res // 4, res // 4, 3))
        return np.clip(
            coarse.repeat(4, 1).repeat(4, 2) + 0.1 * rng.random((batch, res, res, 3)), 0, 1
        )

    radii = np.linspace(res * 0.25, res * 0.4, batch)
    inputs = {
        "target_src": image(),
        "target_dst": image(),
        "mask_src": disc_masks(res, radii, rng),
        "mask_dst": disc_masks(res, radii[::-1], rng),
        "em_src": rng.random((batch, res, res, 1)) * disc_masks(res, radii / 3, rng),
        "em_dst": rng.random((batch, res, res, 1)) * disc_masks(res, radii / 3, rng),
    }
    outputs = {
        "pred_src": image(),
        "pred_dst": image(),
        "pred_src_dst": image(),
        "pred_src_dst_no_code_grad": image(),
        "pred_src_mask": rng.random((batch, res, res, 1)),
        "pred_dst_mask": rng.random((batch, res, res, 1)),
        "pred_src_dst_no_code_grad_mask": rng.random((batch, res, res, 1)),
        "src_code": rng.standard_normal((batch, 2, 2, 8)),
        "dst_code": rng.standard_normal((batch, 2, 2, 8)),
    }
    as32 = lambda d: {k: np.asarray(v, np.float32) for k, v in d.items()}  # noqa: E731
    return as32(inputs), as32(outputs)


def np_generator_terms(outputs: dict, inputs: dict, cfg: sl.LossConfig) -> dict:
    """docs/training.md §2 written out in numpy."""
    o = {k: v.astype(np.float64) for k, v in outputs.items()}
    i = {k: v.astype(np.float64) for k, v in inputs.items()}
    res = cfg.resolution
    terms = {}
    sides = {}
    for side in ("src", "dst"):
        t, m = i[f"target_{side}"], i[f"mask_{side}"]
        if cfg.blur_out_mask:
            t = np_blur_out(t, m, res / 128)
        sides[side] = (t, m, np_mask_blur(m, res))
    for side, pred, pm in (
        ("src", "pred_src", "pred_src_mask"),
        ("dst", "pred_dst", "pred_dst_mask"),
    ):
        t, m, mb = sides[side]
        p = o[pred]
        tm, pmk = (t * mb, p * mb) if cfg.masked_training else (t, p)
        if res < 256:
            terms[f"{side}_dssim"] = 10 * np_dssim(tm, pmk, int(res / 11.6))
        else:
            terms[f"{side}_dssim"] = 5 * np_dssim(tm, pmk, int(res / 11.6)) + 5 * np_dssim(
                tm, pmk, int(res / 23.2)
            )
        terms[f"{side}_mse"] = 10 * np_mse(tm, pmk)
        if cfg.eyes_mouth_prio:
            em = i[f"em_{side}"]
            terms[f"{side}_eyes_mouth"] = 300 * np_mae(t * em, p * em)
        terms[f"{side}_mask"] = 10 * np_mse(m, o[pm])
    if cfg.face_style_power and not cfg.pretrain:
        w = cfg.face_style_power / 100
        terms["face_style"] = np_style(
            o["pred_src_dst_no_code_grad"] * o["pred_src_dst_no_code_grad_mask"],
            o["pred_dst"] * o["pred_dst_mask"],
            res // 8,
            10000 * w,
        )
    if cfg.bg_style_power and not cfg.pretrain:
        w = cfg.bg_style_power / 100
        anti = 1 - np.clip(sides["src"][2], 0, 1)
        a, b = o["pred_src_dst"] * anti, sides["dst"][0] * anti
        terms["bg_style"] = 10 * w * np_dssim(a, b, int(res / 11.6)) + 10 * w * np_mse(a, b)
    if cfg.true_face_power:
        terms["true_face"] = cfg.true_face_power * np_bce(1, np_toy_code_d(o["src_code"]))
    if cfg.gan_power and not cfg.pretrain:
        t, _, mb = sides["src"]
        p = o["pred_src"]
        c, px = np_toy_gan(p * mb if cfg.masked_training else p)
        terms["gan"] = cfg.gan_power * (np_bce(1, c) + np_bce(1, px))
        if cfg.masked_training:
            terms["gan_tv"] = 1e-6 * np_tv(p)
            terms["gan_bg"] = 0.02 * np_mse(p * (1 - mb), t * (1 - mb))
    return terms


# ------------------------------------------------------------------------ dfl.nn.losses additions
def test_style_loss_matches_numpy():
    _, o = make_batch()
    a, b = o["pred_src"], o["pred_dst"]
    for radius, weight in ((0.0, 1.0), (4, 7.5)):
        got = to_np64(losses.style_loss(a, b, blur_radius=radius, weight=weight))
        assert got.shape == (B,)
        np.testing.assert_allclose(got, np_style(a, b, radius, weight), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(to_np64(losses.style_loss(a, a, 2, 100.0)), 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="channel"):
        losses.style_loss(a, o["pred_src_mask"])


def test_total_variation_mae_and_blurred_masks_match_numpy():
    i, o = make_batch()
    np.testing.assert_allclose(
        to_np64(losses.total_variation_mse(o["pred_src"])), np_tv(o["pred_src"]), rtol=1e-5
    )
    np.testing.assert_allclose(
        to_np64(losses.mae(o["pred_src"], o["pred_dst"])),
        np_mae(o["pred_src"], o["pred_dst"]),
        rtol=1e-5,
    )
    m = i["mask_src"]
    mb = to_np64(losses.clipped_mask_blur(m, max(1, RES // 32)))
    np.testing.assert_allclose(mb, np_mask_blur(m, RES), atol=1e-6)
    # 1 wherever the mask is 1 (grown outward), 0 far outside, a ramp in between
    assert np.all(mb[m > 0] > 0.999)
    assert mb[0, 0, 0, 0] == 0.0
    assert np.any((mb > 0.05) & (mb < 0.95) & (m == 0))
    # at res 256 the blur is σ 8 with a 33 px kernel (docs/training.md §1)
    assert losses.blur_window(max(1, 256 // 32)).shape == (33, 33)


def test_blur_out_mask_matches_numpy():
    i, _ = make_batch()
    t, m = i["target_src"], i["mask_src"]
    for sigma in (RES / 128, 2.0):
        got = to_np64(losses.blur_out_mask(t, m, sigma))
        np.testing.assert_allclose(got, np_blur_out(t, m, sigma), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got[m[..., 0] > 0], t[m[..., 0] > 0], atol=1e-6)  # face kept
    # a mask that is 1 everywhere: y = 0 is replaced by 1 and the target comes back unchanged
    ones = np.ones_like(m)
    np.testing.assert_allclose(to_np64(losses.blur_out_mask(t, ones, 2.0)), t, atol=1e-6)


def test_cross_entropy_and_dfl_label_conventions():
    logits = np.array([[-100.0, -3.0, 0.0], [0.5, 4.0, 100.0]], np.float32).reshape(2, 1, 3, 1)
    for label in (0.0, 1.0):
        got = to_np64(losses.bce(label, logits))
        assert got.shape == (2,) and np.all(np.isfinite(got))
        np.testing.assert_allclose(got, np_bce(label, logits), rtol=1e-5, atol=1e-6)
    elem = to_np64(losses.sigmoid_cross_entropy(np.full_like(logits, 0.3), logits))
    x = logits.astype(np.float64)
    np.testing.assert_allclose(
        elem, np.maximum(x, 0) - 0.3 * x + np.log1p(np.exp(-np.abs(x))), rtol=1e-5
    )
    # D: real -> 1, fake -> 0; G: fake -> 1
    real, fake = logits[1:], logits[:1]
    np.testing.assert_allclose(
        to_np64(losses.discriminator_loss(real, fake)),
        0.5 * (np_bce(1, real) + np_bce(0, fake)),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        to_np64(losses.generator_adversarial_loss(fake)), np_bce(1, fake), rtol=1e-5
    )
    confident = np.full((1, 2, 2, 1), 20.0, np.float32)
    assert to_np64(losses.discriminator_loss(confident, -confident))[0] < 1e-8
    assert to_np64(losses.generator_adversarial_loss(-confident))[0] > 19.0


# --------------------------------------------------------------------------------- LossConfig
def test_dssim_windows_by_resolution():
    windows = {r: sl.LossConfig(r).dssim_windows for r in (96, 128, 224, 256, 320, 512)}
    assert windows[96] == ((10.0, 8),)
    assert windows[128] == ((10.0, 11),)
    assert windows[224] == ((10.0, 19),)  # SAEHD uses one window below 256 (AMP would use two)
    assert windows[256] == ((5.0, 22), (5.0, 11))
    assert windows[320] == ((5.0, 27), (5.0, 13))
    assert windows[512] == ((5.0, 44), (5.0, 22))


def test_config_weights_pretrain_and_options():
    cfg = sl.LossConfig(256, face_style_power=10.0, bg_style_power=2.0, gan_power=0.1)
    assert cfg.mask_blur_radius == 8 and cfg.blur_out_sigma == 2.0 and cfg.face_style_blur == 32
    assert cfg.face_style_weight == pytest.approx(1000.0)  # 10000 · 10/100
    assert cfg.bg_style_weight == pytest.approx(0.2)  # 10 · 2/100
    assert cfg.trains_gan and cfg.gan_weight == 0.1
    pre = sl.LossConfig(
        256,
        face_style_power=10.0,
        bg_style_power=2.0,
        gan_power=0.1,
        true_face_power=0.01,
        pretrain=True,
    )
    assert pre.face_style_weight == 0 and pre.bg_style_weight == 0 and not pre.trains_gan
    # DFL still adds the G-side true-face term in pretrain, but never trains D_code then
    assert pre.uses_true_face and not pre.trains_code_discriminator
    assert sl.LossConfig(64).mask_blur_radius == 2 and sl.LossConfig(16).mask_blur_radius == 1

    opts = {"resolution": 128, "archi": "liae-ud", "true_face_power": 0.5, "masked_training": False}
    cfg = sl.LossConfig.from_options(opts)
    assert cfg.true_face_power == 0.0 and not cfg.masked_training  # true face is df only
    cfg = sl.LossConfig.from_options({**opts, "archi": "df-ud", "eyes_mouth_prio": True})
    assert cfg.true_face_power == 0.5 and cfg.eyes_mouth_prio
    assert set(cfg.required_inputs()) >= {"em_src", "em_dst"}
    assert "src_code" in cfg.required_outputs() and "pred_src_dst" not in cfg.required_outputs()
    full = sl.LossConfig(128, face_style_power=1, bg_style_power=1)
    assert {"pred_src_dst", "pred_src_dst_no_code_grad", "pred_src_dst_no_code_grad_mask"} <= set(
        full.required_outputs()
    )


# ---------------------------------------------------------------------------- generator terms
ALL_ON = {
    "eyes_mouth_prio": True,
    "blur_out_mask": True,
    "face_style_power": 10.0,
    "bg_style_power": 5.0,
    "true_face_power": 0.3,
    "gan_power": 0.5,
}


@pytest.mark.parametrize(
    "extra",
    [
        {},
        ALL_ON,
        {**ALL_ON, "masked_training": False},
        {**ALL_ON, "pretrain": True},
    ],
    ids=["defaults", "all-on", "unmasked", "pretrain"],
)
def test_generator_terms_match_numpy(extra):
    inputs, outputs = make_batch()
    cfg = sl.LossConfig(RES, **extra)
    got = sl.generator_terms(
        outputs, inputs, cfg, gan_discriminator=toy_gan, code_discriminator=toy_code_d
    )
    want = np_generator_terms(outputs, inputs, cfg)
    assert set(got) == set(want)
    for key, value in want.items():
        np.testing.assert_allclose(to_np64(got[key]), value, rtol=2e-4, atol=1e-6, err_msg=key)
    if extra is ALL_ON:
        assert {
            "src_eyes_mouth",
            "face_style",
            "bg_style",
            "true_face",
            "gan",
            "gan_tv",
            "gan_bg",
        } <= set(got)


def test_eyes_mouth_term_weight_is_300_on_unmasked_images():
    inputs, outputs = make_batch()
    cfg = sl.LossConfig(RES, eyes_mouth_prio=True, masked_training=True)
    got = to_np64(sl.generator_terms(outputs, inputs, cfg)["dst_eyes_mouth"])
    em = inputs["em_dst"].astype(np.float64)
    ref = np.abs(inputs["target_dst"] * em - outputs["pred_dst"] * em).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(got, 300 * ref, rtol=1e-5)
    assert "dst_eyes_mouth" not in sl.generator_terms(outputs, inputs, sl.LossConfig(RES))


def test_two_dssim_windows_at_256():
    inputs, outputs = make_batch(res=256, batch=1, seed=3)
    cfg = sl.LossConfig(256)
    got = sl.generator_terms(outputs, inputs, cfg)
    want = np_generator_terms(outputs, inputs, cfg)
    for key in ("src_dssim", "dst_dssim", "src_mse", "dst_mask"):
        np.testing.assert_allclose(to_np64(got[key]), want[key], rtol=2e-4, atol=1e-6, err_msg=key)
    t = inputs["target_src"] * np_mask_blur(inputs["mask_src"], 256)
    p = outputs["pred_src"] * np_mask_blur(inputs["mask_src"], 256)
    one_window = 10 * np_dssim(t, p, 22)
    assert not np.allclose(to_np64(got["src_dssim"]), one_window, rtol=1e-3)


def test_generator_losses_sum_the_batch_and_report_means():
    inputs, outputs = make_batch()
    cfg = sl.LossConfig(RES, **ALL_ON)
    res = sl.generator_losses(
        outputs, inputs, cfg, gan_discriminator=toy_gan, code_discriminator=toy_code_d
    )
    want = np_generator_terms(outputs, inputs, cfg)
    src = sum(v for k, v in want.items() if k.startswith("src_") or k in ("face_style", "bg_style"))
    dst = sum(v for k, v in want.items() if k.startswith("dst_"))
    g = src + dst + want["true_face"] + want["gan"] + want["gan_tv"] + want["gan_bg"]
    np.testing.assert_allclose(float(to_np64(res["loss"])), g.sum(), rtol=2e-4)
    np.testing.assert_allclose(float(to_np64(res["src_loss"])), src.mean(), rtol=2e-4)
    np.testing.assert_allclose(float(to_np64(res["dst_loss"])), dst.mean(), rtol=2e-4)
    np.testing.assert_allclose(float(to_np64(res["gan"])), want["gan"].mean(), rtol=2e-4)
    with pytest.raises(ValueError, match="code discriminator"):
        sl.generator_losses(outputs, inputs, cfg, gan_discriminator=toy_gan)
    with pytest.raises(ValueError, match="GAN"):
        sl.generator_losses(outputs, inputs, cfg, code_discriminator=toy_code_d)


# ----------------------------------------------------------------------- discriminator losses
def test_code_discriminator_loss_dst_is_real():
    _, outputs = make_batch()
    got = sl.code_discriminator_losses(toy_code_d, outputs)
    per = 0.5 * (
        np_bce(1, np_toy_code_d(outputs["dst_code"].astype(np.float64)))
        + np_bce(0, np_toy_code_d(outputs["src_code"].astype(np.float64)))
    )
    np.testing.assert_allclose(float(to_np64(got["loss"])), per.sum(), rtol=1e-5)
    np.testing.assert_allclose(float(to_np64(got["d_code_loss"])), per.mean(), rtol=1e-5)
    # swapping the roles of the codes changes the loss: dst codes are labelled real
    swapped = {"src_code": outputs["dst_code"], "dst_code": outputs["src_code"]}
    assert (
        abs(float(to_np64(sl.code_discriminator_losses(toy_code_d, swapped)["loss"])) - per.sum())
        > 1e-3
    )


@pytest.mark.parametrize("masked", [True, False])
def test_gan_discriminator_loss_matches_numpy(masked):
    inputs, outputs = make_batch()
    cfg = sl.LossConfig(RES, gan_power=0.1, masked_training=masked, blur_out_mask=True)
    got = sl.gan_discriminator_losses(toy_gan, outputs, inputs, cfg)
    t = np_blur_out(inputs["target_src"].astype(np.float64), inputs["mask_src"], RES / 128)
    p = outputs["pred_src"].astype(np.float64)
    mb = np_mask_blur(inputs["mask_src"], RES) if masked else 1.0
    (fc, fp), (rc, rp) = np_toy_gan(p * mb), np_toy_gan(t * mb)
    per = 0.5 * (np_bce(1, rc) + np_bce(0, fc)) + 0.5 * (np_bce(1, rp) + np_bce(0, fp))
    np.testing.assert_allclose(float(to_np64(got["loss"])), per.sum(), rtol=1e-5)
    np.testing.assert_allclose(float(to_np64(got["gan_d_loss"])), per.mean(), rtol=1e-5)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="uses tf.GradientTape")
def test_stop_gradients_route_each_term():
    import tensorflow as tf

    inputs, outputs = make_batch()
    tensors = {k: tf.Variable(v) for k, v in outputs.items()}
    cfg = sl.LossConfig(RES, face_style_power=10.0)
    with tf.GradientTape(persistent=True) as tape:
        face = sl.generator_terms(tensors, inputs, cfg)["face_style"]
        d_code = sl.code_discriminator_losses(toy_code_d, tensors)["loss"]
        gan_d = sl.gan_discriminator_losses(toy_gan, tensors, inputs, cfg)["loss"]
    # face style trains the decoder through pred_src_dst_no_code_grad only
    assert tape.gradient(face, tensors["pred_src_dst_no_code_grad"]) is not None
    for key in ("pred_src_dst_no_code_grad_mask", "pred_dst", "pred_dst_mask", "pred_src_dst"):
        assert tape.gradient(face, tensors[key]) is None, key
    # the D losses never reach the generator's outputs
    assert tape.gradient(d_code, tensors["src_code"]) is None
    assert tape.gradient(d_code, tensors["dst_code"]) is None
    assert tape.gradient(gan_d, tensors["pred_src"]) is None


# ------------------------------------------------------------------ with real networks (tiny)
def df_forward(ae: quick96.DFAutoencoder, inputs: dict, cfg: sl.LossConfig) -> dict:
    """A df forward pass producing every output the SAEHD losses can ask for (what
    models/saehd/model.py needs to provide; liae differs only in how the codes are built)."""
    images = ops.concatenate([inputs["warped_src"], inputs["warped_dst"]], axis=0)
    src_code, dst_code = ops.split(ae.inter(ae.encoder(images)), 2, axis=0)
    out = {"src_code": src_code, "dst_code": dst_code}
    out["pred_src"], out["pred_src_mask"] = ae.decoder_src(src_code)
    out["pred_dst"], out["pred_dst_mask"] = ae.decoder_dst(dst_code)
    if cfg.face_style_weight > 0:
        out["pred_src_dst_no_code_grad"], out["pred_src_dst_no_code_grad_mask"] = ae.decoder_src(
            ops.stop_gradient(dst_code)
        )
    if cfg.bg_style_weight > 0:
        out["pred_src_dst"], _ = ae.decoder_src(dst_code)
    return out


def test_losses_with_tiny_networks_and_real_discriminators():
    keras.utils.set_random_seed(0)
    arch = quick96.TINY
    ae = quick96.build({}, arch)
    gan = discriminators.build_unet_patch_discriminator(arch.resolution // 8, base_ch=4)
    code_d = discriminators.build_code_discriminator(arch.ae_dims, arch.code_res, base_ch=8)
    inputs, _ = make_batch(res=arch.resolution)
    inputs["warped_src"], inputs["warped_dst"] = inputs["target_src"], inputs["target_dst"]
    cfg = sl.LossConfig(arch.resolution, **ALL_ON)
    outputs = df_forward(ae, inputs, cfg)
    assert set(cfg.required_outputs()) <= set(outputs)
    g = sl.generator_losses(outputs, inputs, cfg, gan_discriminator=gan, code_discriminator=code_d)
    d_code = sl.code_discriminator_losses(code_d, outputs)
    gan_d = sl.gan_discriminator_losses(gan, outputs, inputs, cfg)
    for result in (g, d_code, gan_d):
        assert all(np.isfinite(to_np64(v)).all() for v in result.values())
    # fresh discriminators sit near chance: BCE ≈ log 2 for each of the D's outputs
    assert 0.5 < float(to_np64(d_code["d_code_loss"])) < 0.9
    assert 1.0 < float(to_np64(gan_d["gan_d_loss"])) < 1.8


@pytest.mark.parametrize("layout", ["df", "liae"])
def test_required_outputs_match_the_autoencoders_extra_outputs(layout):
    """The output names agreed with dfl.nn.autoencoders (written in parallel): every key the
    losses ask for comes out of the autoencoder built with the matching extra outputs."""
    keras.utils.set_random_seed(0)
    arch = networks.Architecture(32, 32, 8, 8, 4, "ud")
    cfg = sl.LossConfig(
        32, face_style_power=10.0, bg_style_power=5.0, true_face_power=0.1 if layout == "df" else 0
    )
    extras = ("swap", "swap_no_code_grad") + (("codes",) if layout == "df" else ())
    model = archi.build_autoencoder(layout, arch, extras)
    inputs, _ = make_batch(res=32)
    inputs["warped_src"], inputs["warped_dst"] = inputs["target_src"], inputs["target_dst"]
    outputs = model(inputs, training=True)
    assert set(cfg.required_outputs()) <= set(outputs)
    code_d = None
    if layout == "df":
        code_d = discriminators.build_code_discriminator(32, arch.code_res, base_ch=8)
    result = sl.generator_losses(outputs, inputs, cfg, code_discriminator=code_d)
    assert {"face_style", "bg_style"} <= set(result)
    assert all(np.isfinite(to_np64(v)).all() for v in result.values())
