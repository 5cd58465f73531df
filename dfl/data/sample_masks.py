"""The masks a training sample starts from, at the stored image size: the stored XSeg mask, else
the landmark hull, else the whole frame; and the eyes/mouth priority mask inside it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from dfl.data import face_masks

if TYPE_CHECKING:
    from dfl.data.faceset import FaceSample


def decode_xseg_mask(sample: FaceSample, shape_hw: tuple[int, int]) -> np.ndarray:
    """The sample's stored XSeg mask as uint8 (h, w), resized (cubic) to the image size."""
    assert sample.xseg_mask is not None
    buf = np.frombuffer(memoryview(sample.xseg_mask), np.uint8)
    mask = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise ValueError(f"{sample.path}: the stored XSeg mask cannot be decoded")
    if mask.ndim == 3:
        mask = mask[..., 0]
    if mask.dtype != np.uint8:
        raise ValueError(f"{sample.path}: the stored XSeg mask is {mask.dtype}, expected uint8")
    if mask.shape != tuple(shape_hw):
        mask = cv2.resize(mask, (shape_hw[1], shape_hw[0]), interpolation=cv2.INTER_CUBIC)
    return mask


def base_masks(sample: FaceSample, shape_hw: tuple[int, int], eyes_mouth: bool) -> np.ndarray:
    """Masks at the stored image size, uint8 0..255, (h, w, 1) or with eyes/mouth (h, w, 2).

    Full face: the XSeg mask if stored, else the landmark hull, else (a plain image) the whole
    frame. Eyes/mouth: the landmark eyes and inner mouth times the binarised full-face mask; zero
    for a plain image, which has no landmarks.
    """
    h, w = shape_hw
    if sample.xseg_mask is not None:
        full = decode_xseg_mask(sample, shape_hw)
    elif sample.landmarks is not None:
        hull = face_masks.hull_mask(shape_hw, sample.landmarks, sample.eyebrows_expand_mod)
        full = (hull.reshape(h, w) > 0).astype(np.uint8) * np.uint8(255)
    else:
        full = np.full((h, w), 255, np.uint8)
    if not eyes_mouth:
        return full[..., None]
    out = np.zeros((h, w, 2), np.uint8)
    out[..., 0] = full
    if sample.landmarks is not None:
        em = face_masks.eyes_mouth_mask(shape_hw, sample.landmarks, full)
        out[..., 1] = np.rint(em.reshape(h, w) * 255.0).astype(np.uint8)
    return out
