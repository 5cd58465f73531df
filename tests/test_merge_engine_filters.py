"""Tests for dfl.merge.filters and dfl.merge.colour: references written here with numpy."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from dfl.data import landmarks as L
from dfl.merge import colour as C
from dfl.merge import filters as F
from dfl.merge.settings import COLOR_TRANSFER_MODES

S = 32


def _image(seed: int, tint: tuple[float, float, float], size: int = S) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] / size
    base = np.stack([x, y, (x + y) / 2], -1) * np.asarray(tint)
    return np.clip(0.3 + 0.4 * base + 0.04 * rng.standard_normal((size, size, 3)), 0, 1).astype(
        np.float32
    )


TARGET = _image(0, (0.3, 0.6, 1.0))
REFERENCE = _image(1, (1.0, 0.5, 0.2))
AREA = np.zeros((S, S, 1), np.float32)
AREA[4:28, 6:26] = 1.0
RNG_SEED = 3


def _impulse(size: int = 9) -> np.ndarray:
    img = np.full((size, size, 3), 0.5, np.float32)
    img[size // 2, size // 2] = 0.6
    return img


# --- Blur / sharpen -------------------------------------------------------------------------------


def test_box_sharpen_kernel() -> None:
    a = 3
    out = F.blur_sharpen(_impulse(), "box", a)
    # kernel = identity + (identity - box/9) * a; the bump of 0.1 spreads by it.
    assert out[4, 4, 0] == pytest.approx(0.5 + 0.1 * (1 + a * (1 - 1 / 9)), abs=1e-5)
    assert out[4, 5, 0] == pytest.approx(0.5 - 0.1 * a / 9, abs=1e-5)
    assert out[0, 0, 0] == pytest.approx(0.5, abs=1e-6)


def test_gaussian_sharpen() -> None:
    a = 4
    img = _impulse()
    blurred = cv2.GaussianBlur(img, (3, 3), 0)
    out = F.blur_sharpen(img, "gaussian", a)
    np.testing.assert_allclose(out, img * (1 + a / 2) - blurred * (a / 2), atol=1e-5)
    np.testing.assert_array_equal(F.blur_sharpen(img, None, a), img)  # no mode: unchanged


@pytest.mark.parametrize("amount", [-5, -10, -23])
def test_negative_amount_blurs_with_median(amount: int) -> None:
    img = TARGET
    ref = img.copy()
    n = -amount
    while n > 0:
        med = cv2.medianBlur(ref, 5)
        ref = med if n >= 10 else ref * (1 - (n % 10) / 10) + med * ((n % 10) / 10)
        n = max(n - 10, 0)
    np.testing.assert_allclose(F.blur_sharpen(img, "box", amount), ref, atol=1e-6)


# --- Frame degrades -------------------------------------------------------------------------------


def test_denoise_passes() -> None:
    img = TARGET
    med = cv2.medianBlur(img, 5)
    np.testing.assert_allclose(F.denoise_degrade(img, 10), img * 0.9 + med * 0.1, atol=1e-6)
    # 120: one full pass, then blends 0.1 (110 mod 100), 1.0 (100), 0.9 ... 0.1
    ref, n = img, 120
    while n > 0:
        m = cv2.medianBlur(ref, 5)
        ref = m if n >= 100 else ref * (1 - n % 100 / 100) + m * (n % 100 / 100)
        n -= 10
    np.testing.assert_allclose(F.denoise_degrade(img, 120), ref, atol=1e-5)


def test_bicubic_degrade() -> None:
    img = TARGET
    p = 1 - 40 / 101
    small = cv2.resize(img, (int(S * p), int(S * p)), interpolation=cv2.INTER_CUBIC)
    ref = cv2.resize(small, (S, S), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_allclose(F.bicubic_degrade(img, 40), ref, atol=1e-6)
    assert F.bicubic_degrade(img, 100).shape == img.shape  # DFL asked for a 0 px image here


def test_reduce_colors() -> None:
    few = (np.random.default_rng(0).integers(0, 6, (S, S, 3)) * 51).astype(np.float32) / 255
    np.testing.assert_allclose(F.reduce_colors(few), few, atol=1e-6)  # 216 colours stay
    many = TARGET
    reduced = F.reduce_colors(many, 16)
    assert len(np.unique(reduced.reshape(-1, 3), axis=0)) <= 16
    assert np.abs(reduced - many).mean() < 0.05
    np.testing.assert_allclose(
        F.color_degrade(many, 50), (many + F.reduce_colors(many)) / 2, atol=1e-6
    )
    np.testing.assert_array_equal(F.color_degrade(many, 0), many)


# --- Motion --------------------------------------------------------------------------------------


def test_motion_kernel_size() -> None:
    assert F.motion_kernel_size(10.0, 5) == 0  # int(0.5) = 0: no blur
    assert F.motion_kernel_size(10.0, 50) == 6
    assert F.motion_kernel_size(1000.0, 100) == 50
    assert F.motion_kernel_size(1.0, 100) == 2


def test_motion_blur_direction() -> None:
    stripes_v = np.zeros((21, 21, 3), np.float32)
    stripes_v[:, ::2] = 1.0  # vertical stripes
    horizontal = F.motion_blur(stripes_v, 5, 0.0)
    assert horizontal[10].std() < 0.25  # averaged across the stripes
    vertical = F.motion_blur(stripes_v, 5, 90.0)
    assert vertical[10].std() > 0.45  # along them: unchanged


def _moving_face(dx: float, dy: float, n: int) -> list[list[np.ndarray]]:
    lm = L.MEAN_SHAPE_3D[:, :2] * 0.5 + 100.0
    return [[lm + np.array([dx * i, dy * i])] for i in range(n)]


def test_motion_vectors() -> None:
    vectors = F.motion_vectors(_moving_face(3.0, -4.0, 4))
    power, deg = vectors[1][0]
    assert power == pytest.approx(10.0, abs=1e-6)  # two frame intervals
    assert deg == pytest.approx(math.degrees(math.atan2(4.0, 3.0)), abs=1e-6)  # y up
    assert vectors[0][0][0] == pytest.approx(5.0, abs=1e-6)  # the first frame: one interval
    assert F.motion_vectors(_moving_face(0.0, 0.0, 3))[1][0] == (0.0, 0.0)


def test_motion_vectors_per_face_and_gaps() -> None:
    a = _moving_face(2.0, 0.0, 3)
    b = _moving_face(0.0, 2.0, 3)
    frames = [[b[i][0] + 60.0, a[i][0]] for i in range(3)]  # two faces, listed in either order
    frames[1] = [frames[1][1], frames[1][0]]
    vectors = F.motion_vectors(frames)
    assert vectors[1][0] == pytest.approx((4.0, 0.0), abs=1e-6)  # face a
    assert vectors[1][1] == pytest.approx((4.0, -90.0), abs=1e-6)  # face b moves down
    gap = F.motion_vectors([a[0], [], a[2]])
    assert gap[1] == [] and gap[0][0] == (0.0, 0.0)  # no face next door: itself


# --- Colour --------------------------------------------------------------------------------------


def _lab_stats(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB)[mask[..., 0] > 0.5].astype(np.float64)
    return lab.mean(axis=0), lab.std(axis=0)


def test_masked_rct_uses_the_area_only() -> None:
    target = TARGET.copy()
    target[AREA[..., 0] == 0] = 0.0  # outside the area: black, which must not count
    out = C.masked_rct(target, REFERENCE, AREA)
    mean_o, std_o = _lab_stats(out, AREA)
    mean_r, std_r = _lab_stats(REFERENCE, AREA)
    np.testing.assert_allclose(mean_o, mean_r, atol=0.5)
    np.testing.assert_allclose(std_o, std_r, rtol=0.05, atol=0.3)


def test_lct_and_mkl_match_covariance() -> None:
    for mode in ("lct", "mkl"):
        out = C.color_transfer(mode, TARGET, REFERENCE, AREA, np.random.default_rng(0))
        px, ref = out.reshape(-1, 3).astype(np.float64), REFERENCE.reshape(-1, 3)
        np.testing.assert_allclose(px.mean(0), ref.mean(0), atol=0.01)
        np.testing.assert_allclose(np.cov(px.T), np.cov(ref.T), atol=2e-3)


def test_masked_modes_zero_outside_the_area() -> None:
    rng = np.random.default_rng(0)
    out = C.color_transfer("mkl-m", TARGET, REFERENCE, AREA, rng)
    ref = C.color_transfer("mkl", TARGET * AREA, REFERENCE * AREA, AREA, rng)
    np.testing.assert_allclose(out, ref, atol=1e-6)


@pytest.mark.parametrize("mode", COLOR_TRANSFER_MODES)
def test_every_mode_moves_toward_the_reference(mode: str) -> None:
    rng = np.random.default_rng(RNG_SEED)
    out = C.color_transfer(mode, TARGET, REFERENCE, AREA, rng)
    assert out.shape == TARGET.shape and out.dtype == np.float32
    inside = AREA[..., 0] > 0
    before = np.abs(TARGET[inside].mean(0) - REFERENCE[inside].mean(0)).sum()
    after = np.abs(out[inside].mean(0) - REFERENCE[inside].mean(0)).sum()
    assert after < 0.6 * before
    again = C.color_transfer(mode, TARGET, REFERENCE, AREA, np.random.default_rng(RNG_SEED))
    np.testing.assert_array_equal(out, again)


def test_unknown_colour_mode() -> None:
    with pytest.raises(ValueError, match="unknown colour transfer"):
        C.color_transfer("sot", TARGET, REFERENCE, AREA, np.random.default_rng(0))


def test_hist_match_threshold() -> None:
    src = TARGET
    tpl = REFERENCE
    out = C.hist_match(src, tpl, 255)
    for c in range(3):  # sorted values become the template's
        np.testing.assert_allclose(
            np.sort(out[..., c].ravel()), np.sort(tpl[..., c].ravel()), atol=1e-3
        )
    low = C.hist_match(src, tpl, 128)
    assert low.mean() < out.mean()
    for c in range(3):  # onto the lower half (128/255) of the template
        assert low[..., c].max() <= np.quantile(tpl[..., c], 0.51)
