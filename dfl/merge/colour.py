"""The merger's colour transfer modes and histogram matching (DFL's MergeMasked.py and
core/imagelib/color_transfer.py; docs/merge.md "Colour").

`target` is the face to recolour (the prediction), `reference` the dst face, both float32 BGR
(R, R, 3) in [0, 1]; `area` is the (R, R, 1) 0/1 mask of the face area. lct, mkl, idt and sot are
dfl.data.colortransfer's (the same computations the trainer uses); rct computes its statistics
over the masked pixels only, and the `-m` variants zero both images outside the area first.
"""

from __future__ import annotations

import cv2
import numpy as np

from dfl.data.colortransfer import (
    LAB_AB_RANGE,
    LAB_L_RANGE,
    LCT_EPS,
    STD_FLOOR,
    idt_transfer,
    linear_transfer,
    mkl_transfer,
    sot_transfer,
)

RCT_MASK_CUTOFF = 0.5  # rct statistics use the pixels whose mask is >= this
SOT_M_STEPS = 10  # sot-m: solver steps
SOT_M_DIRECTIONS = 30  # sot-m: random directions per step
MIX_SOT_DIRECTIONS = 5  # mix-m: the chroma SOT keeps sot's default directions
MIX_SOT_SIGMA_COLOR = 5.0 / 255.0  # DFL filters in 0..255 units; here the data is 0..1
MIX_LIGHTNESS = 100  # mix-m: the fixed 8-bit L of the chroma-only images
UINT8_EPS = 1e-3  # guards truncation against 0.99999 of a level
HIST_FULL_SCALE = 255.0  # hist match: the template's quantile scale (threshold 255 = plain match)


def masked_rct(target: np.ndarray, reference: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Reinhard transfer in Lab with each image's mean and deviation taken over the pixels of
    `area` >= 0.5 (DFL counted the others as Lab zeros; docs/merge.md); the whole target is
    mapped, L clipped to [0, 100], a/b to [-127, 127], back to BGR."""
    lab_t = cv2.cvtColor(target, cv2.COLOR_BGR2LAB)
    lab_r = cv2.cvtColor(reference, cv2.COLOR_BGR2LAB)
    mask = (area.reshape(area.shape[:2]) >= RCT_MASK_CUTOFF).astype(np.uint8)
    stats_mask = mask if mask.any() else None  # an empty area: whole-crop statistics
    mean_t, std_t = (v.reshape(3) for v in cv2.meanStdDev(lab_t, mask=stats_mask))
    mean_r, std_r = (v.reshape(3) for v in cv2.meanStdDev(lab_r, mask=stats_mask))
    gain = std_r / np.maximum(std_t, STD_FLOOR)
    out = lab_t * gain.astype(np.float32) + (mean_r - mean_t * gain).astype(np.float32)
    np.clip(out[..., 0], *LAB_L_RANGE, out=out[..., 0])
    np.clip(out[..., 1:], *LAB_AB_RANGE, out=out[..., 1:])
    return cv2.cvtColor(out, cv2.COLOR_LAB2BGR)


def _lct_channel(target: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """lct on one channel: (x - mean_x)·sqrt(var_r + eps)/sqrt(var_x + eps) + mean_r, clipped."""
    t64, r64 = target.astype(np.float64), reference.astype(np.float64)
    gain = np.sqrt(r64.var() + LCT_EPS) / np.sqrt(t64.var() + LCT_EPS)
    return np.clip((t64 - t64.mean()) * gain + r64.mean(), 0.0, 1.0).astype(np.float32)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """0..1 floats that came from 8-bit values back to those values (truncating, as DFL, but
    without losing a level to float rounding)."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + UINT8_EPS).astype(np.uint8)


def mix_transfer(target: np.ndarray, reference: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """mix: 8-bit Lab; lightness by lct on L, chroma by sot on images whose L is fixed at 100."""
    t8 = (np.clip(target, 0.0, 1.0) * 255.0).astype(np.uint8)
    r8 = (np.clip(reference, 0.0, 1.0) * 255.0).astype(np.uint8)
    lab_t = cv2.cvtColor(t8, cv2.COLOR_BGR2LAB)
    lab_r = cv2.cvtColor(r8, cv2.COLOR_BGR2LAB)
    light = _lct_channel(lab_t[..., 0] / np.float32(255.0), lab_r[..., 0] / np.float32(255.0))
    light8 = (light * 255.0).astype(np.uint8)
    lab_t[..., 0] = MIX_LIGHTNESS
    lab_r[..., 0] = MIX_LIGHTNESS
    chroma_t = cv2.cvtColor(lab_t, cv2.COLOR_LAB2BGR).astype(np.float32) / np.float32(255.0)
    chroma_r = cv2.cvtColor(lab_r, cv2.COLOR_LAB2BGR).astype(np.float32) / np.float32(255.0)
    moved = sot_transfer(
        chroma_t, chroma_r, rng, directions=MIX_SOT_DIRECTIONS, sigma_color=MIX_SOT_SIGMA_COLOR
    )
    lab = cv2.cvtColor(_to_uint8(moved), cv2.COLOR_BGR2LAB)
    lab[..., 0] = light8
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR).astype(np.float32) / np.float32(255.0)


def color_transfer(
    mode: str,
    target: np.ndarray,
    reference: np.ndarray,
    area: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Recolour `target` toward `reference` with one of the merger's modes (settings.py
    COLOR_TRANSFER_MODES); float32 (R, R, 3)."""
    if mode == "rct":
        return masked_rct(target, reference, area)
    if mode == "lct":
        return linear_transfer(target, reference)
    if mode == "mkl":
        return mkl_transfer(target, reference)
    if mode == "idt":
        return idt_transfer(target, reference, rng)
    masked_t, masked_r = target * area, reference * area
    if mode == "mkl-m":
        return mkl_transfer(masked_t, masked_r)
    if mode == "idt-m":
        return idt_transfer(masked_t, masked_r, rng)
    if mode == "sot-m":
        return sot_transfer(masked_t, masked_r, rng, steps=SOT_M_STEPS, directions=SOT_M_DIRECTIONS)
    if mode == "mix-m":
        return mix_transfer(masked_t, masked_r, rng)
    raise ValueError(f"unknown colour transfer mode {mode!r}")


def _channel_hist_match(source: np.ndarray, template: np.ndarray, threshold: float) -> np.ndarray:
    """Each source value moves to the template value at its quantile; the source quantiles are
    scaled by threshold/255, so lower thresholds land lower in the template's distribution."""
    _, inverse, counts = np.unique(source.ravel(), return_inverse=True, return_counts=True)
    t_values, t_counts = np.unique(template.ravel(), return_counts=True)
    s_quant = np.cumsum(counts).astype(np.float64)
    s_quant *= threshold / s_quant[-1]
    t_quant = np.cumsum(t_counts).astype(np.float64)
    t_quant *= HIST_FULL_SCALE / t_quant[-1]
    mapped = np.interp(s_quant, t_quant, t_values)
    return mapped[inverse.reshape(-1)].reshape(source.shape)


def hist_match(source: np.ndarray, template: np.ndarray, threshold: int) -> np.ndarray:
    """Per-channel histogram matching of `source` onto `template` (DFL's color_hist_match)."""
    out = np.empty_like(source, dtype=np.float32)
    for c in range(source.shape[2]):
        out[..., c] = _channel_hist_match(source[..., c], template[..., c], float(threshold))
    return out
