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


# --------------------------------------------------------------------------------------------
# SAEHD / AMP terms (docs/training.md §1-2): masks, style, total variation, GAN cross-entropy

DSSIM_RES_PER_SECOND_WINDOW = 23.2  # second DSSIM window = int(resolution / 23.2) px (res >= 256)
STYLE_STD_EPS = 1e-5  # std = sqrt(var + 1e-5)
MASK_GROW_CLIP = 0.5  # SAEHD/AMP loss mask: clip(blur, 0, 0.5) * 2


def mae(a: Any, b: Any) -> Any:
    """Per-sample mean absolute error over H, W, C: shape (B,)."""
    return ops.mean(ops.abs(ops.subtract(a, b)), axis=(1, 2, 3))


def clipped_mask_blur(mask: Any, radius: float) -> Any:
    """SAEHD's loss mask: clip(gaussian_blur(mask, radius), 0, 0.5) · 2.

    1 inside the original mask and ramping to 0 outside it: the mask grown outward.
    """
    blurred = gaussian_blur(mask, radius)
    return ops.clip(blurred, 0.0, MASK_GROW_CLIP) * (1.0 / MASK_GROW_CLIP)


def blur_out_mask(target: Any, mask: Any, sigma: float) -> Any:
    """Replace the background of `target` with a mask-normalised blur of the background alone.

    x = blur(t·(1-m)), y = 1 - blur(m) (1 where it is 0), t' = t·m + (x/y)·(1-m).
    """
    target, mask = ops.convert_to_tensor(target), ops.convert_to_tensor(mask)
    anti = 1.0 - mask
    x = gaussian_blur(target * anti, sigma)
    y = 1.0 - gaussian_blur(mask, sigma)
    y = ops.where(ops.equal(y, 0.0), ops.ones_like(y), y)
    return target * mask + (x / y) * anti


def style_loss(target: Any, style: Any, blur_radius: float = 0.0, weight: float = 1.0) -> Any:
    """Per-sample style distance (B,): [Σ_c Δmean² + Σ_c Δstd²] · weight / C.

    Means and (population) variances are spatial, per channel; std = sqrt(var + 1e-5). Both
    inputs are first blurred with gaussian_blur(blur_radius) when the radius is > 0.
    """
    target, style = ops.convert_to_tensor(target), ops.convert_to_tensor(style)
    if blur_radius > 0.0:
        target = gaussian_blur(target, blur_radius)
        style = gaussian_blur(style, blur_radius)
    channels = int(target.shape[-1])
    if int(style.shape[-1]) != channels:
        raise ValueError(
            f"style_loss: channel counts differ ({channels} vs {int(style.shape[-1])})"
        )
    t_mean, t_var = ops.moments(target, axes=[1, 2])
    s_mean, s_var = ops.moments(style, axes=[1, 2])
    t_std = ops.sqrt(t_var + STYLE_STD_EPS)
    s_std = ops.sqrt(s_var + STYLE_STD_EPS)
    mean_loss = ops.sum(ops.square(t_mean - s_mean), axis=-1)
    std_loss = ops.sum(ops.square(t_std - s_std), axis=-1)
    return (mean_loss + std_loss) * (weight / channels)


def total_variation_mse(images: Any) -> Any:
    """Per-sample sum of squared vertical plus horizontal neighbour differences (B,), NHWC.

    (DFL's version took differences along C and H under NCHW; here it is H and W, as intended.)
    """
    images = ops.convert_to_tensor(images)
    dh = images[:, 1:, :, :] - images[:, :-1, :, :]
    dw = images[:, :, 1:, :] - images[:, :, :-1, :]
    return ops.sum(ops.square(dh), axis=(1, 2, 3)) + ops.sum(ops.square(dw), axis=(1, 2, 3))


def sigmoid_cross_entropy(labels: Any, logits: Any) -> Any:
    """Element-wise BCE on logits, stable for any logit: max(x,0) - x·z + log(1 + e^-|x|)."""
    logits = ops.convert_to_tensor(logits)
    labels = ops.cast(ops.convert_to_tensor(labels), logits.dtype)
    return ops.relu(logits) - logits * labels + ops.log1p(ops.exp(-ops.abs(logits)))


def bce(label: float, logits: Any) -> Any:
    """DFL's DLoss: BCE of every logit against a constant label (1 real, 0 fake), averaged over
    all non-batch axes; shape (B,)."""
    logits = ops.convert_to_tensor(logits)
    axes = tuple(range(1, len(logits.shape)))
    return ops.mean(sigmoid_cross_entropy(ops.full_like(logits, label), logits), axis=axes)


def discriminator_loss(real_logits: Any, fake_logits: Any) -> Any:
    """Per-sample discriminator loss 0.5·(BCE(1, real) + BCE(0, fake)), shape (B,)."""
    return 0.5 * (bce(1.0, real_logits) + bce(0.0, fake_logits))


def generator_adversarial_loss(fake_logits: Any) -> Any:
    """Per-sample generator loss BCE(1, D(fake)): the fake should be judged real; shape (B,)."""
    return bce(1.0, fake_logits)
