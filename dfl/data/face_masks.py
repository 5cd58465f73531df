"""Masks DFL draws from a face's 68 landmarks: the full-face hull mask (with the brows pushed up
by eyebrows_expand_mod) and the soft eyes-and-mouth priority mask."""

from __future__ import annotations

import cv2
import numpy as np

from dfl.data.landmarks import (
    LEFT_BROW,
    LEFT_EYE,
    MOUTH_INNER,
    NOSE_BOTTOM,
    NOSE_RIDGE,
    RIGHT_BROW,
    RIGHT_EYE,
    check_landmarks,
)


def expand_eyebrows(landmarks: np.ndarray, eyebrows_expand_mod: float = 1.0) -> np.ndarray:
    """Integer landmarks with the brows pushed away from the eyes (DFL's hull-mask preparation)."""
    lm = np.trunc(check_landmarks(landmarks)).astype(np.int64)
    mid_left = (lm[36] + lm[0]) // 2
    mid_right = (lm[16] + lm[45]) // 2
    quarter_left = (lm[36] + mid_left) // 2
    quarter_right = (lm[45] + mid_right) // 2
    eye_top_right = np.array([quarter_left, lm[36], lm[37], lm[38], lm[39]])
    eye_top_left = np.array([lm[42], lm[43], lm[44], lm[45], quarter_right])
    brow_r = lm[RIGHT_BROW].astype(np.float64)
    brow_l = lm[LEFT_BROW].astype(np.float64)
    k = eyebrows_expand_mod * 0.5
    lm[RIGHT_BROW] = np.trunc(brow_r + k * (brow_r - eye_top_right)).astype(np.int64)
    lm[LEFT_BROW] = np.trunc(brow_l + k * (brow_l - eye_top_left)).astype(np.int64)
    return lm


def _fill_hull(mask: np.ndarray, pts: np.ndarray) -> None:
    hull = cv2.convexHull(np.ascontiguousarray(pts, dtype=np.int32))
    cv2.fillConvexPoly(mask, hull, 1.0)


def hull_mask(
    shape_hw: tuple[int, int], landmarks: np.ndarray, eyebrows_expand_mod: float = 1.0
) -> np.ndarray:
    """Full-face mask (h,w,1) float32 in {0,1}: union of 8 convex hulls over the landmarks."""
    h, w = int(shape_hw[0]), int(shape_hw[1])
    lm = expand_eyebrows(landmarks, eyebrows_expand_mod)
    chin = lm[8:9]
    parts = (
        (lm[0:9], lm[17:18]),  # right jaw + brow end
        (lm[8:17], lm[26:27]),  # left jaw + brow end
        (lm[17:20], chin),  # right cheek
        (lm[24:27], chin),  # left cheek
        (lm[19:25], chin),  # nose ridge
        (lm[RIGHT_BROW], lm[27:28], lm[NOSE_BOTTOM], chin),  # right eye region
        (lm[LEFT_BROW], lm[27:28], lm[NOSE_BOTTOM], chin),  # left eye region
        (lm[NOSE_RIDGE], lm[NOSE_BOTTOM]),  # nose
    )
    mask = np.zeros((h, w), dtype=np.float32)
    for part in parts:
        _fill_hull(mask, np.concatenate(part))
    return mask[..., None]


def _soft_part_mask(h: int, w: int, polys: list[np.ndarray]) -> np.ndarray:
    mask = np.zeros((h, w), dtype=np.float32)
    for pts in polys:
        _fill_hull(mask, np.trunc(pts))
    dilate = max(1, h // 32)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (dilate, dilate))
    mask = cv2.dilate(mask, kernel, iterations=1)
    blur = h // 16
    blur += 1 - blur % 2  # force odd
    return cv2.GaussianBlur(mask, (blur, blur), 0)


def eyes_mouth_mask(
    shape_hw: tuple[int, int], landmarks: np.ndarray, face_mask: np.ndarray | None = None
) -> np.ndarray:
    """Eyes + inner-mouth priority mask (h,w,1) float32 in [0,1].

    When ``face_mask`` is given (h,w) or (h,w,1), the result is multiplied by its binarised form
    (every non-zero value counts as 1), as DFL does before cropping.
    """
    h, w = int(shape_hw[0]), int(shape_hw[1])
    lm = check_landmarks(landmarks)
    eyes = _soft_part_mask(h, w, [lm[RIGHT_EYE], lm[LEFT_EYE]])
    mouth = _soft_part_mask(h, w, [lm[MOUTH_INNER]])
    mask = np.clip(eyes + mouth, 0.0, 1.0)[..., None]
    if face_mask is not None:
        fm = np.asarray(face_mask).reshape(h, w, 1)
        mask = mask * (fm != 0).astype(np.float32)
    return mask.astype(np.float32, copy=False)
