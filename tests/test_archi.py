"""Tests for dfl.nn.archi_networks and dfl.nn.autoencoders: DeepFakeArchi blocks, df and liae
autoencoders."""

from __future__ import annotations

import hashlib

import keras
import numpy as np
import pytest
from keras import ops

from dfl.models.quick96 import model as quick96
from dfl.nn import archi_networks
from dfl.nn import autoencoders as archi
from dfl.nn import blocks as nn
from tests.helpers import to_np

RES = 32  # every opts combination is valid at 32 px (multiple of 32)
TINY_DIMS = {"ae_dims": 16, "e_dims": 4, "d_dims": 4, "d_mask_dims": 2}

# Quick96's networks, variable paths and shapes in saved order, from before autoencoders.py existed:
# checkpoints map weights by this order and these names, so it must never change.
QUICK96_WEIGHTS_SHA256 = "3fb4d511f2ab3218319b78213e7bd791ea38940e9ae431f211505511646989d4"
QUICK96_TRAINABLE_SHA256 = "a702dd07395e508f2c345ea1c3a671b2d12bc450420a6d8c6b5cb9a0b8111bd0"


def images(n: int, res: int = RES, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, res, res, 3), dtype=np.float32)


def tiny(opts: str, res: int = RES) -> archi_networks.Architecture:
    return archi_networks.Architecture(res, opts=opts, **TINY_DIMS)


def test_quick96_uses_dfl_archi_with_unchanged_weights():
    assert quick96.Architecture is archi_networks.Architecture
    assert quick96.DFAutoencoder is archi.DFAutoencoder
    model = quick96.build({})
    assert model.count_params() == 38_294_330
    rows = [
        f"{name}:{w.path}:{'x'.join(map(str, w.shape))}"
        for name, net in model.networks.items()
        for w in net.weights
    ]
    assert hashlib.sha256("\n".join(rows).encode()).hexdigest() == QUICK96_WEIGHTS_SHA256
    paths = "\n".join(v.path for v in model.trainable_variables)
    assert hashlib.sha256(paths.encode()).hexdigest() == QUICK96_TRAINABLE_SHA256
    assert model.name == "df"
    assert model.extra_outputs == ()


def test_architecture_checks_opts_and_resolution():
    with pytest.raises(ValueError, match="unknown archi opts 'x'"):
        archi_networks.Architecture(64, 16, 4, 4, 2, "ux")
    with pytest.raises(ValueError, match="multiple of 32"):
        archi_networks.Architecture(80, 16, 4, 4, 2, "ud")
    with pytest.raises(ValueError, match="multiple of 32"):
        archi_networks.Architecture(80, 16, 4, 4, 2, "t")
    with pytest.raises(ValueError, match="multiple of 16"):
        archi_networks.Architecture(72, 16, 4, 4, 2, "u")
    arch = archi_networks.Architecture(256, 256, 64, 64, 22, "ud")
    assert (arch.lowest_dense_res, arch.encoder_res, arch.code_res) == (8, 16, 16)
    assert arch.encoder_out_dims == 16 * 16 * 512
    arch_t = archi_networks.Architecture(256, 256, 64, 64, 22, "udt")
    assert (arch_t.lowest_dense_res, arch_t.encoder_res, arch_t.code_res) == (8, 8, 8)
    assert archi_networks.Architecture(80, 16, 4, 4, 2, "uc").resolution_multiple == 16


def test_cosine_blocks_compute_x_cos_x():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 8, 8, 3)).astype(np.float32) * 2

    def xcos(v):
        v = to_np(v)
        return v * np.cos(v)

    down = archi_networks.CosDownscale(4, 5, name="down")
    np.testing.assert_allclose(to_np(down(x)), xcos(down.conv1(x)), rtol=1e-5, atol=1e-6)

    up = archi_networks.CosUpscale(2, name="up")
    got = to_np(up(x))  # builds the layer (and its conv) first
    want = to_np(nn.depth_to_space(ops.convert_to_tensor(xcos(up.conv1(x)))))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    res = archi_networks.CosResidualBlock(3, name="res")
    got = to_np(res(x))
    y = to_np(res.conv2(ops.convert_to_tensor(xcos(res.conv1(x)))))
    np.testing.assert_allclose(got, xcos(x + y), rtol=1e-5, atol=1e-5)

    block = archi_networks.CosDownscaleBlock(2, 3, 5, name="block")
    out = block(x)
    assert tuple(out.shape) == (2, 1, 1, 8)
    assert [type(d) for d in block.downs] == [archi_networks.CosDownscale] * 3
    assert [w.path for w in block.weights] == [
        f"block/downs_{i}/conv1/{k}" for i in range(3) for k in ("kernel", "bias")
    ]


@pytest.mark.parametrize("layout", ["df", "liae"])
def test_cosine_archi_has_the_same_variables(layout):
    plain = archi.build_autoencoder(layout, tiny("udt"))
    cosine = archi.build_autoencoder(layout, tiny("udtc"))
    assert [(v.path, tuple(v.shape)) for v in plain.weights] == [
        (v.path, tuple(v.shape)) for v in cosine.weights
    ]
    decoder = cosine.networks["decoder" if layout == "liae" else "decoder_src"]
    acts = {type(layer).__name__ for layer in decoder.layers}
    assert {"CosUpscale", "CosResidualBlock"} <= acts
    assert not {"Upscale", "ResidualBlock"} & acts


def test_df_predictions_follow_the_df_wiring():
    keras.utils.set_random_seed(3)
    model = archi.build_autoencoder("df", tiny("ud"), extra_outputs=("swap", "codes"))
    ws, wd = images(2, seed=1), images(2, seed=2)
    out = model({"warped_src": ws, "warped_dst": wd})
    enc, inter = model.encoder, model.inter
    src_code = inter(enc(ws))
    dst_code = inter(enc(wd))
    expect = {
        "pred_src": model.decoder_src(src_code)[0],
        "pred_src_mask": model.decoder_src(src_code)[1],
        "pred_dst": model.decoder_dst(dst_code)[0],
        "pred_dst_mask": model.decoder_dst(dst_code)[1],
        "pred_src_dst": model.decoder_src(dst_code)[0],
        "pred_src_dst_mask": model.decoder_src(dst_code)[1],
        "src_code": src_code,
        "dst_code": dst_code,
    }
    assert set(out) == set(expect)
    for key, value in expect.items():
        np.testing.assert_allclose(to_np(out[key]), to_np(value), rtol=1e-5, atol=1e-6)


def test_liae_predictions_follow_dfls_construction():
    keras.utils.set_random_seed(4)
    model = archi.build_autoencoder(
        "liae", tiny("ud"), extra_outputs=("swap", "swap_no_code_grad", "codes")
    )
    assert list(model.networks) == ["encoder", "inter_AB", "inter_B", "decoder"]
    ws, wd = images(2, seed=1), images(2, seed=2)
    out = model({"warped_src": ws, "warped_dst": wd})
    e_s, e_d = model.encoder(ws), model.encoder(wd)
    ab_s, ab_d, b_d = model.inter_AB(e_s), model.inter_AB(e_d), model.inter_B(e_d)
    src_code = ops.concatenate([ab_s, ab_s], axis=-1)
    dst_code = ops.concatenate([b_d, ab_d], axis=-1)
    swap_code = ops.concatenate([ab_d, ab_d], axis=-1)
    ps, psm = model.decoder(src_code)
    pd, pdm = model.decoder(dst_code)
    psd, psdm = model.decoder(swap_code)
    expect = {
        "pred_src": ps,
        "pred_src_mask": psm,
        "pred_dst": pd,
        "pred_dst_mask": pdm,
        "pred_src_dst": psd,
        "pred_src_dst_mask": psdm,
        "pred_src_dst_no_code_grad": psd,
        "pred_src_dst_no_code_grad_mask": psdm,
        "src_code": src_code,
        "dst_code": dst_code,
    }
    assert set(out) == set(expect)
    for key, value in expect.items():
        np.testing.assert_allclose(to_np(out[key]), to_np(value), rtol=1e-5, atol=1e-6)
    # the unwarped-target preview runs the same paths, in chunks of PREVIEW_CHUNK
    n = archi.PREVIEW_CHUNK + 1
    ts, td = images(n, seed=5), images(n, seed=6)
    preview = model.predict_preview(ts, td)
    full = model({"warped_src": ts, "warped_dst": td})
    np.testing.assert_allclose(preview["ss"], to_np(full["pred_src"]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(preview["ddm"], to_np(full["pred_dst_mask"]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(preview["sd"], to_np(full["pred_src_dst"]), rtol=1e-5, atol=1e-6)
    _, sdm = model.swap(td)
    np.testing.assert_allclose(sdm, preview["sdm"], rtol=1e-5, atol=1e-6)


def test_liae_network_shapes_at_256():
    """docs/networks.md §3: liae-ud at 256, on symbolic shapes only (no big forward pass)."""
    arch = archi_networks.Architecture(256, 256, 64, 64, 22, "ud")
    enc = archi_networks.build_encoder(arch)
    inter = archi_networks.build_inter(arch, 512, name="inter_AB")
    dec = archi_networks.build_decoder(arch, 1024)
    assert tuple(enc.output.shape) == (None, 131072)
    assert tuple(inter.output.shape) == (None, 16, 16, 512)
    assert [tuple(o.shape) for o in dec.outputs] == [(None, 256, 256, 3), (None, 256, 256, 1)]
    filters = {layer.name: layer.filters for layer in dec.layers if hasattr(layer, "filters")}
    assert [filters[f"upscale{i}"] for i in range(3)] == [512, 256, 128]
    assert [filters[f"upscalem{i}"] for i in range(4)] == [176, 88, 44, 22]
    assert enc.count_params() == 4_306_560
    assert inter.count_params() == 51_415_296
    assert dec.count_params() == 38_203_115


def test_unknown_layout_and_extras_are_refused():
    with pytest.raises(ValueError, match="unknown layout"):
        archi.build_autoencoder("lia", tiny("u"))
    with pytest.raises(ValueError, match="unknown extra outputs"):
        archi.build_autoencoder("df", tiny("u"), extra_outputs=("gan",))


def test_config_round_trip():
    model = archi.build_autoencoder("liae", tiny("dt"), extra_outputs=("codes",))
    config = model.get_config()
    assert config["arch"] == {"resolution": RES, "opts": "dt", **TINY_DIMS}
    again = archi.LIAEAutoencoder(**config)
    assert again.arch == model.arch
    assert tuple(again.extra_outputs) == ("codes",)
