"""Tests for dfl.nn.blocks: DFL padding, DCR depth_to_space, (C,H,W) flatten, blocks, init."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from dfl.nn import blocks as nn
from tests.helpers import to_np


def np_conv(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int) -> np.ndarray:
    """DFL conv reference: zero-pad k//2 on every side, then a VALID conv (NHWC)."""
    k = kernel.shape[0]
    p = k // 2
    x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    b, h, w, _ = x.shape
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.zeros((b, oh, ow, kernel.shape[-1]), np.float64)
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride : i * stride + k, j * stride : j * stride + k, :]
            out[:, i, j, :] = np.tensordot(patch, kernel, axes=([1, 2, 3], [0, 1, 2]))
    return out + bias


def np_depth_to_space(x: np.ndarray, size: int = 2) -> np.ndarray:
    b, h, w, c = x.shape
    oc = c // (size * size)
    out = np.zeros((b, h * size, w * size, oc), x.dtype)
    for dy in range(size):
        for dx in range(size):
            for ch in range(oc):
                out[:, dy::size, dx::size, ch] = x[:, :, :, (dy * size + dx) * oc + ch]
    return out


def lrelu(x: np.ndarray, a: float) -> np.ndarray:
    return np.where(x >= 0, x, a * x)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_depth_to_space_is_dcr(rng):
    x = rng.standard_normal((2, 3, 4, 12)).astype(np.float32)
    np.testing.assert_array_equal(to_np(nn.depth_to_space(x)), np_depth_to_space(x))
    # one explicit element: channel (dy*2+dx)*oc + c -> pixel (2h+dy, 2w+dx), channel c
    out = to_np(nn.depth_to_space(x))
    assert out[1, 2 * 2 + 1, 2 * 3 + 0, 2] == x[1, 2, 3, (1 * 2 + 0) * 3 + 2]
    assert to_np(nn.DepthToSpace()(x)).shape == (2, 6, 8, 3)


def test_flatten_and_reshape_use_chw_order(rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    flat = to_np(nn.flatten_chw(x))
    np.testing.assert_array_equal(flat, x.transpose(0, 3, 1, 2).reshape(2, -1))
    back = to_np(nn.reshape_chw(flat, 3, 4, 5))
    np.testing.assert_array_equal(back, x)
    assert to_np(nn.FlattenCHW()(x)).shape == (2, 60)
    assert to_np(nn.ReshapeCHW(3, 4, 5)(flat)).shape == (2, 3, 4, 5)


def test_pixel_norm(rng):
    x = rng.standard_normal((3, 10)).astype(np.float32)
    ref = x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(to_np(nn.pixel_norm(x)), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("k", "stride", "size"), [(5, 2, 8), (3, 1, 7), (1, 1, 4), (4, 2, 8)])
def test_conv_pads_symmetrically(rng, k, stride, size):
    x = rng.standard_normal((2, size, size, 3)).astype(np.float32)
    conv = nn.Conv2D(4, k, strides=stride)
    y = to_np(conv(x))
    kernel, bias = (to_np(w) for w in (conv.kernel, conv.bias))
    np.testing.assert_allclose(y, np_conv(x, kernel, bias, stride), rtol=1e-4, atol=1e-5)
    assert tuple(conv.compute_output_shape(x.shape)) == y.shape
    assert not np.any(bias)


def test_blocks_match_numpy(rng):
    x = rng.standard_normal((1, 8, 8, 3)).astype(np.float32)
    down = nn.Downscale(4)
    y_down = to_np(down(x))
    kd, bd = to_np(down.conv1.kernel), to_np(down.conv1.bias)
    np.testing.assert_allclose(y_down, lrelu(np_conv(x, kd, bd, 2), 0.1), rtol=1e-4, atol=1e-5)

    up = nn.Upscale(2)
    y_up = to_np(up(x))
    ku, bu = to_np(up.conv1.kernel), to_np(up.conv1.bias)
    assert ku.shape == (3, 3, 3, 8)
    ref = np_depth_to_space(lrelu(np_conv(x, ku, bu, 1), 0.1))
    np.testing.assert_allclose(y_up, ref, rtol=1e-4, atol=1e-5)

    res = nn.ResidualBlock(3)
    y_res = to_np(res(x))
    k1, b1 = to_np(res.conv1.kernel), to_np(res.conv1.bias)
    k2, b2 = to_np(res.conv2.kernel), to_np(res.conv2.bias)
    y = np_conv(lrelu(np_conv(x, k1, b1, 1), 0.2), k2, b2, 1)
    np.testing.assert_allclose(y_res, lrelu(x + y, 0.2), rtol=1e-4, atol=1e-5)


def test_downscale_block_channels():
    block = nn.DownscaleBlock(4, n_downscales=5)
    y = block(np.zeros((1, 64, 64, 3), np.float32))
    assert [d.filters for d in block.downs] == [4, 8, 16, 32, 32]
    assert tuple(y.shape) == (1, 2, 2, 32)
    assert tuple(block.compute_output_shape((1, 64, 64, 3))) == (1, 2, 2, 32)


@pytest.mark.parametrize(
    "layer",
    [
        nn.Conv2D(4, 5, strides=2, name="c"),
        nn.Downscale(4, 3),
        nn.DownscaleBlock(4, 2, 3),
        nn.Upscale(4),
        nn.ResidualBlock(4),
        nn.DepthToSpace(2),
        nn.PixelNorm(),
        nn.FlattenCHW(),
        nn.ReshapeCHW(2, 3, 4),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_get_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config


def test_glorot_uniform_is_seeded_and_bounded():
    shape = (3, 3, 16, 32)
    limit = math.sqrt(6.0 / (9 * 16 + 9 * 32))
    keras.utils.set_random_seed(7)
    a = nn.GlorotUniform()(shape)
    keras.utils.set_random_seed(7)
    b = nn.GlorotUniform()(shape)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32
    assert np.abs(a).max() <= limit
    assert np.abs(a).max() > 0.9 * limit
    assert nn.GlorotUniform(seed=3).get_config() == {"seed": 3}
