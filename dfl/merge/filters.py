"""The merger's image filters: motion blur, blur/sharpen, frame degrades, motion vectors.

Facts from DFL's core/imagelib/blursharpen.py, core/imagelib/reduce_colors.py and
merger/MergeMasked.py; constants and the differences from DFL are in docs/merge.md.
All images are float32 BGR (h, w, 3) in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from dfl.data.landmarks import FULL_FACE, transform_matrix, transform_points

MOTION_KERNEL_MIN = 2  # px, a motion blur kernel's smallest side
MOTION_KERNEL_MAX = 50  # px, and its largest
SHARPEN_KERNEL = 3  # px, box and Gaussian sharpen
MEDIAN_KERNEL = 5  # px, the median blur of negative amounts and of the denoise degrade
BLUR_PASS = 10  # amount units per full median pass of a negative blur/sharpen amount
DENOISE_PASS = 100  # power units of a full median pass of the denoise degrade
DENOISE_STEP = 10  # power units removed after each denoise pass
BICUBIC_DIVISOR = 101.0  # the bicubic degrade keeps 1 - power/101 of each side
PALETTE_COLORS = 256  # colour degrade palette size
MOTION_CROP_SIZE = 256  # motion vectors: DFL's full-face crop of each frame's first face
MOTION_CROP_POINT = (127.0, 127.0)  # the crop point tracked between frames


def motion_kernel_size(motion_power: float, motion_blur_power: int) -> int:
    """Kernel side for a motion of `motion_power` px (crop pixels here, see docs/merge.md) at the
    setting `motion_blur_power` (0-100); 0 = no blur."""
    k = int(motion_power * motion_blur_power / 100.0)
    if k < 1:
        return 0
    return int(np.clip(k + 1, MOTION_KERNEL_MIN, MOTION_KERNEL_MAX))


def motion_blur(image: np.ndarray, size: int, angle_deg: float) -> np.ndarray:
    """Linear motion blur: a `size` px line kernel rotated by `angle_deg` (counter-clockwise),
    normalised to sum 1 (DFL's LinearMotionBlur)."""
    kernel = np.zeros((size, size), np.float32)
    kernel[(size - 1) // 2, :] = 1.0
    centre = (size / 2 - 0.5, size / 2 - 0.5)
    rot = cv2.getRotationMatrix2D(centre, angle_deg, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (size, size))
    kernel *= 1.0 / kernel.sum()
    return cv2.filter2D(image, -1, kernel)


def _median_passes(image: np.ndarray, amount: int, full: int, step: int) -> np.ndarray:
    """Repeated 5x5 median blurs: a full pass while `amount` >= `full`, else a blend by
    (amount mod full)/full; `amount` drops by `step` after each pass."""
    n = amount
    while n > 0:
        blurred = cv2.medianBlur(image, MEDIAN_KERNEL)
        if n >= full:
            image = blurred
        else:
            t = np.float32((n % full) / full)
            image = image + (blurred - image) * t
        n = max(n - step, 0)
    return image


def blur_sharpen(image: np.ndarray, sharpen_mode: str | None, amount: int) -> np.ndarray:
    """Sharpen (amount > 0, mode box or gaussian; the amount is used unscaled, as DFL) or blur
    (amount < 0, any mode: median passes of 10 amount units each)."""
    if amount > 0:
        if sharpen_mode == "box":
            k = SHARPEN_KERNEL
            identity = np.zeros((k, k), np.float32)
            identity[k // 2, k // 2] = 1.0
            box = np.full((k, k), 1.0 / (k * k), np.float32)
            return cv2.filter2D(image, -1, identity + (identity - box) * amount)
        if sharpen_mode == "gaussian":
            blurred = cv2.GaussianBlur(image, (SHARPEN_KERNEL, SHARPEN_KERNEL), 0)
            return cv2.addWeighted(image, 1.0 + 0.5 * amount, blurred, -0.5 * amount, 0)
        return image
    if amount < 0:
        return _median_passes(image, -amount, BLUR_PASS, BLUR_PASS)
    return image


def denoise_degrade(frame: np.ndarray, power: int) -> np.ndarray:
    """DFL's "image degrade by denoise": median passes, one full pass per 100 power left, each
    step taking 10 off (500 -> 41 full passes, then blends 0.9 ... 0.1)."""
    return _median_passes(frame, power, DENOISE_PASS, DENOISE_STEP)


def bicubic_degrade(frame: np.ndarray, power: int) -> np.ndarray:
    """Bicubic down- and upscale by 1 - power/101 of each side (at least 1 px, unlike DFL)."""
    if power <= 0:
        return frame
    h, w = frame.shape[:2]
    p = 1.0 - power / BICUBIC_DIVISOR
    size = (max(1, int(w * p)), max(1, int(h * p)))
    small = cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _median_cut_boxes(colors: np.ndarray, counts: np.ndarray, n_colors: int) -> np.ndarray:
    """Split the weighted colours (k, 3) into at most `n_colors` boxes by median cut: the box
    with the most pixels (that can still split) is cut across its widest channel at its weighted
    median. Returns the box index of every colour."""
    box_of = np.zeros(len(colors), np.int32)
    boxes = [np.arange(len(colors))]
    weights = [int(counts.sum())]
    while len(boxes) < n_colors:
        order = sorted(range(len(boxes)), key=lambda i: -weights[i])
        split = next((i for i in order if len(boxes[i]) > 1), None)
        if split is None:
            break
        members = boxes[split]
        c = colors[members]
        channel = int(np.argmax(c.max(axis=0) - c.min(axis=0)))
        sorted_members = members[np.argsort(c[:, channel], kind="stable")]
        cum = np.cumsum(counts[sorted_members])
        cut = int(np.searchsorted(cum, cum[-1] / 2.0)) + 1
        cut = min(max(cut, 1), len(sorted_members) - 1)
        low, high = sorted_members[:cut], sorted_members[cut:]
        boxes[split], weights[split] = low, int(counts[low].sum())
        boxes.append(high)
        weights.append(int(counts[high].sum()))
        box_of[high] = len(boxes) - 1
    return box_of


def reduce_colors(image: np.ndarray, n_colors: int = PALETTE_COLORS) -> np.ndarray:
    """The image in an adaptive palette of `n_colors` colours (median cut on the 8-bit colours,
    each box drawn as its pixels' mean), float32. DFL uses Pillow's ADAPTIVE palette, which is a
    median cut too; the palettes can differ in detail (docs/merge.md)."""
    u8 = (np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)  # truncation, as DFL
    flat = u8.reshape(-1, 3)
    key = (flat[:, 0].astype(np.int32) << 16) | (flat[:, 1].astype(np.int32) << 8) | flat[:, 2]
    uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    colors = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], axis=1)
    box_of = _median_cut_boxes(colors.astype(np.float64), counts, n_colors)
    n_boxes = int(box_of.max()) + 1
    total = np.bincount(box_of, weights=counts, minlength=n_boxes)
    palette = np.stack(
        [np.bincount(box_of, weights=colors[:, c] * counts, minlength=n_boxes) for c in range(3)],
        axis=1,
    )
    palette = np.floor(palette / total[:, None] + 0.5).astype(np.float32) / 255.0
    return palette[box_of[inverse.reshape(-1)]].reshape(image.shape)


def color_degrade(image: np.ndarray, power: int) -> np.ndarray:
    """Blend toward the palette-reduced image by power/100 (100 = the reduced image)."""
    if power <= 0:
        return image
    reduced = reduce_colors(image)
    if power >= 100:
        return reduced
    t = np.float32(power / 100.0)
    return image + (reduced - image) * t


# --- Motion vectors (DFL's Merger.py; per face, docs/merge.md "Motion blur") ---------------------

Motion = tuple[float, float]  # (length in frame pixels over two frame intervals, angle in degrees)


def _face_centre(landmarks: np.ndarray) -> np.ndarray:
    """Where the centre point of DFL's 256 px full-face crop lies in the frame."""
    mat = transform_matrix(landmarks, MOTION_CROP_SIZE, FULL_FACE)
    return transform_points(np.array([MOTION_CROP_POINT]), mat, invert=True)[0]


def _nearest(centres: list[np.ndarray], point: np.ndarray) -> np.ndarray | None:
    if not centres:
        return None
    return min(centres, key=lambda c: float(np.hypot(*(c - point))))


def _vector(prev: np.ndarray, nxt: np.ndarray) -> Motion:
    v = nxt - prev
    power = float(np.hypot(v[0], v[1]))
    if power == 0.0:
        return (0.0, 0.0)
    return (power, -math.degrees(math.atan2(v[1], v[0])))  # y down -> counter-clockwise


def motion_vectors(landmarks_per_frame: Sequence[Sequence[np.ndarray]]) -> list[list[Motion]]:
    """Each face's motion (power px, angle deg) from the frames before and after it.

    `landmarks_per_frame[i]` holds the 68-point landmarks (frame pixels) of every face of frame
    i. As DFL, the motion is the centre of the full-face crop in the next frame minus that in the
    previous one; the first and last frames stand in for their missing neighbour. Unlike DFL,
    every face is tracked (to the nearest face of each neighbour), and a neighbour without faces
    is treated like a missing one instead of giving no motion at all.
    """
    centres = [[_face_centre(np.asarray(lm)) for lm in faces] for faces in landmarks_per_frame]
    n = len(centres)
    result: list[list[Motion]] = []
    for i, here in enumerate(centres):
        before = centres[i - 1] if i > 0 else []
        after = centres[i + 1] if i < n - 1 else []
        row: list[Motion] = []
        for c in here:
            prev = _nearest(before, c)
            nxt = _nearest(after, c)
            row.append(_vector(c if prev is None else prev, c if nxt is None else nxt))
        result.append(row)
    return result
