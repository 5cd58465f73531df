"""Tests for dfl.nn.losses: DSSIM and Gaussian blur against numpy references
(docs/training.md §1)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from dfl.nn import losses
from tests.helpers import to_np


def np_filter_valid(x: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Per-channel VALID correlation of NHWC x with a (k, k) window, in float64."""
    k = window.shape[0]
    patches = sliding_window_view(x.astype(np.float64), (k, k), axis=(1, 2))  # B,H',W',C,k,k
    return np.einsum("bhwcij,ij->bhwc", patches, window)


def np_gaussian(size: int, sigma: float, centre: float) -> np.ndarray:
    g = np.exp(-((np.arange(size) - centre) ** 2) / (2 * sigma**2))
    w = np.outer(g, g)
    return w / w.sum()


def np_dssim(x: np.ndarray, y: np.ndarray, size: int) -> np.ndarray:
    w = np_gaussian(size, 1.5, (size - 1) / 2)
    c1, c2 = (0.01 * 1.0) ** 2, (0.03 * 1.0) ** 2
    mx, my = np_filter_valid(x, w), np_filter_valid(y, w)
    sxx = np_filter_valid(x * x, w) - mx**2
    syy = np_filter_valid(y * y, w) - my**2
    sxy = np_filter_valid(x * y, w) - mx * my
    lum = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    return (1 - (lum * cs).mean(axis=(1, 2))) / 2


@pytest.fixture
def images() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((2, 24, 24, 3), dtype=np.float32)
    y = np.clip(x + 0.2 * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
    return x, y


def test_dssim_window_is_softmax_with_sigma_1_5():
    w = losses.dssim_window(8)
    assert w.shape == (8, 8)
    np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(w, np_gaussian(8, 1.5, 3.5), rtol=1e-5)
    assert losses.dssim_filter_size(96) == 8
    assert losses.dssim_filter_size(32) == 2


@pytest.mark.parametrize("size", [8, 11, 3])
def test_dssim_matches_numpy(images, size):
    x, y = images
    got = to_np(losses.dssim(x, y, size))
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got, np_dssim(x, y, size), rtol=1e-4, atol=2e-6)


def test_dssim_of_identical_images_is_zero(images):
    x, _ = images
    np.testing.assert_allclose(to_np(losses.dssim(x, x, 8)), 0.0, atol=1e-6)


@pytest.mark.parametrize(("radius", "size"), [(3, 13), (1, 5), (2.0, 9)])
def test_gaussian_blur_matches_numpy(images, radius, size):
    x, _ = images
    window = losses.blur_window(radius)
    assert window.shape == (size, size)
    ref_window = np_gaussian(size, radius, size // 2)
    np.testing.assert_allclose(window, ref_window, rtol=1e-5)
    p = size // 2
    padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    got = to_np(losses.gaussian_blur(x, radius))
    assert got.shape == x.shape
    np.testing.assert_allclose(got, np_filter_valid(padded, ref_window), rtol=1e-4, atol=1e-6)


def test_mse_is_per_sample(images):
    x, y = images
    got = to_np(losses.mse(x, y))
    np.testing.assert_allclose(got, ((x - y) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)
