"""The masked merge of one frame: DFL's MergeMasked/MergeMaskedFace (docs/merge.md).

Frames are float32 BGR (H, W, 3) in [0, 1]; landmarks are the 68 `source_landmarks` in frame
pixels. `crop_face` cuts the model's input; `merge_face` pastes the model's answer back; the
frame-sized work is done only in the rectangle the pasted face can reach.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dfl.data.face_masks import hull_mask
from dfl.data.landmarks import (
    FACE_TYPE_PADDING,
    FULL_FACE_NO_ALIGN,
    HEAD_NO_ALIGN,
    face_type_from_code,
    transform_matrix,
)
from dfl.errors import UserError
from dfl.merge.blend import Motion, Paste, blend_face, mask_roi, paste_crop, raw_rgb
from dfl.merge.settings import MergeSettings

MASK_SUBRES = 4  # masks are processed at 4x the model resolution
NOISE_FLOOR = 1.0 / 255.0  # mask values below this count as 0
MAX_BAND_FRACTION = 0.375  # the blur's zero band stops at 3/8 of the mask side (DFL: no limit)
COLOR_TRANSFER_SEED = 0  # idt, sot-m and mix-m draw from a generator seeded with this per face
UNSUPPORTED_FACE_TYPES = (FULL_FACE_NO_ALIGN, HEAD_NO_ALIGN)


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


def _preparepaste_crop(
    crop: FaceCrop, prd_mask: np.ndarray, dst_mask: np.ndarray, settings: MergeSettings
) -> Paste:
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
    roi = mask_roi(w, mask_mat, crop.frame_shape)
    y0, y1, x0, x1 = roi
    if y1 > y0 and x1 > x0:
        frame_mask = np.clip(paste_crop(w, mask_mat, roi), 0.0, 1.0)
        frame_mask[frame_mask < NOISE_FLOOR] = 0.0
    else:
        frame_mask = np.zeros((max(0, y1 - y0), max(0, x1 - x0)), np.float32)
    crop_mask = cv2.resize(w, (r, r), interpolation=cv2.INTER_CUBIC)
    return Paste(roi, out_mat, frame_mask[..., None], crop_mask[..., None])


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
    paste = _preparepaste_crop(crop, prd_mask, dst_mask, settings)
    if settings.mode == "raw-predict":
        return face, paste.crop_mask
    full_mask = np.zeros((*frame.shape[:2], 1), np.float32)
    sy, sx = paste.slices
    full_mask[sy, sx] = paste.frame_mask
    if settings.mode == "raw-rgb":
        return raw_rgb(frame, face, paste), full_mask
    if settings.mode == "original" or paste.frame_mask.size == 0:
        return frame.copy(), full_mask
    if rng is None:
        rng = np.random.default_rng(COLOR_TRANSFER_SEED)
    image = blend_face(frame, crop.face, face, paste, settings, motion, rng, notes)
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
