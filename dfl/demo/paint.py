"""The demo's painting primitives on float32 images and masks: anti-aliased subpixel polygons,
lines and discs, alpha blending on a mask's box, colour shading and jitter, and wide blurs."""

from __future__ import annotations

import cv2
import numpy as np

# Subpixel precision of polygon drawing (OpenCV "shift" bits).
SHIFT_BITS = 4
SHIFT_SCALE = 1 << SHIFT_BITS

# Blurs wider than this (pixels) run on a downscaled copy.
BLUR_FULL_RES_MAX_SIGMA = 2.0


def pixel_points(pts: np.ndarray) -> np.ndarray:
    """Points as OpenCV's fixed-point integers (SHIFT_BITS fraction bits)."""
    return np.round(np.asarray(pts)[:, :2] * SHIFT_SCALE).astype(np.int32)


def fill(img: np.ndarray, pts: np.ndarray, color) -> None:
    """Fill a polygon in place, anti-aliased, at subpixel precision."""
    cv2.fillPoly(img, [pixel_points(pts)], color, lineType=cv2.LINE_AA, shift=SHIFT_BITS)


def line(img: np.ndarray, pts: np.ndarray, color, thickness: float, closed: bool = False) -> None:
    """Draw a polyline in place, anti-aliased, at subpixel precision."""
    t = max(1, round(thickness))
    cv2.polylines(
        img, [pixel_points(pts)], closed, color, t, lineType=cv2.LINE_AA, shift=SHIFT_BITS
    )


def disc(shape: tuple[int, int], centre, radius: float) -> np.ndarray:
    """Anti-aliased filled circle mask with subpixel centre and radius."""
    m = np.zeros(shape, np.float32)
    c = (round(float(centre[0]) * SHIFT_SCALE), round(float(centre[1]) * SHIFT_SCALE))
    cv2.circle(m, c, max(1, round(radius * SHIFT_SCALE)), 1.0, -1, cv2.LINE_AA, SHIFT_BITS)
    return m


def resample(pts: np.ndarray, n: int) -> np.ndarray:
    """n points evenly spaced by index along a polyline."""
    t = np.linspace(0, len(pts) - 1, n)
    return np.stack([np.interp(t, np.arange(len(pts)), pts[:, k]) for k in range(2)], axis=1)


def polygon_mask(shape: tuple[int, int], pts: np.ndarray) -> np.ndarray:
    """Anti-aliased filled polygon as a float32 mask."""
    m = np.zeros(shape, np.float32)
    fill(m, pts, 1.0)
    return m


def blend(img: np.ndarray, mask: np.ndarray, color, alpha: float = 1.0) -> None:
    """img := img·(1 - a·mask) + color·a·mask, in place (float32 image), on the mask's box."""
    rows = np.flatnonzero(mask.max(axis=1) > 0)
    if rows.size == 0:
        return
    cols = np.flatnonzero(mask[rows[0] : rows[-1] + 1].max(axis=0) > 0)
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    a = mask[box][..., None] * np.float32(alpha)
    roi = img[box]
    roi -= a * (roi - np.asarray(color, np.float32))


def shade(c, k: float) -> tuple[float, float, float]:
    """The colour darkened (k < 1) or lightened, clipped to 0..255."""
    return tuple(float(np.clip(v * k, 0, 255)) for v in c)


def jitter(c, rng: np.random.Generator, amount: float) -> tuple[float, float, float]:
    """The colour with Gaussian noise of ``amount`` levels per channel (one draw each)."""
    return tuple(float(np.clip(v + rng.normal(0, amount), 0, 255)) for v in c)


def blur(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; wide blurs run on a smaller copy (same look, a fraction of the cost)."""
    factor = int(sigma / BLUR_FULL_RES_MAX_SIGMA)
    if factor < 2:
        return cv2.GaussianBlur(mask, (0, 0), max(sigma, 0.3))
    h, w = mask.shape[:2]
    small = cv2.resize(
        mask, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA
    )
    small = cv2.GaussianBlur(small, (0, 0), sigma / factor)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
