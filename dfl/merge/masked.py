"""The masked merge of one frame: DFL's MergeMasked/MergeMaskedFace (docs/merge.md).

Frames are float32 BGR (H, W, 3) in [0, 1]; landmarks are the 68 `source_landmarks` in frame
pixels. `crop_face` cuts the model's input; `merge_face` pastes the model's answer back; the
frame-sized work is done only in the rectangle the pasted face can reach.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dfl.data.landmarks import (
    FACE_TYPE_PADDING,
    FULL_FACE_NO_ALIGN,
    HEAD_NO_ALIGN,
    face_type_from_code,
    hull_mask,
    transform_matrix,
)
from dfl.errors import UserError
from dfl.merge import colour, filters
from dfl.merge.settings import SEAMLESS_MODES, MergeSettings

MASK_SUBRES = 4  # masks are processed at 4x the model resolution
NOISE_FLOOR = 1.0 / 255.0  # mask values below this count as 0
SIZE_GATE_LEVEL = 0.1  # the size gate and the seamless mask use pixels above this mask value
SIZE_GATE_MIN_PX = 4  # a face whose mask spans fewer frame pixels (max - min) is skipped
MAX_BAND_FRACTION = 0.375  # the blur's zero band stops at 3/8 of the mask side (DFL: no limit)
BICUBIC_REACH_PX = 3  # a bicubic warp reaches 2 source pixels past the last non-zero one (+1)
ROI_MARGIN_FRAME_PX = 2  # frame pixels added around each work rectangle
COLOR_TRANSFER_SEED = 0  # idt, sot-m and mix-m draw from a generator seeded with this per face
UNSUPPORTED_FACE_TYPES = (FULL_FACE_NO_ALIGN, HEAD_NO_ALIGN)

Motion = tuple[float, float]  # (length in frame pixels, angle in degrees counter-clockwise)


class MergeError(UserError):
    """Inputs the merger cannot use (wrong shapes, face type); the message says what is wrong."""


@dataclass(frozen=True)
class ModelFace:
    """What the merger must know about the model: its input size and face type."""

    resolution: int
    face_type: str  # a dfl.data.landmarks face type name, e.g. "whole_face"


@dataclass(frozen=True)
class FaceCrop:
    """One face of one frame, cut for the model."""

    face: np.ndarray  # (R, R, 3) float32 BGR [0, 1]: the dst face, the model's input
    hull: np.ndarray  # (R, R) float32 [0, 1]: the dst landmarks' hull mask in the crop
    landmarks: np.ndarray  # (68, 2) float64, frame pixels
    face_mat: np.ndarray  # (2, 3) float64: frame -> crop at R (DFL's face_mat)
    model: ModelFace
    frame_shape: tuple[int, int]  # (H, W) of the frame it was cut from


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one face (at the model resolution R)."""

    face: np.ndarray  # (R, R, 3) float32 BGR [0, 1]
    src_mask: np.ndarray  # (R, R) float32 [0, 1] (learned-prd)
    dst_mask: np.ndarray  # (R, R) float32 [0, 1] (learned-dst)


def _check_frame(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
        shape = getattr(frame, "shape", None)
        raise MergeError(f"a frame must be a BGR image (H, W, 3), got shape {shape}")
    if frame.dtype != np.float32:
        raise MergeError(f"a frame must be float32 in [0, 1], got {frame.dtype}")
    return frame


def check_model_face(model: ModelFace) -> str:
    """The model's face type name; MergeError for face types the merger cannot paste."""
    try:
        face_type = face_type_from_code(model.face_type)
    except ValueError as error:
        raise MergeError(str(error)) from None
    if face_type not in FACE_TYPE_PADDING or face_type in UNSUPPORTED_FACE_TYPES:
        raise MergeError(f"the merger does not support face type {face_type!r}")
    if model.resolution < 1:
        raise MergeError(f"a model resolution must be positive, got {model.resolution}")
    return face_type


def crop_face(
    frame: np.ndarray,
    landmarks: np.ndarray,
    model: ModelFace,
    settings: MergeSettings | None = None,
) -> FaceCrop:
    """Cut the dst face (bicubic, clipped) and its landmark hull mask for the model.

    The crop does not depend on the settings (they only matter when pasting), so one crop and
    one prediction serve every setting of the interactive merger.
    """
    frame = _check_frame(frame)
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2) or not np.all(np.isfinite(lm)):
        raise MergeError(f"landmarks must be 68 finite (x, y) points, got shape {lm.shape}")
    face_type = check_model_face(model)
    r = int(model.resolution)
    try:
        mat = transform_matrix(lm, r, face_type)
    except ValueError as error:
        raise MergeError(str(error)) from None
    face = cv2.warpAffine(frame, mat, (r, r), flags=cv2.INTER_CUBIC)
    np.clip(face, 0.0, 1.0, out=face)
    hull = cv2.warpAffine(hull_mask(frame.shape[:2], lm), mat, (r, r), flags=cv2.INTER_CUBIC)
    np.clip(hull, 0.0, 1.0, out=hull)
    model = ModelFace(r, face_type)
    return FaceCrop(face, hull, lm, mat, model, (frame.shape[0], frame.shape[1]))


def _prediction_arrays(prediction: Prediction, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The prediction's face and masks as float32 clipped to [0, 1], masks (R, R)."""
    face = np.asarray(prediction.face, dtype=np.float32)
    if face.shape != (r, r, 3):
        raise MergeError(f"a predicted face must be ({r}, {r}, 3), got {face.shape}")
    masks = []
    for name, m in (("src_mask", prediction.src_mask), ("dst_mask", prediction.dst_mask)):
        m = np.asarray(m, dtype=np.float32)
        if m.shape not in ((r, r), (r, r, 1)):
            raise MergeError(f"a predicted {name} must be ({r}, {r}), got {m.shape}")
        masks.append(np.clip(m.reshape(r, r), 0.0, 1.0))
    return np.clip(face, 0.0, 1.0), masks[0], masks[1]


def _mask_mode(mode: str, hull: np.ndarray, prd: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """W0, the working mask in the crop, for a mask mode (a new array)."""
    if mode == "full":
        return np.ones_like(hull)
    if mode == "dst":
        return hull.copy()
    if mode == "learned-prd":
        return prd.copy()
    if mode == "learned-dst":
        return dst.copy()
    if mode == "learned-prd*learned-dst":
        return prd * dst
    if mode == "learned-prd+learned-dst":
        return np.clip(prd + dst, 0.0, 1.0)
    raise MergeError(f"unknown mask mode {mode!r}")


def _erode_blur(mask: np.ndarray, r: int, erode: int, blur: int) -> np.ndarray:
    """Erode (>0) or dilate (<0) with an ellipse, zero a border band, Gaussian-blur: on the
    (4R, 4R) mask padded by R, as DFL; the band is clamped so a large blur cannot empty it."""
    if erode == 0 and blur == 0:
        return np.clip(mask, 0.0, 1.0)  # the band would only clear the padding
    padded = np.pad(mask, r)
    if erode != 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (abs(erode), abs(erode)))
        op = cv2.erode if erode > 0 else cv2.dilate
        padded = op(padded, kernel, iterations=1)
    q = mask.shape[0]
    band = r + min(blur // 2, int(q * MAX_BAND_FRACTION))
    padded[:band, :] = 0.0
    padded[-band:, :] = 0.0
    padded[:, :band] = 0.0
    padded[:, -band:] = 0.0
    if blur > 0:
        k = blur + (1 - blur % 2)  # odd
        padded = cv2.GaussianBlur(padded, (k, k), 0)
    return np.clip(padded[r:-r, r:-r], 0.0, 1.0)


Roi = tuple[int, int, int, int]  # y0, y1, x0, x1 in frame pixels


def _frame_box(
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


def _paste_roi(mat: np.ndarray, size: int, shape: tuple[int, int]) -> Roi:
    """The frame rectangle a bicubic inverse warp of a whole `size` square can reach."""
    m = BICUBIC_REACH_PX
    return _frame_box(mat, (-m, -m, size + m, size + m), shape)


def _mask_roi(mask: np.ndarray, mat: np.ndarray, shape: tuple[int, int]) -> Roi:
    """The frame rectangle an inverse warp of `mask` can make non-zero (empty for a zero mask)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return (0, 0, 0, 0)
    cols = np.flatnonzero(mask.any(axis=0))
    m = BICUBIC_REACH_PX
    box = (cols[0] - m, rows[0] - m, cols[-1] + m, rows[-1] + m)
    return _frame_box(mat, box, shape)


def _shifted(mat: np.ndarray, roi: Roi) -> np.ndarray:
    """`mat` (frame -> crop) for frame coordinates relative to the ROI's corner."""
    out = np.array(mat, dtype=np.float64)
    out[:, 2] += out[:, :2] @ np.array([roi[2], roi[0]], dtype=np.float64)
    return out


def _paste(image: np.ndarray, mat: np.ndarray, roi: Roi) -> np.ndarray:
    """Inverse-warp a crop into the ROI of the frame (bicubic, zero outside the crop)."""
    y0, y1, x0, x1 = roi
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(image, _shifted(mat, roi), (x1 - x0, y1 - y0), flags=flags)


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
    crop: FaceCrop,
    area: np.ndarray,
    settings: MergeSettings,
    kernel: tuple[int, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """The second pass on the merged face crop: seamless colour transfer, seamless hist match,
    motion blur, blur/sharpen."""
    s = settings
    if s.mode in SEAMLESS_MODES and s.color_transfer_mode is not None:
        face = colour.color_transfer(s.color_transfer_mode, face, crop.face, area, rng)
    if s.mode == "seamless-hist-match":
        face = colour.hist_match(face, crop.face, s.hist_match_threshold)
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
class _Paste:
    """Where one face goes: the frame rectangle, the paste matrix and the masks."""

    roi: Roi
    out_mat: np.ndarray  # frame -> crop at R, with the output face scale
    frame_mask: np.ndarray  # (h, w, 1) of the ROI
    crop_mask: np.ndarray  # (R, R, 1)

    @property
    def slices(self) -> tuple[slice, slice]:
        y0, y1, x0, x1 = self.roi
        return slice(y0, y1), slice(x0, x1)


def _blend_face(
    frame: np.ndarray,
    crop: FaceCrop,
    face: np.ndarray,
    paste: _Paste,
    settings: MergeSettings,
    motion: Motion | None,
    rng: np.random.Generator,
    notes: list[str] | None,
) -> np.ndarray:
    """overlay, hist-match, seamless, seamless-hist-match: the merged frame (a new array)."""
    s, r = settings, crop.model.resolution
    sy, sx = paste.slices
    frame_roi, mask = frame[sy, sx], paste.frame_mask
    if not _size_gate(mask):
        return frame.copy()
    area = (paste.crop_mask > 0).astype(np.float32)
    if s.color_transfer_mode is not None and s.mode not in SEAMLESS_MODES:
        face = colour.color_transfer(s.color_transfer_mode, face, crop.face, area, rng)
    if s.mode == "hist-match":
        face = _hist_match_face(face, crop.face, area, s)
    pasted = np.clip(_paste(face, paste.out_mat, paste.roi), 0.0, 1.0)
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
        g = _face_filters(g, crop, area, s, kernel, rng)
        merged = _paste(g, paste.out_mat, paste.roi)
    if _needs_face_pass(s, kernel[0]) or base is not frame:
        base_roi = base[sy, sx]
        merged = np.clip(base_roi + (merged - base_roi) * mask, 0.0, 1.0)
    out = base.copy()
    out[sy, sx] = merged
    if s.color_degrade_power:
        out = filters.color_degrade(out, s.color_degrade_power)
    return out


def _raw_rgb(frame: np.ndarray, face: np.ndarray, paste: _Paste) -> np.ndarray:
    """raw-rgb: the predicted square pasted as is, its edge softened by the bicubic warp."""
    roi = _paste_roi(paste.out_mat, face.shape[0], frame.shape[:2])
    y0, y1, x0, x1 = roi
    sy, sx = slice(y0, y1), slice(x0, x1)
    frame_roi = frame[sy, sx]
    if frame_roi.size == 0:
        return frame.copy()
    pasted = _paste(face, paste.out_mat, roi)
    cover = _paste(np.ones_like(face), paste.out_mat, roi)
    out = frame.copy()
    out[sy, sx] = np.clip(frame_roi * (1.0 - cover) + pasted * cover, 0.0, 1.0)
    return out


def _prepare_paste(
    crop: FaceCrop, prd_mask: np.ndarray, dst_mask: np.ndarray, settings: MergeSettings
) -> _Paste:
    """The working mask (mask mode, noise floor, 4x, erode/blur) and where it goes."""
    r, face_type = crop.model.resolution, crop.model.face_type
    q = r * MASK_SUBRES
    scale = 1.0 + 0.01 * settings.output_face_scale
    out_mat = crop.face_mat
    if settings.output_face_scale != 0:
        out_mat = transform_matrix(crop.landmarks, r, face_type, scale=scale)
    mask_mat = transform_matrix(crop.landmarks, q, face_type, scale=scale)
    w = _mask_mode(settings.mask_mode, crop.hull, prd_mask, dst_mask)
    w[w < NOISE_FLOOR] = 0.0
    w = cv2.resize(w, (q, q), interpolation=cv2.INTER_CUBIC)
    if not settings.is_raw:
        w = _erode_blur(w, r, settings.erode_mask_modifier, settings.blur_mask_modifier)
    roi = _mask_roi(w, mask_mat, crop.frame_shape)
    y0, y1, x0, x1 = roi
    if y1 > y0 and x1 > x0:
        frame_mask = np.clip(_paste(w, mask_mat, roi), 0.0, 1.0)
        frame_mask[frame_mask < NOISE_FLOOR] = 0.0
    else:
        frame_mask = np.zeros((max(0, y1 - y0), max(0, x1 - x0)), np.float32)
    crop_mask = cv2.resize(w, (r, r), interpolation=cv2.INTER_CUBIC)
    return _Paste(roi, out_mat, frame_mask[..., None], crop_mask[..., None])


def merge_face(
    frame: np.ndarray,
    crop: FaceCrop,
    prediction: Prediction,
    settings: MergeSettings,
    motion: Motion | None = None,
    *,
    rng: np.random.Generator | None = None,
    notes: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Merge one face into the frame (DFL's MergeMaskedFace).

    Returns (image, mask): the merged frame (H, W, 3) and the merge mask (H, W, 1), float32;
    for raw-predict the predicted face (R, R, 3) and its mask (R, R, 1). `motion` is the face's
    motion (filters.motion_vectors). idt, sot-m and mix-m draw from `rng` (default: a generator
    seeded with COLOR_TRANSFER_SEED, so a frame always merges the same). Problems that do not
    stop the merge (a failed seamless clone) are appended to `notes`.
    """
    frame = _check_frame(frame)
    if frame.shape[:2] != crop.frame_shape:
        raise MergeError(
            f"the frame is {frame.shape[:2]} but the face was cut from {crop.frame_shape}"
        )
    face, prd_mask, dst_mask = _prediction_arrays(prediction, crop.model.resolution)
    paste = _prepare_paste(crop, prd_mask, dst_mask, settings)
    if settings.mode == "raw-predict":
        return face, paste.crop_mask
    full_mask = np.zeros((*frame.shape[:2], 1), np.float32)
    sy, sx = paste.slices
    full_mask[sy, sx] = paste.frame_mask
    if settings.mode == "raw-rgb":
        return _raw_rgb(frame, face, paste), full_mask
    if settings.mode == "original" or paste.frame_mask.size == 0:
        return frame.copy(), full_mask
    if rng is None:
        rng = np.random.default_rng(COLOR_TRANSFER_SEED)
    image = _blend_face(frame, crop, face, paste, settings, motion, rng, notes)
    return image, full_mask


FaceInput = tuple[FaceCrop, Prediction, Motion | None]


def merge_frame(
    frame: np.ndarray,
    faces: list[FaceInput],
    settings: MergeSettings,
    *,
    resolution: int | None = None,
    notes: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Merge every face of a frame in order (DFL's MergeMasked); returns (image, mask) float32.

    Later faces go over earlier ones by their masks; the masks add up (clipped to 1). A frame
    without faces comes back unchanged with an empty mask; in raw-predict it is a black
    `resolution` square (required then).
    """
    frame = _check_frame(frame)
    if not faces:
        if settings.mode == "raw-predict":
            if resolution is None:
                raise MergeError("raw-predict of a frame without faces needs the model resolution")
            return np.zeros((resolution, resolution, 3), np.float32), np.zeros(
                (resolution, resolution, 1), np.float32
            )
        return frame.copy(), np.zeros((*frame.shape[:2], 1), np.float32)
    image, mask = None, None
    for crop, prediction, motion in faces:
        face_image, face_mask = merge_face(frame, crop, prediction, settings, motion, notes=notes)
        if image is None or mask is None:
            image, mask = face_image, face_mask
        else:
            image = image + (face_image - image) * face_mask
            mask = np.minimum(mask + face_mask, 1.0)
    assert image is not None and mask is not None
    return image, mask
