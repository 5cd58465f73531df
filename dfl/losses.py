"""DFL's loss terms in keras.ops: DSSIM, Gaussian blur and per-sample MSE (NHWC)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from keras import ops

DSSIM_SIGMA = 1.5  # px; DFL keeps σ at 1.5 whatever the window size
DSSIM_K1 = 0.01
DSSIM_K2 = 0.03
DSSIM_MAX_VAL = 1.0
DSSIM_RES_PER_WINDOW = 11.6  # DSSIM window = int(resolution / 11.6) px


def dssim_filter_size(resolution: int) -> int:
    """DFL's DSSIM window for a resolution: int(res / 11.6) (8 px at 96)."""
    return int(resolution / DSSIM_RES_PER_WINDOW)


@lru_cache(maxsize=32)
def dssim_window(filter_size: int, sigma: float = DSSIM_SIGMA) -> np.ndarray:
    """(fs, fs) Gaussian window: softmax of -(dx² + dy²)/(2σ²) around the centre (fs - 1)/2."""
    coords = np.arange(filter_size, dtype=np.float64) - (filter_size - 1) / 2.0
    logits = -(coords[:, None] ** 2 + coords[None, :] ** 2) / (2.0 * sigma**2)
    w = np.exp(logits - logits.max())
    return (w / w.sum()).astype(np.float32)


@lru_cache(maxsize=32)
def blur_window(radius: float) -> np.ndarray:
    """(ks, ks) Gaussian for gaussian_blur: ks = max(3, int(4σ)), odd; centre floor(ks/2); sum 1."""
    ks = max(3, int(4 * radius))
    if ks % 2 == 0:
        ks += 1
    x = np.arange(ks, dtype=np.float64) - np.floor(ks / 2)
    g = np.exp(-(x**2) / (2.0 * radius**2))
    w = np.outer(g, g)
    return (w / w.sum()).astype(np.float32)


def _depthwise(x: Any, window: np.ndarray) -> Any:
    """Apply one 2-D window to every channel of NHWC `x`, VALID."""
    channels = x.shape[-1]
    kernel = np.ascontiguousarray(np.tile(window[:, :, None, None], (1, 1, channels, 1)))
    return ops.depthwise_conv(x, ops.convert_to_tensor(kernel), strides=1, padding="valid")


def gaussian_blur(x: Any, radius: float) -> Any:
    """DFL's gaussian_blur: zero-pad ks//2 then a VALID depthwise Gaussian, σ = radius."""
    window = blur_window(float(radius))
    x = ops.convert_to_tensor(x)
    p = window.shape[0] // 2
    x = ops.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    return _depthwise(x, window)


def dssim(
    img1: Any,
    img2: Any,
    filter_size: int,
    max_val: float = DSSIM_MAX_VAL,
    k1: float = DSSIM_K1,
    k2: float = DSSIM_K2,
) -> Any:
    """(1 - SSIM)/2 per sample and channel, shape (B, C); VALID Gaussian windows, σ 1.5."""
    window = dssim_window(int(filter_size))
    img1, img2 = ops.convert_to_tensor(img1), ops.convert_to_tensor(img2)
    c1 = (k1 * max_val) ** 2
    c2 = (k2 * max_val) ** 2
    mean1 = _depthwise(img1, window)
    mean2 = _depthwise(img2, window)
    mean12 = mean1 * mean2 * 2.0
    mean_sq = ops.square(mean1) + ops.square(mean2)
    luminance = (mean12 + c1) / (mean_sq + c1)
    cross = _depthwise(img1 * img2, window) * 2.0
    energy = _depthwise(ops.square(img1) + ops.square(img2), window)
    contrast = (cross - mean12 + c2) / (energy - mean_sq + c2)
    ssim = ops.mean(luminance * contrast, axis=(1, 2))
    return (1.0 - ssim) / 2.0


def mse(a: Any, b: Any) -> Any:
    """Per-sample mean squared error over H, W, C: shape (B,)."""
    return ops.mean(ops.square(ops.subtract(a, b)), axis=(1, 2, 3))
