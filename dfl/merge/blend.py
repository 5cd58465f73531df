"""Pasting a predicted face into a frame: the work rectangle, the paste, and the blend of the
non-raw modes (colour transfer, hist match, seamless clone, second pass, degrades); docs/merge.md.

Frame-sized work covers only the rectangle a face's mask can reach: outside it the result is the
frame (or the degraded frame) itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dfl.merge import colour, filters
from dfl.merge.settings import SEAMLESS_MODES, MergeSettings

SIZE_GATE_LEVEL = 0.1  # the size gate and the seamless mask use pixels above this mask value
SIZE_GATE_MIN_PX = 4  # a face whose mask spans fewer frame pixels (max - min) is skipped
BICUBIC_REACH_PX = 3  # a bicubic warp reaches 2 source pixels past the last non-zero one (+1)
ROI_MARGIN_FRAME_PX = 2  # frame pixels added around each work rectangle

Motion = tuple[float, float]  # (length in frame pixels, angle in degrees counter-clockwise)


Roi = tuple[int, int, int, int]  # y0, y1, x0, x1 in frame pixels


def frame_box(
    mat: np.ndarray, box: tuple[float, float, float, float], shape: tuple[int, int]
) -> Roi:
    """The frame rectangle (clamped to the frame) covering the crop-space box
    (x0, y0, x1, y1) of the crop `mat` maps the frame to, plus a frame pixel margin."""
    bx0, by0, bx1, by1 = box
    corners = np.array([(bx0, by0), (bx1, by0), (bx1, by1), (bx0, by1)], float)
    inv = cv2.invertAffineTransform(mat)
    pts = corners @ inv[:, :2].T + inv[:, 2]
    x0 = int(np.floor(pts[:, 0].min())) - ROI_MARGIN_FRAME_PX
    y0 = int(np.floor(pts[:, 1].min())) - ROI_MARGIN_FRAME_PX
    x1 = int(np.ceil(pts[:, 0].max())) + ROI_MARGIN_FRAME_PX + 1
    y1 = int(np.ceil(pts[:, 1].max())) + ROI_MARGIN_FRAME_PX + 1
    h, w = shape
    return max(0, y0), min(h, max(0, y1)), max(0, x0), min(w, max(0, x1))


def paste_roi(mat: np.ndarray, size: int, shape: tuple[int, int]) -> Roi:
    """The frame rectangle a bicubic inverse warp of a whole `size` square can reach."""
    m = BICUBIC_REACH_PX
    return frame_box(mat, (-m, -m, size + m, size + m), shape)


def mask_roi(mask: np.ndarray, mat: np.ndarray, shape: tuple[int, int]) -> Roi:
    """The frame rectangle an inverse warp of `mask` can make non-zero (empty for a zero mask)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return (0, 0, 0, 0)
    cols = np.flatnonzero(mask.any(axis=0))
    m = BICUBIC_REACH_PX
    box = (cols[0] - m, rows[0] - m, cols[-1] + m, rows[-1] + m)
    return frame_box(mat, box, shape)


def shifted(mat: np.ndarray, roi: Roi) -> np.ndarray:
    """`mat` (frame -> crop) for frame coordinates relative to the ROI's corner."""
    out = np.array(mat, dtype=np.float64)
    out[:, 2] += out[:, :2] @ np.array([roi[2], roi[0]], dtype=np.float64)
    return out


def paste_crop(image: np.ndarray, mat: np.ndarray, roi: Roi) -> np.ndarray:
    """Inverse-warp a crop into the ROI of the frame (bicubic, zero outside the crop)."""
    y0, y1, x0, x1 = roi
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(image, shifted(mat, roi), (x1 - x0, y1 - y0), flags=flags)


def _size_gate(mask: np.ndarray) -> bool:
    """DFL's minimum-size test: the pixels >= 0.1 must span (max - min) >= 4 px both ways."""
    hit = mask[..., 0] >= SIZE_GATE_LEVEL
    rows = np.flatnonzero(hit.any(axis=1))
    if rows.size == 0:
        return False
    cols = np.flatnonzero(hit.any(axis=0))
    return min(rows[-1] - rows[0], cols[-1] - cols[0]) >= SIZE_GATE_MIN_PX


def _crop_motion(motion: Motion | None, mat: np.ndarray) -> Motion:
    """A frame motion (length px, angle deg) as seen in the crop of `mat` (docs/merge.md)."""
    if motion is None or motion[0] <= 0:
        return (0.0, 0.0)
    power, deg = float(motion[0]), np.deg2rad(float(motion[1]))
    v = np.asarray(mat)[:, :2] @ np.array([np.cos(deg) * power, -np.sin(deg) * power])
    return (float(np.hypot(v[0], v[1])), float(-np.degrees(np.arctan2(v[1], v[0]))))


def _hist_match_face(
    face: np.ndarray, dst: np.ndarray, area: np.ndarray, settings: MergeSettings
) -> np.ndarray:
    """hist-match mode: both faces white outside the (optional) mask, then matched."""
    keep = area if settings.masked_hist_match else np.ones_like(area)
    white = 1.0 - keep
    source = np.minimum(face * keep + white, 1.0)
    template = np.minimum(dst * keep + white, 1.0)  # DFL tested the wrong image here
    return colour.hist_match(source, template, settings.hist_match_threshold)


def _seamless(
    pasted: np.ndarray, frame_roi: np.ndarray, mask: np.ndarray, notes: list[str] | None
) -> np.ndarray:
    """Poisson (NORMAL_CLONE) clone of the pasted face into the 8-bit frame over mask > 0.1,
    centred on the mask's own box so the face does not move."""
    binary = (mask[..., 0] > SIZE_GATE_LEVEL).astype(np.uint8) * 255
    if not binary.any():
        if notes is not None:
            notes.append("seamless clone skipped: the mask has no pixel above 0.1")
        return pasted
    left, top, width, height = cv2.boundingRect(binary)
    centre = (int(left + width / 2), int(top + height / 2))
    frame8 = (frame_roi * 255.0 + 0.5).astype(np.uint8)  # the frame's own 8-bit values
    try:
        cloned = cv2.seamlessClone(
            (pasted * 255.0).astype(np.uint8), frame8, binary, centre, cv2.NORMAL_CLONE
        )
    except cv2.error as error:
        if notes is not None:
            notes.append(f"seamless clone failed, face pasted without it: {error}")
        return pasted
    return cloned.astype(np.float32) / np.float32(255.0)


def _face_filters(
    face: np.ndarray,
    dst_face: np.ndarray,
    area: np.ndarray,
    settings: MergeSettings,
    kernel: tuple[int, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """The second pass on the merged face crop: seamless colour transfer, seamless hist match,
    motion blur, blur/sharpen."""
    s = settings
    if s.mode in SEAMLESS_MODES and s.color_transfer_mode is not None:
        face = colour.color_transfer(s.color_transfer_mode, face, dst_face, area, rng)
    if s.mode == "seamless-hist-match":
        face = colour.hist_match(face, dst_face, s.hist_match_threshold)
    if kernel[0] > 0:
        face = filters.motion_blur(face, kernel[0], kernel[1])
    if s.blur_sharpen_amount != 0:
        face = filters.blur_sharpen(face, s.sharpen_mode, s.blur_sharpen_amount)
    return face


def _needs_face_pass(settings: MergeSettings, kernel_size: int) -> bool:
    s = settings
    sharpen = s.blur_sharpen_amount < 0 or (s.blur_sharpen_amount > 0 and s.sharpen_mode)
    seamless_ct = s.mode in SEAMLESS_MODES and s.color_transfer_mode is not None
    return bool(seamless_ct or s.mode == "seamless-hist-match" or kernel_size > 0 or sharpen)


def _degraded_frame(frame: np.ndarray, settings: MergeSettings) -> np.ndarray:
    """The frame after the denoise and bicubic degrades (the frame itself when both are 0)."""
    out = frame
    if settings.image_denoise_power:
        out = filters.denoise_degrade(out, settings.image_denoise_power)
    if settings.bicubic_degrade_power:
        out = filters.bicubic_degrade(out, settings.bicubic_degrade_power)
    return out


@dataclass(frozen=True)
class Paste:
    """Where one face goes: the frame rectangle, the paste matrix and the masks."""

    roi: Roi
    out_mat: np.ndarray  # frame -> crop at R, with the output face scale
    frame_mask: np.ndarray  # (h, w, 1) of the ROI
    crop_mask: np.ndarray  # (R, R, 1)

    @property
    def slices(self) -> tuple[slice, slice]:
        y0, y1, x0, x1 = self.roi
        return slice(y0, y1), slice(x0, x1)


def blend_face(
    frame: np.ndarray,
    dst_face: np.ndarray,
    face: np.ndarray,
    paste: Paste,
    settings: MergeSettings,
    motion: Motion | None,
    rng: np.random.Generator,
    notes: list[str] | None,
) -> np.ndarray:
    """overlay, hist-match, seamless, seamless-hist-match: the merged frame (a new array)."""
    s, r = settings, dst_face.shape[0]
    sy, sx = paste.slices
    frame_roi, mask = frame[sy, sx], paste.frame_mask
    if not _size_gate(mask):
        return frame.copy()
    area = (paste.crop_mask > 0).astype(np.float32)
    if s.color_transfer_mode is not None and s.mode not in SEAMLESS_MODES:
        face = colour.color_transfer(s.color_transfer_mode, face, dst_face, area, rng)
    if s.mode == "hist-match":
        face = _hist_match_face(face, dst_face, area, s)
    pasted = np.clip(paste_crop(face, paste.out_mat, paste.roi), 0.0, 1.0)
    if s.mode in SEAMLESS_MODES:
        pasted = _seamless(pasted, frame_roi, mask, notes)
    merged = frame_roi + (pasted - frame_roi) * mask
    power, angle = _crop_motion(motion, paste.out_mat)
    kernel = (filters.motion_kernel_size(power, s.motion_blur_power), angle)
    base = _degraded_frame(frame, s)
    if _needs_face_pass(s, kernel[0]):
        whole = frame.copy()  # the crop reaches past the mask's rectangle
        whole[sy, sx] = merged
        g = cv2.warpAffine(whole, paste.out_mat, (r, r), flags=cv2.INTER_CUBIC)
        g = _face_filters(g, dst_face, area, s, kernel, rng)
        merged = paste_crop(g, paste.out_mat, paste.roi)
    if _needs_face_pass(s, kernel[0]) or base is not frame:
        base_roi = base[sy, sx]
        merged = np.clip(base_roi + (merged - base_roi) * mask, 0.0, 1.0)
    out = base.copy()
    out[sy, sx] = merged
    if s.color_degrade_power:
        out = filters.color_degrade(out, s.color_degrade_power)
    return out


def raw_rgb(frame: np.ndarray, face: np.ndarray, paste: Paste) -> np.ndarray:
    """raw-rgb: the predicted square pasted as is, its edge softened by the bicubic warp."""
    roi = paste_roi(paste.out_mat, face.shape[0], frame.shape[:2])
    y0, y1, x0, x1 = roi
    sy, sx = slice(y0, y1), slice(x0, x1)
    frame_roi = frame[sy, sx]
    if frame_roi.size == 0:
        return frame.copy()
    pasted = paste_crop(face, paste.out_mat, roi)
    cover = paste_crop(np.ones_like(face), paste.out_mat, roi)
    out = frame.copy()
    out[sy, sx] = np.clip(frame_roi * (1.0 - cover) + pasted * cover, 0.0, 1.0)
    return out
