"""Per-sample augmentation: face-type crop, colour transfer, random warp, random affine, flip and
HSV shift."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from dfl.data import landmarks
from dfl.data.colortransfer import color_transfer, normalize_ct_mode
from dfl.data.sample_masks import base_masks

if TYPE_CHECKING:
    from dfl.data.faceset import FaceSample

# DFL's augmentation numbers (docs/training.md §8).
ROTATION_RANGE_DEG = (-10.0, 10.0)  # degrees
SHIFT_RANGE = (-0.05, 0.05)  # fraction of the width
SCALE_RANGE_QUICK96 = (-0.05, 0.05)  # the default: scale ~ U(1/(1-s0), 1+s1) = U(0.952, 1.05)
SCALE_RANGE_SAEHD = (-0.15, 0.15)  # SAEHD and AMP: U(0.870, 1.15)
FLIP_PROBABILITY = 0.4  # DFL: randint(10) < 4
WARP_CELL_DIVISORS = (2, 4, 8)  # cell = w // divisor: 3, 5 or 9 control points per axis
WARP_OFFSET_FACTOR = 0.24  # interior control points move up to this many cells
WARP_TRUNCATION_SIGMA = 2.5  # offsets: N(0,1) truncated to ±2.5, then / 2.5 -> [-1, 1]
MIN_WORK_RESOLUTION = 64  # px; smaller outputs are made at this size and resized back
RANDOM_HSV_MAX = 0.3  # largest random_hsv_power DFL offers
HUE_DEGREES = 360.0  # OpenCV float HSV: H in [0, 360), S and V in [0, 1]

_U8_SCALE = np.float32(1.0 / 255.0)


@dataclass(frozen=True)
class AugmentConfig:
    """How one side's samples are made (the defaults are Quick96's: warp on, no flip)."""

    resolution: int  # px, output side
    face_type: str  # DFL long name of the model's face type, e.g. 'full_face'
    random_warp: bool = True
    random_flip: bool = False
    rotation_range_deg: tuple[float, float] = ROTATION_RANGE_DEG
    scale_range: tuple[float, float] = SCALE_RANGE_QUICK96
    shift_range: tuple[float, float] = SHIFT_RANGE
    random_hsv_power: float = 0.0  # 0..0.3; shifts hue, saturation and value of the warped input
    eyes_mouth: bool = False  # also make the eyes/mouth priority mask
    # Colour transfer toward a random face of the other side (SAEHD/AMP: src only): None/'none',
    # 'rct', 'lct', 'mkl', 'idt' or 'sot' (stored normalised: None or the lower-case mode).
    ct_mode: str | None = None
    uniform_yaw: bool = False  # the batcher balances this side's samples over head yaw

    def __post_init__(self) -> None:
        object.__setattr__(self, "ct_mode", normalize_ct_mode(self.ct_mode))
        if self.resolution < 1:
            raise ValueError(f"resolution must be positive, got {self.resolution}")
        if self.face_type not in landmarks.FACE_TYPE_PADDING:
            raise ValueError(f"face type {self.face_type!r} has no crop")
        if not -1.0 < self.scale_range[0] <= self.scale_range[1]:
            raise ValueError(f"scale_range must satisfy -1 < s0 <= s1, got {self.scale_range}")
        if not 0.0 <= self.random_hsv_power <= RANDOM_HSV_MAX:
            raise ValueError(
                f"random_hsv_power must be in [0, {RANDOM_HSV_MAX}], got {self.random_hsv_power}"
            )

    @property
    def work_resolution(self) -> int:
        """The size the geometry is computed at (the resolution, at least 64 px)."""
        return max(self.resolution, MIN_WORK_RESOLUTION)


@dataclass(frozen=True, eq=False)
class WarpParams:
    """One sample's random draw, shared by its warped input, target and masks."""

    rotation_deg: float
    scale: float
    tx: float  # fraction of the width
    ty: float  # fraction of the width
    flip: bool
    grid: np.ndarray | None = None  # (n, n, 2) control-point offsets (dx, dy) in work px
    cell: int = 0  # grid cell in work px
    hsv: tuple[float, float, float] | None = None  # (hue degrees, saturation, value) shifts


def truncated_normal(rng: np.random.Generator, size: tuple[int, ...]) -> np.ndarray:
    """Standard normal truncated to ±2.5 and divided by 2.5, so in [-1, 1] (DFL's random_normal)."""
    out = rng.standard_normal(size)
    bad = np.abs(out) > WARP_TRUNCATION_SIGMA
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > WARP_TRUNCATION_SIGMA
    return out / WARP_TRUNCATION_SIGMA


def draw_warp_params(cfg: AugmentConfig, rng: np.random.Generator) -> WarpParams:
    """Draw rotation, scale, shift, flip, HSV and (if warping) the grid, in that order."""
    w = cfg.work_resolution
    rotation = rng.uniform(*cfg.rotation_range_deg)
    s0, s1 = cfg.scale_range
    scale = rng.uniform(1.0 / (1.0 - s0), 1.0 + s1)
    tx = rng.uniform(*cfg.shift_range)
    ty = rng.uniform(*cfg.shift_range)
    flip = bool(cfg.random_flip and rng.random() < FLIP_PROBABILITY)
    hsv = None
    if cfg.random_hsv_power > 0.0:
        a = cfg.random_hsv_power
        hue_max = max(1, int(HUE_DEGREES * a * 0.5))
        hsv = (
            float(rng.integers(-hue_max, hue_max + 1)),
            float((rng.random() - 0.5) * a),
            float((rng.random() - 0.5) * a),
        )
    grid, cell = None, 0
    if cfg.random_warp:
        cell = w // WARP_CELL_DIVISORS[int(rng.integers(len(WARP_CELL_DIVISORS)))]
        n = w // cell + 1
        grid = np.zeros((n, n, 2), np.float32)
        offsets = truncated_normal(rng, (2, n - 2, n - 2)) * (WARP_OFFSET_FACTOR * cell)
        grid[1:-1, 1:-1, 0] = offsets[0]
        grid[1:-1, 1:-1, 1] = offsets[1]
    return WarpParams(float(rotation), float(scale), float(tx), float(ty), flip, grid, cell, hsv)


def affine_matrix(params: WarpParams, w: int) -> np.ndarray:
    """(3,3) float64: rotation and scale about (w//2, w//2), shift by (tx·w, ty·w), then flip."""
    mat = np.eye(3)
    mat[:2] = cv2.getRotationMatrix2D((w // 2, w // 2), params.rotation_deg, params.scale)
    mat[0, 2] += params.tx * w
    mat[1, 2] += params.ty * w
    if params.flip:
        mat = np.array([[-1.0, 0.0, w - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ mat
    return mat


def grid_offsets(params: WarpParams, w: int) -> np.ndarray:
    """Dense (w, w, 2) float32 offset field of the grid warp: the control offsets resized
    bilinearly to (w + cell)² and cropped by cell // 2 on each side (DFL's construction)."""
    assert params.grid is not None
    cell = params.cell
    big = cv2.resize(params.grid, (w + cell, w + cell), interpolation=cv2.INTER_LINEAR)
    half = cell // 2
    return np.ascontiguousarray(big[half : half + w, half : half + w])


@functools.lru_cache(maxsize=8)
def pixel_grid(w: int) -> np.ndarray:
    """(w, w, 2) float32 pixel coordinates (x, y); read-only, shared."""
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(w, dtype=np.float32))
    xy = np.ascontiguousarray(np.dstack([xs, ys]))
    xy.setflags(write=False)
    return xy


def crop_matrix(sample: FaceSample, shape_hw: tuple[int, int], cfg: AugmentConfig) -> np.ndarray:
    """(3,3) float64 from the stored image to the model's face-type crop at the work resolution."""
    w = cfg.work_resolution
    mat = np.eye(3)
    if sample.face_type is None or sample.face_type == cfg.face_type:
        # A plain resize, with cv2.resize's pixel-centre convention.
        sx, sy = w / shape_hw[1], w / shape_hw[0]
        mat[0, 0], mat[0, 2] = sx, 0.5 * sx - 0.5
        mat[1, 1], mat[1, 2] = sy, 0.5 * sy - 0.5
        return mat
    if sample.landmarks is None:
        raise ValueError(
            f"{sample.path}: a {sample.face_type} face without landmarks cannot be cropped to "
            f"{cfg.face_type}"
        )
    mat[:2] = landmarks.transform_matrix(sample.landmarks, w, cfg.face_type)
    return mat


def _check_image(image: np.ndarray, sample: FaceSample) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"{sample.path}: expected a uint8 BGR image (h, w, 3), got {image.dtype} {image.shape}"
        )


def shift_hsv(image: np.ndarray, hsv: tuple[float, float, float]) -> np.ndarray:
    """Shift hue (degrees, wrapping), saturation and value (clipped to [0, 1]) of a float32 BGR
    image in [0, 1], in place; returns it."""
    dh, ds, dv = hsv
    hue, sat, val = cv2.split(cv2.cvtColor(image, cv2.COLOR_BGR2HSV))
    hue += np.float32(dh % HUE_DEGREES)  # now in [0, 720)
    np.subtract(hue, np.float32(HUE_DEGREES), out=hue, where=hue >= HUE_DEGREES)
    for channel, delta in ((sat, ds), (val, dv)):
        channel += np.float32(delta)
        np.clip(channel, 0.0, 1.0, out=channel)
    cv2.cvtColor(cv2.merge((hue, sat, val)), cv2.COLOR_HSV2BGR, dst=image)
    return np.clip(image, 0.0, 1.0, out=image)


def color_transferred_crop(
    image: np.ndarray,
    crop: np.ndarray,
    cfg: AugmentConfig,
    reference: np.ndarray,
    rng: np.random.Generator | None,
) -> np.ndarray:
    """The face-type crop of ``image`` at the work resolution, recoloured with ``cfg.ct_mode``
    toward ``reference``: float32 (w, w, 3) on the 0..255 scale, not clipped.

    As in DFL (docs/training.md §8), the reference is the whole stored image of the other side's
    face resized (linear) to the same size, not face-type cropped.
    """
    assert cfg.ct_mode is not None
    work = cfg.work_resolution
    face = cv2.warpAffine(
        image.astype(np.float32),
        crop[:2],
        (work, work),
        flags=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REPLICATE,
    )
    face *= _U8_SCALE
    ref = cv2.resize(reference, (work, work), interpolation=cv2.INTER_LINEAR)
    ref = ref.astype(np.float32) * _U8_SCALE
    out = color_transfer(cfg.ct_mode, face, ref, rng)
    out *= np.float32(255.0)
    return out


def warp_sample(
    image: np.ndarray,
    sample: FaceSample,
    cfg: AugmentConfig,
    params: WarpParams,
    *,
    masks: np.ndarray | None = None,
    ct_reference: np.ndarray | None = None,
    ct_rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Apply drawn parameters to one sample; see process_sample.

    DFL resamples up to three times (crop, grid remap, affine). Here crop, affine and flip are
    one matrix, so the target and masks take one warpAffine from the stored image, and the
    warped input one remap whose map nests the grid warp inside that matrix. Borders replicate
    the stored image (DFL's remap left a black border inside the crop). A grid with zero offsets
    is the identity (DFL's was the identity plus 0.5 px, from cv2's pixel-centre resize).

    With ``cfg.ct_mode`` the images are made as DFL orders it: crop, colour transfer toward
    ``ct_reference`` (uint8 BGR, the other side's stored face; required), then the warps from
    the recoloured crop (one more resampling). ``ct_rng`` feeds the random modes (idt, sot).
    """
    _check_image(image, sample)
    h, w = image.shape[:2]
    if masks is None:
        masks = base_masks(sample, (h, w), cfg.eyes_mouth)
    work = cfg.work_resolution
    crop = crop_matrix(sample, (h, w), cfg)
    affine = affine_matrix(params, work)
    if cfg.ct_mode is None:
        source = image.astype(np.float32)  # 0..255; the smaller outputs are scaled
        image_crop = crop
    else:
        reference = _checked_reference(ct_reference, sample, cfg)
        source = color_transferred_crop(image, crop, cfg, reference, ct_rng)
        image_crop = np.eye(3)  # source is already the crop
    target, warped = warp_images(source, params, work, affine, image_crop)
    mask_out = _warp_masks(masks, affine @ crop, work)  # stored image -> output
    res = cfg.resolution
    if work != res:
        target = _resize(target, res)
        warped = _resize(warped, res)
        mask_out = [_resize(m, res) for m in mask_out]
    for image_out in (target, warped):
        np.multiply(image_out, _U8_SCALE, out=image_out)
        np.clip(image_out, 0.0, 1.0, out=image_out)
    if params.hsv is not None:
        shift_hsv(warped, params.hsv)
    mask = (mask_out[0].astype(np.float32) * _U8_SCALE).reshape(res, res, 1)
    em = None
    if cfg.eyes_mouth:
        em = mask_out[1].astype(np.float32).reshape(res, res, 1)
        peak = em.max()
        em *= np.float32(1.0 / peak) if peak > 0 else np.float32(0.0)
    return warped, target, mask, em


def _checked_reference(
    ct_reference: np.ndarray | None, sample: FaceSample, cfg: AugmentConfig
) -> np.ndarray:
    """The colour-transfer reference, required and a uint8 BGR image."""
    if ct_reference is None:
        raise ValueError(
            f"{sample.path}: colour transfer {cfg.ct_mode!r} needs a reference face image"
        )
    reference = np.asarray(ct_reference)
    if reference.dtype != np.uint8 or reference.ndim != 3 or reference.shape[2] != 3:
        raise ValueError(
            f"the colour-transfer reference must be a uint8 BGR image (h, w, 3), got "
            f"{reference.dtype} {reference.shape}"
        )
    return reference


def warp_images(
    source: np.ndarray, params: WarpParams, work: int, affine: np.ndarray, crop: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(target, warped) at the work resolution, float32 on the 0..255 scale: the target one
    warpAffine, the warped input one remap with the grid warp nested inside the same matrix."""
    size = (work, work)
    full = affine @ crop
    target = cv2.warpAffine(
        source, full[:2], size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    if params.grid is None:
        return target, target.copy()
    warped = cv2.remap(
        source,
        warp_map(params, work, affine, crop),
        None,
        cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return target, warped


def _warp_masks(masks: np.ndarray, full: np.ndarray, work: int) -> list[np.ndarray]:
    """Each stored-size mask channel taken to the output by ``full``; black outside the stored
    image. OpenCV warps 1-channel images much faster than 2-channel ones, so one at a time."""
    return [
        cv2.warpAffine(
            np.ascontiguousarray(masks[..., c]),
            full[:2],
            (work, work),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
        )
        for c in range(masks.shape[2])
    ]


def _resize(image: np.ndarray, res: int) -> np.ndarray:
    return cv2.resize(image, (res, res), interpolation=cv2.INTER_AREA)


def warp_map(params: WarpParams, w: int, affine: np.ndarray, crop: np.ndarray) -> np.ndarray:
    """(w, w, 2) float32 remap map from the output to the stored image, grid warp included.

    Output pixel p shows the stored image at crop^-1(q + d(q)), with q = affine^-1(p) and d the
    dense grid offsets in the crop frame (zero outside it).
    """
    size = (w, w)
    offsets = grid_offsets(params, w)
    d = cv2.merge(
        [
            cv2.warpAffine(
                np.ascontiguousarray(offsets[..., c]),
                affine[:2],
                size,
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
            )
            for c in range(2)
        ]
    )
    back = np.linalg.inv(affine @ crop)[:2]
    crop_inv_linear = np.zeros((2, 3))
    crop_inv_linear[:, :2] = np.linalg.inv(crop)[:2, :2]
    return cv2.add(cv2.transform(pixel_grid(w), back), cv2.transform(d, crop_inv_linear))


def process_sample(
    image_uint8_bgr: np.ndarray,
    sample: FaceSample,
    cfg: AugmentConfig,
    rng: np.random.Generator,
    *,
    masks: np.ndarray | None = None,
    ct_reference: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Make one training sample: (warped, target, mask, em_mask or None), float32 in [0, 1].

    ``warped`` and ``target`` are (R, R, 3) BGR, the masks (R, R, 1). All four share one draw of
    rotation, scale, shift and flip; only ``warped`` gets the grid warp and the HSV shift.
    ``masks`` are base_masks() for this image, if already at hand (e.g. cached).
    With ``cfg.ct_mode``, ``ct_reference`` (uint8 BGR: the stored image of a random face of the
    other side) is required; ``warped`` and ``target`` are both recoloured toward it, the random
    modes drawing from ``rng`` after the warp parameters.
    """
    params = draw_warp_params(cfg, rng)
    return warp_sample(
        image_uint8_bgr, sample, cfg, params, masks=masks, ct_reference=ct_reference, ct_rng=rng
    )
