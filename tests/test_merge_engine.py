"""Tests for dfl.merge.masked: each mode and mask mode against numpy references written here.

The references follow the documented steps (docs/merge.md) on the whole frame, the way DFL does
them, so they also check that the engine's work on a rectangle around the face changes nothing.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dfl.data import face_masks
from dfl.data import landmarks as L
from dfl.merge import masked as M
from dfl.merge.settings import MASK_MODES, MergeSettings

H, W = 64, 72  # frame
R = 32  # model resolution
Q = 4 * R
FACE_TYPE = L.WHOLE_FACE
PLAIN = dict(color_transfer_mode=None, hist_match_threshold=255)  # no colour change
CUBIC_INV = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
# The engine warps a rectangle around the face: OpenCV's 1/32 px coordinate rounding then differs
# for a few pixels, which shows on sharp mask edges; on average the results agree far closer.
ATOL = 0.04
MEAN_TOL = 5e-4


def _landmarks(cx: float = 36.0, cy: float = 33.0, size: float = 30.0) -> np.ndarray:
    """68 landmarks of a frontal face about `size` px high, centred at (cx, cy)."""
    lm = L.MEAN_SHAPE_3D[:, :2].astype(np.float64)
    lm = (lm - lm.mean(axis=0)) * (size / np.ptp(lm[:, 1]))
    return lm + np.array([cx, cy])


def _frame(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:H, :W].astype(np.float32)
    base = np.stack([x / W, y / H, 0.5 + 0.3 * np.sin(x / 5)], -1)
    return np.clip(base * 0.8 + 0.1 + 0.03 * rng.standard_normal((H, W, 3)), 0, 1).astype(
        np.float32
    )


def _prediction(seed: int = 1) -> M.Prediction:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:R, :R] / R
    face = np.stack([0.2 + 0.6 * x, 0.3 + 0.4 * y, 0.7 - 0.3 * x * y], -1)
    face = np.clip(face + 0.02 * rng.standard_normal((R, R, 3)), 0, 1).astype(np.float32)
    disc = ((x - 0.5) ** 2 + (y - 0.55) ** 2 < 0.12).astype(np.float32)  # learned-prd
    box = np.zeros((R, R), np.float32)
    box[6:28, 5:26] = 0.8  # learned-dst
    return M.Prediction(face, cv2.GaussianBlur(disc, (5, 5), 0), box)


MODEL = M.ModelFace(R, FACE_TYPE)
FRAME = _frame()
LM = _landmarks()
PRED = _prediction()


@pytest.fixture(scope="module")
def crop() -> M.FaceCrop:
    return M.crop_face(FRAME, LM, MODEL)


# --- The reference merge (whole frame, DFL's order) -----------------------------------------------


def _ref_hull(frame: np.ndarray, lm: np.ndarray) -> np.ndarray:
    mat = L.transform_matrix(lm, R, FACE_TYPE)
    hull = face_masks.hull_mask(frame.shape[:2], lm)
    return np.clip(cv2.warpAffine(hull, mat, (R, R), flags=cv2.INTER_CUBIC), 0, 1)


def _ref_w0(mask_mode: str, hull: np.ndarray) -> np.ndarray:
    prd, dst = PRED.src_mask, PRED.dst_mask
    table = {
        "full": np.ones((R, R), np.float32),
        "dst": hull,
        "learned-prd": prd,
        "learned-dst": dst,
        "learned-prd*learned-dst": prd * dst,
        "learned-prd+learned-dst": np.minimum(prd + dst, 1.0),
    }
    return table[mask_mode].astype(np.float32).copy()


def _ref_masks(s: MergeSettings, lm: np.ndarray = LM, frame: np.ndarray = FRAME):
    """(frame mask (H, W, 1), crop mask (R, R, 1), paste matrix)."""
    scale = 1 + 0.01 * s.output_face_scale
    out_mat = L.transform_matrix(lm, R, FACE_TYPE, scale=scale)
    mask_mat = L.transform_matrix(lm, Q, FACE_TYPE, scale=scale)
    w = _ref_w0(s.mask_mode, _ref_hull(frame, lm))
    w = np.where(w < 1 / 255, 0, w).astype(np.float32)
    w = cv2.resize(w, (Q, Q), interpolation=cv2.INTER_CUBIC)
    if s.mode not in ("raw-rgb", "raw-predict"):
        big = np.zeros((Q + 2 * R, Q + 2 * R), np.float32)
        big[R:-R, R:-R] = w
        e, b = s.erode_mask_modifier, s.blur_mask_modifier
        if e:
            k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (abs(e), abs(e)))
            big = cv2.erode(big, k) if e > 0 else cv2.dilate(big, k)
        c = R + b // 2
        big[:c], big[-c:], big[:, :c], big[:, -c:] = 0, 0, 0, 0
        if b:
            big = cv2.GaussianBlur(big, (b | 1, b | 1), 0)
        w = np.clip(big[R:-R, R:-R], 0, 1)
    mf = np.clip(
        cv2.warpAffine(w, mask_mat, (frame.shape[1], frame.shape[0]), flags=CUBIC_INV), 0, 1
    )
    mf[mf < 1 / 255] = 0
    wc = cv2.resize(w, (R, R), interpolation=cv2.INTER_CUBIC)
    return mf[..., None], wc[..., None], out_mat


def _ref_paste(face: np.ndarray, mat: np.ndarray) -> np.ndarray:
    return cv2.warpAffine(face, mat, (W, H), flags=CUBIC_INV)


def _ref_hist_match(src: np.ndarray, tpl: np.ndarray, thr: float) -> np.ndarray:
    """Quantile mapping written with sort/searchsorted (not np.unique)."""
    out = np.empty_like(src)
    for c in range(3):
        s, t = src[..., c].ravel(), tpl[..., c].ravel()
        s_sorted, t_sorted = np.sort(s), np.sort(t)
        q_s = thr * np.searchsorted(s_sorted, s, side="right") / s.size
        t_vals = np.unique(t_sorted)
        q_t = 255.0 * np.searchsorted(t_sorted, t_vals, side="right") / t.size
        out[..., c] = np.interp(q_s, q_t, t_vals).reshape(src.shape[:2])
    return out


def _merge(crop: M.FaceCrop, **kw) -> tuple[np.ndarray, np.ndarray]:
    return M.merge_face(FRAME, crop, PRED, MergeSettings(**{**PLAIN, **kw}))


def _close(a: np.ndarray, b: np.ndarray, atol: float = ATOL, mean_tol: float = MEAN_TOL) -> None:
    assert a.shape == b.shape
    diff = np.abs(a.astype(np.float64) - b)
    assert diff.mean() <= mean_tol, f"mean diff {diff.mean()}"
    assert diff.max() <= atol, (
        f"max diff {diff.max()} at {np.unravel_index(diff.argmax(), a.shape)}"
    )


# --- Crop ----------------------------------------------------------------------------------------


def test_crop_is_the_bicubic_face_and_hull(crop: M.FaceCrop) -> None:
    mat = L.transform_matrix(LM, R, FACE_TYPE)
    ref = np.clip(cv2.warpAffine(FRAME, mat, (R, R), flags=cv2.INTER_CUBIC), 0, 1)
    assert crop.face.shape == (R, R, 3) and crop.face.dtype == np.float32
    np.testing.assert_allclose(crop.face, ref, atol=1e-6)
    np.testing.assert_allclose(crop.hull, _ref_hull(FRAME, LM), atol=1e-6)
    assert 0.2 < crop.hull.mean() < 0.9  # the face fills part of the crop


# --- Mask modes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mask_mode", MASK_MODES)
def test_mask_modes(crop: M.FaceCrop, mask_mode: str) -> None:
    s = MergeSettings(mode="overlay", mask_mode=mask_mode, **PLAIN)
    image, mask = M.merge_face(FRAME, crop, PRED, s)
    ref_mask, _, mat = _ref_masks(s)
    _close(mask, ref_mask)
    pasted = np.clip(_ref_paste(PRED.face, mat), 0, 1)
    _close(image, FRAME * (1 - ref_mask) + pasted * ref_mask)


def test_mask_modes_differ(crop: M.FaceCrop) -> None:
    masks = [_merge(crop, mask_mode=m)[1] for m in MASK_MODES]
    sums = [float(m.sum()) for m in masks]
    assert len({round(v, 1) for v in sums}) == len(MASK_MODES)
    full, _, product, summed = sums[0], sums[1], sums[4], sums[5]
    assert full > summed > product > 0


@pytest.mark.parametrize(("erode", "blur"), [(6, 0), (-8, 0), (0, 15), (5, 20), (-3, 9)])
def test_erode_and_blur(crop: M.FaceCrop, erode: int, blur: int) -> None:
    s = MergeSettings(
        mode="overlay", mask_mode="dst", erode_mask_modifier=erode, blur_mask_modifier=blur, **PLAIN
    )
    _, mask = M.merge_face(FRAME, crop, PRED, s)
    _close(mask, _ref_masks(s)[0])
    plain = _merge(crop, mask_mode="dst")[1].sum()
    if erode > 0:
        assert mask.sum() < plain
    if erode < 0:
        assert mask.sum() > plain


def test_huge_blur_keeps_a_mask(crop: M.FaceCrop) -> None:
    # DFL's zero band covers the whole mask once blur >= 4R; the engine clamps it.
    s = MergeSettings(mode="overlay", mask_mode="full", blur_mask_modifier=4 * R + 2, **PLAIN)
    assert _ref_masks(s)[0].max() == 0
    _, mask = M.merge_face(FRAME, crop, PRED, s)
    assert mask.max() > 0.2


def test_output_face_scale(crop: M.FaceCrop) -> None:
    base = _merge(crop, mask_mode="full")[1]
    for scale in (20, -20):
        s = MergeSettings(mode="overlay", mask_mode="full", output_face_scale=scale, **PLAIN)
        image, mask = M.merge_face(FRAME, crop, PRED, s)
        ref_mask, _, mat = _ref_masks(s)
        _close(mask, ref_mask)
        _close(image, FRAME * (1 - ref_mask) + np.clip(_ref_paste(PRED.face, mat), 0, 1) * ref_mask)
        ratio = mask.sum() / base.sum()
        assert ratio == pytest.approx((1 + scale / 100) ** -2, rel=0.2)


# --- Modes ----------------------------------------------------------------------------------------


def test_original(crop: M.FaceCrop) -> None:
    s = MergeSettings(mode="original", mask_mode="dst", erode_mask_modifier=4, **PLAIN)
    image, mask = M.merge_face(FRAME, crop, PRED, s)
    np.testing.assert_array_equal(image, FRAME)
    _close(mask, _ref_masks(s)[0])


def test_raw_rgb(crop: M.FaceCrop) -> None:
    s = MergeSettings(mode="raw-rgb", mask_mode="learned-prd", erode_mask_modifier=9, **PLAIN)
    image, mask = M.merge_face(FRAME, crop, PRED, s)
    ref_mask, _, mat = _ref_masks(s)  # no erode in raw modes
    _close(mask, ref_mask)
    cover = _ref_paste(np.ones((R, R, 3), np.float32), mat)
    _close(image, np.clip(FRAME * (1 - cover) + _ref_paste(PRED.face, mat) * cover, 0, 1))


def test_raw_predict(crop: M.FaceCrop) -> None:
    s = MergeSettings(mode="raw-predict", mask_mode="learned-dst", **PLAIN)
    image, mask = M.merge_face(FRAME, crop, PRED, s)
    np.testing.assert_array_equal(image, PRED.face)
    ref = np.clip(_ref_masks(s)[1], 0, 1)
    _close(mask, ref)


def test_hist_match_is_quantile_mapping(crop: M.FaceCrop) -> None:
    s = MergeSettings(
        mode="hist-match",
        mask_mode="full",
        masked_hist_match=False,
        hist_match_threshold=255,
        color_transfer_mode=None,
    )
    image, _ = M.merge_face(FRAME, crop, PRED, s)
    matched = _ref_hist_match(PRED.face, crop.face, 255.0)
    # Every value of the predicted face became a value of the dst face.
    assert np.isin(matched, crop.face).all()
    ref_mask, _, mat = _ref_masks(s)
    _close(image, FRAME * (1 - ref_mask) + np.clip(_ref_paste(matched, mat), 0, 1) * ref_mask)


def test_masked_hist_match_and_threshold(crop: M.FaceCrop) -> None:
    s = MergeSettings(
        mode="hist-match",
        mask_mode="learned-prd",
        masked_hist_match=True,
        hist_match_threshold=200,
        color_transfer_mode=None,
    )
    image, _ = M.merge_face(FRAME, crop, PRED, s)
    ref_mask, wc, mat = _ref_masks(s)
    area = (wc > 0).astype(np.float32)
    src = np.minimum(PRED.face * area + (1 - area), 1)
    tpl = np.minimum(crop.face * area + (1 - area), 1)
    matched = _ref_hist_match(src, tpl, 200.0)
    _close(image, FRAME * (1 - ref_mask) + np.clip(_ref_paste(matched, mat), 0, 1) * ref_mask)
    brighter = M.merge_face(
        FRAME, crop, PRED, MergeSettings(**{**s.to_json(), "hist_match_threshold": 255})
    )[0]
    assert image.mean() < brighter.mean()  # a lower threshold maps onto the darker values


def _ref_seamless(s: MergeSettings, crop: M.FaceCrop) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ref_mask, _, mat = _ref_masks(s)
    pasted = np.clip(_ref_paste(PRED.face, mat), 0, 1)
    binary = ((ref_mask[..., 0] > 0.1) * 255).astype(np.uint8)
    x, y, w, h = cv2.boundingRect(binary)
    frame8 = np.round(FRAME * 255).astype(np.uint8)
    cloned = cv2.seamlessClone(
        (pasted * 255).astype(np.uint8),
        frame8,
        binary,
        (int(x + w / 2), int(y + h / 2)),
        cv2.NORMAL_CLONE,
    )
    cloned = cloned.astype(np.float32) / 255
    return FRAME * (1 - ref_mask) + cloned * ref_mask, ref_mask, mat


def test_seamless(crop: M.FaceCrop) -> None:
    s = MergeSettings(
        mode="seamless", mask_mode="learned-prd+learned-dst", blur_mask_modifier=10, **PLAIN
    )
    image, mask = M.merge_face(FRAME, crop, PRED, s)
    ref, ref_mask, _ = _ref_seamless(s, crop)
    _close(mask, ref_mask)
    _close(image, ref, atol=1.5 / 255)  # 8-bit clone
    assert (
        np.abs(
            image - _merge(crop, mask_mode="learned-prd+learned-dst", blur_mask_modifier=10)[0]
        ).max()
        > 0.02
    )


def test_seamless_hist_match(crop: M.FaceCrop) -> None:
    s = MergeSettings(
        mode="seamless-hist-match",
        mask_mode="dst",
        hist_match_threshold=230,
        color_transfer_mode=None,
    )
    image, _ = M.merge_face(FRAME, crop, PRED, s)
    first, ref_mask, mat = _ref_seamless(s, crop)
    g = cv2.warpAffine(first, mat, (R, R), flags=cv2.INTER_CUBIC)
    g = _ref_hist_match(g, crop.face, 230.0)
    ref = np.clip(FRAME * (1 - ref_mask) + _ref_paste(g, mat) * ref_mask, 0, 1)
    _close(image, ref, atol=0.04, mean_tol=1e-3)  # 8-bit clone, then quantiles


def test_colour_transfer_before_paste(crop: M.FaceCrop) -> None:
    from dfl.data.colortransfer import linear_transfer

    s = MergeSettings(mode="overlay", mask_mode="dst", color_transfer_mode="lct")
    image, _ = M.merge_face(FRAME, crop, PRED, s)
    ref_mask, _, mat = _ref_masks(s)
    face = linear_transfer(PRED.face, crop.face)
    _close(image, FRAME * (1 - ref_mask) + np.clip(_ref_paste(face, mat), 0, 1) * ref_mask)


def test_size_gate_skips_tiny_faces() -> None:
    lm = _landmarks(size=2.0)
    tiny = M.crop_face(FRAME, lm, MODEL)
    image, mask = M.merge_face(
        FRAME, tiny, PRED, MergeSettings(mode="overlay", mask_mode="full", **PLAIN)
    )
    np.testing.assert_array_equal(image, FRAME)
    assert mask.max() > 0


def test_face_outside_the_frame() -> None:
    far = M.crop_face(FRAME, _landmarks(cx=500.0, cy=-300.0), MODEL)
    image, mask = M.merge_face(FRAME, far, PRED, MergeSettings(mode="seamless", **PLAIN))
    np.testing.assert_array_equal(image, FRAME)
    assert mask.max() == 0


def test_degrades_touch_only_the_frame_around_the_face(crop: M.FaceCrop) -> None:
    s = MergeSettings(mode="overlay", mask_mode="full", image_denoise_power=30, **PLAIN)
    image, mask = M.merge_face(FRAME, crop, PRED, s)
    plain = _merge(crop, mask_mode="full")[0]
    inside = mask[..., 0] > 0.999
    outside = mask[..., 0] == 0
    np.testing.assert_allclose(image[inside], plain[inside], atol=1e-5)  # face not resampled
    assert np.abs(image[outside] - FRAME[outside]).max() > 0.01


def test_motion_blur_follows_the_motion(crop: M.FaceCrop) -> None:
    still = _merge(crop, mask_mode="full", motion_blur_power=100)[0]
    plain = _merge(crop, mask_mode="full")[0]
    np.testing.assert_allclose(still, plain, atol=1e-6)
    s = MergeSettings(mode="overlay", mask_mode="full", motion_blur_power=100, **PLAIN)
    horizontal, mask = M.merge_face(FRAME, crop, PRED, s, (30.0, 0.0))
    inside = mask[..., 0] > 0.999
    dx = np.abs(np.diff(horizontal, axis=1))[inside[:, 1:]].mean()
    dx_plain = np.abs(np.diff(plain, axis=1))[inside[:, 1:]].mean()
    assert dx < 0.8 * dx_plain  # smoothed along x


def test_merge_frame_two_faces() -> None:
    lm_a, lm_b = _landmarks(cx=22.0, size=22.0), _landmarks(cx=50.0, size=22.0)
    a, b = M.crop_face(FRAME, lm_a, MODEL), M.crop_face(FRAME, lm_b, MODEL)
    s = MergeSettings(mode="overlay", mask_mode="dst", **PLAIN)
    image, mask = M.merge_frame(FRAME, [(a, PRED, None), (b, PRED, None)], s)
    ia, ma = M.merge_face(FRAME, a, PRED, s)
    ib, mb = M.merge_face(FRAME, b, PRED, s)
    _close(image, ia * (1 - mb) + ib * mb, 1e-6)
    _close(mask, np.minimum(ma + mb, 1), 1e-6)


def test_merge_frame_without_faces() -> None:
    s = MergeSettings(mode="overlay")
    image, mask = M.merge_frame(FRAME, [], s)
    np.testing.assert_array_equal(image, FRAME)
    assert mask.shape == (H, W, 1) and mask.max() == 0
    image, mask = M.merge_frame(FRAME, [], MergeSettings(mode="raw-predict"), resolution=R)
    assert image.shape == (R, R, 3) and image.max() == 0 and mask.shape == (R, R, 1)
    with pytest.raises(M.MergeError):
        M.merge_frame(FRAME, [], MergeSettings(mode="raw-predict"))


def test_random_colour_modes_are_reproducible(crop: M.FaceCrop) -> None:
    for ct in ("idt", "sot-m", "mix-m"):
        s = MergeSettings(mode="overlay", mask_mode="dst", color_transfer_mode=ct)
        first = M.merge_face(FRAME, crop, PRED, s)[0]
        np.testing.assert_array_equal(first, M.merge_face(FRAME, crop, PRED, s)[0])


def test_every_setting_together(crop: M.FaceCrop) -> None:
    s = MergeSettings(
        mode="seamless",
        mask_mode="learned-prd*learned-dst",
        erode_mask_modifier=-4,
        blur_mask_modifier=12,
        motion_blur_power=40,
        output_face_scale=5,
        color_transfer_mode="rct",
        sharpen_mode="gaussian",
        blur_sharpen_amount=20,
        image_denoise_power=20,
        bicubic_degrade_power=30,
        color_degrade_power=50,
    )
    image, _ = M.merge_face(FRAME, crop, PRED, s, (12.0, 30.0))
    assert image.shape == FRAME.shape and image.dtype == np.float32
    assert image.min() >= 0 and image.max() <= 1 and np.isfinite(image).all()


# --- Bad input -----------------------------------------------------------------------------------


def test_bad_inputs(crop: M.FaceCrop) -> None:
    with pytest.raises(M.MergeError, match="float32"):
        M.crop_face((FRAME * 255).astype(np.uint8), LM, MODEL)
    with pytest.raises(M.MergeError, match="68"):
        M.crop_face(FRAME, LM[:10], MODEL)
    with pytest.raises(M.MergeError, match="face type"):
        M.crop_face(FRAME, LM, M.ModelFace(R, "head_no_align"))
    bad = M.Prediction(PRED.face[:16], PRED.src_mask, PRED.dst_mask)
    with pytest.raises(M.MergeError, match="predicted face"):
        M.merge_face(FRAME, crop, bad, MergeSettings())
    with pytest.raises(M.MergeError, match="cut from"):
        M.merge_face(FRAME[:40], crop, PRED, MergeSettings())


def _ref_second_pass(crop: M.FaceCrop, s: MergeSettings, face_filter) -> np.ndarray:
    """overlay, then the face cut out with the paste matrix, filtered and pasted back."""
    ref_mask, _, mat = _ref_masks(s)
    blended = FRAME * (1 - ref_mask) + np.clip(_ref_paste(PRED.face, mat), 0, 1) * ref_mask
    g = face_filter(cv2.warpAffine(blended, mat, (R, R), flags=cv2.INTER_CUBIC), mat)
    return np.clip(FRAME * (1 - ref_mask) + _ref_paste(g, mat) * ref_mask, 0, 1)


def test_second_pass_uses_the_paste_matrix(crop: M.FaceCrop) -> None:
    s = MergeSettings(
        mode="overlay",
        mask_mode="full",
        output_face_scale=20,
        sharpen_mode="box",
        blur_sharpen_amount=2,
        **PLAIN,
    )
    identity = np.zeros((3, 3), np.float32)
    identity[1, 1] = 1
    kernel = identity + (identity - np.full((3, 3), 1 / 9, np.float32)) * 2
    ref = _ref_second_pass(crop, s, lambda g, _: cv2.filter2D(g, -1, kernel))
    _close(M.merge_face(FRAME, crop, PRED, s)[0], ref)


def test_motion_is_measured_in_the_crop(crop: M.FaceCrop) -> None:
    from dfl.merge.filters import motion_blur

    s = MergeSettings(mode="overlay", mask_mode="full", motion_blur_power=100, **PLAIN)
    length, angle = 6.0, 30.0

    def blur(g: np.ndarray, mat: np.ndarray) -> np.ndarray:
        a = np.deg2rad(angle)
        v = mat[:, :2] @ np.array([np.cos(a), -np.sin(a)]) * length
        k = int(np.clip(int(np.hypot(*v)) + 1, 2, 50))
        return motion_blur(g, k, -np.degrees(np.arctan2(v[1], v[0])))

    ref = _ref_second_pass(crop, s, blur)
    _close(M.merge_face(FRAME, crop, PRED, s, (length, angle))[0], ref)
