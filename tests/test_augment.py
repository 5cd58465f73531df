"""Tests for dfl.data.augment: crop, random warp and affine, flip, HSV and masks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from dfl.data import augment as A
from dfl.data import colortransfer as C
from dfl.data import face_masks, sample_masks
from dfl.data import landmarks as L
from dfl.data.augment import AugmentConfig, WarpParams
from dfl.data.face_image import read_image
from dfl.data.faceset import FaceSample, load_faceset

FACESET = Path(__file__).parent / "data" / "dfl-faceset"
RES = 96
NO_MOTION = {"rotation_range_deg": (0.0, 0.0), "scale_range": (0.0, 0.0), "shift_range": (0, 0)}


@pytest.fixture(scope="module")
def real() -> tuple[FaceSample, np.ndarray]:
    sample = load_faceset(FACESET / "src").samples[0]
    assert sample.face_type == L.WHOLE_FACE
    return sample, read_image(sample)


def _plain(path: str = "mem/plain.png", size: int = 64) -> FaceSample:
    return FaceSample(path=Path(path), shape=(size, size), face_type=None, landmarks=None)


def _square_image(size: int = 64, box: tuple[int, int, int, int] = (20, 14, 36, 30)) -> np.ndarray:
    """Black image with a white rectangle (x0, y0, x1, y1) off-centre."""
    image = np.zeros((size, size, 3), np.uint8)
    x0, y0, x1, y1 = box
    image[y0:y1, x0:x1] = 255
    return image


def _centroid(weights: np.ndarray) -> np.ndarray:
    w = weights.reshape(weights.shape[0], weights.shape[1]).astype(np.float64)
    ys, xs = np.mgrid[: w.shape[0], : w.shape[1]]
    return np.array([(xs * w).sum(), (ys * w).sum()]) / w.sum()


def _params(**kw: object) -> WarpParams:
    base = {"rotation_deg": 0.0, "scale": 1.0, "tx": 0.0, "ty": 0.0, "flip": False}
    base.update(kw)
    return WarpParams(**base)  # type: ignore[arg-type]


def test_quick96_sample_shapes_dtypes_ranges(real: tuple[FaceSample, np.ndarray]) -> None:
    sample, image = real
    cfg = AugmentConfig(RES, L.FULL_FACE)
    warped, target, mask, em = A.process_sample(image, sample, cfg, np.random.default_rng(0))
    assert warped.shape == target.shape == (RES, RES, 3)
    assert mask.shape == (RES, RES, 1)
    assert em is None
    for a in (warped, target, mask):
        assert a.dtype == np.float32
        assert a.min() >= 0.0 and a.max() <= 1.0
    # The full-face crop is mostly face: a large, solid hull mask.
    assert 0.3 < mask.mean() < 0.95
    assert (mask > 0.99).mean() > 0.3
    assert not np.array_equal(warped, target)


def test_eyes_mouth_mask_inside_face_mask(real: tuple[FaceSample, np.ndarray]) -> None:
    sample, image = real
    cfg = AugmentConfig(RES, L.FULL_FACE, eyes_mouth=True, random_flip=True)
    _, _, mask, em = A.process_sample(image, sample, cfg, np.random.default_rng(1))
    assert em is not None and em.shape == (RES, RES, 1) and em.dtype == np.float32
    assert em.max() == pytest.approx(1.0)
    assert 0.005 < em.mean() < 0.2
    assert em[mask < 0.01].sum() < 0.01 * em.sum()


def test_same_rng_same_sample_different_rng_differs(real: tuple[FaceSample, np.ndarray]) -> None:
    sample, image = real
    cfg = AugmentConfig(RES, L.FULL_FACE, random_flip=True, random_hsv_power=0.1)
    a = A.process_sample(image, sample, cfg, np.random.default_rng(5))
    b = A.process_sample(image, sample, cfg, np.random.default_rng(5))
    c = A.process_sample(image, sample, cfg, np.random.default_rng(6))
    for x, y in zip(a[:3], b[:3], strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_warp_off_gives_warped_equal_to_target(real: tuple[FaceSample, np.ndarray]) -> None:
    sample, image = real
    cfg = AugmentConfig(RES, L.FULL_FACE, random_warp=False)
    for seed in range(3):
        warped, target, _, _ = A.process_sample(image, sample, cfg, np.random.default_rng(seed))
        np.testing.assert_array_equal(warped, target)


def test_identity_when_nothing_is_random() -> None:
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    cfg = AugmentConfig(64, L.FULL_FACE, random_warp=False, **NO_MOTION)
    warped, target, mask, _ = A.process_sample(image, _plain(), cfg, np.random.default_rng(0))
    np.testing.assert_allclose(target, image / 255.0, atol=1e-6)
    np.testing.assert_array_equal(warped, target)
    np.testing.assert_array_equal(mask, 1.0)  # a plain image is all face (decision 8)


def test_flip_mirrors_image_and_mask() -> None:
    image = _square_image()
    cfg = AugmentConfig(64, L.FULL_FACE, random_warp=False, random_flip=True)
    plain = A.warp_sample(image, _plain(), cfg, _params())
    flipped = A.warp_sample(image, _plain(), cfg, _params(flip=True))
    np.testing.assert_allclose(flipped[1], plain[1][:, ::-1], atol=1e-6)
    np.testing.assert_allclose(flipped[2], plain[2][:, ::-1], atol=1e-6)


def test_flip_probability() -> None:
    rng = np.random.default_rng(123)
    on = AugmentConfig(RES, L.FULL_FACE, random_flip=True)
    rate = np.mean([A.draw_warp_params(on, rng).flip for _ in range(3000)])
    assert abs(rate - A.FLIP_PROBABILITY) < 0.03
    quick96 = AugmentConfig(RES, L.FULL_FACE)
    assert not any(A.draw_warp_params(quick96, rng).flip for _ in range(500))


def test_parameter_ranges() -> None:
    rng = np.random.default_rng(7)
    for scale_range, lo, hi in (
        (A.SCALE_RANGE_QUICK96, 1 / 1.05, 1.05),
        (A.SCALE_RANGE_SAEHD, 1 / 1.15, 1.15),
    ):
        cfg = AugmentConfig(RES, L.FULL_FACE, scale_range=scale_range)
        draws = [A.draw_warp_params(cfg, rng) for _ in range(400)]
        scales = np.array([p.scale for p in draws])
        assert lo <= scales.min() < lo + 0.02 and hi - 0.02 < scales.max() <= hi
        assert all(-10 <= p.rotation_deg <= 10 for p in draws)
        assert all(abs(p.tx) <= 0.05 and abs(p.ty) <= 0.05 for p in draws)
        counts = set()
        for p in draws:
            assert p.grid is not None
            n = p.grid.shape[0]
            counts.add(n)
            assert p.cell == RES // (n - 1)
            edges = np.concatenate([p.grid[0], p.grid[-1], p.grid[:, 0], p.grid[:, -1]])
            assert not edges.any()
            assert np.abs(p.grid).max() <= A.WARP_OFFSET_FACTOR * p.cell + 1e-4
        assert counts == {3, 5, 9}


def test_truncated_normal_bounds() -> None:
    r = A.truncated_normal(np.random.default_rng(0), (20000,))
    assert r.min() >= -1.0 and r.max() <= 1.0
    assert abs(r.mean()) < 0.02
    assert 0.35 < r.std() < 0.42  # std of N(0,1) cut at ±2.5, divided by 2.5


def test_zero_grid_is_identity(real: tuple[FaceSample, np.ndarray]) -> None:
    sample, image = real
    cfg = AugmentConfig(RES, L.FULL_FACE)
    grid = np.zeros((5, 5, 2), np.float32)
    params = _params(rotation_deg=4.0, scale=1.03, tx=0.02, ty=-0.01, grid=grid, cell=RES // 4)
    warped, target, _, _ = A.warp_sample(image, sample, cfg, params)
    np.testing.assert_allclose(warped, target, atol=2e-3)


def _sequential_reference(
    image: np.ndarray, sample: FaceSample, cfg: AugmentConfig, params: WarpParams
) -> np.ndarray:
    """DFL's order done step by step: crop, grid remap, affine (flip folded into the affine)."""
    w = cfg.resolution
    src = image.astype(np.float32) / 255.0
    crop = L.transform_matrix(sample.landmarks, w, cfg.face_type)
    face = cv2.warpAffine(src, crop, (w, w), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(w, dtype=np.float32))
    d = A.grid_offsets(params, w)
    grid = cv2.remap(
        face, xs + d[..., 0], ys + d[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    affine = A.affine_matrix(params, w)[:2]
    return cv2.warpAffine(
        grid, affine, (w, w), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )


def test_composed_warp_matches_step_by_step(real: tuple[FaceSample, np.ndarray]) -> None:
    sample, image = real
    smooth = cv2.GaussianBlur(image, (0, 0), 3.0)  # so that resampling differences are tiny
    cfg = AugmentConfig(RES, L.FULL_FACE, random_flip=True, scale_range=A.SCALE_RANGE_SAEHD)
    rng = np.random.default_rng(11)
    for _ in range(4):
        params = A.draw_warp_params(cfg, rng)
        params = replace(params, grid=params.grid * 2.0)  # exaggerate the warp
        warped = A.warp_sample(smooth, sample, cfg, params)[0]
        reference = _sequential_reference(smooth, sample, cfg, params)
        inner = slice(8, RES - 8)
        diff = np.abs(warped[inner, inner] - np.clip(reference[inner, inner], 0, 1))
        assert diff.mean() < 4e-3 and diff.max() < 0.06  # a wrong composition: > 0.015


def test_mask_follows_the_shift_of_the_image() -> None:
    image = _square_image()
    ok, png = cv2.imencode(".png", image[..., 0])
    assert ok
    sample = FaceSample(
        path=Path("mem/square.jpg"),
        shape=(64, 64),
        face_type=L.FULL_FACE,
        landmarks=np.zeros((68, 2), np.float32),
        xseg_mask=png.tobytes(),
    )
    cfg = AugmentConfig(64, L.FULL_FACE, random_warp=False)
    _, _, still_mask, _ = A.warp_sample(image, sample, cfg, _params())
    _, moved_img, moved_mask, _ = A.warp_sample(image, sample, cfg, _params(tx=0.1, ty=-0.05))
    shift = _centroid(moved_mask) - _centroid(still_mask)
    np.testing.assert_allclose(shift, [6.4, -3.2], atol=0.1)
    np.testing.assert_allclose(_centroid(moved_img[..., 0]), _centroid(moved_mask), atol=0.1)
    # Any random draw: the mask stays on the (unwarped) target.
    wide = replace(cfg, random_flip=True, scale_range=A.SCALE_RANGE_SAEHD)
    rng = np.random.default_rng(3)
    for _ in range(5):
        _, target, mask, _ = A.process_sample(image, sample, wide, rng)
        np.testing.assert_allclose(_centroid(target[..., 0]), _centroid(mask), atol=0.15)


def test_face_type_crop_matches_landmarks(real: tuple[FaceSample, np.ndarray]) -> None:
    sample, image = real
    cfg = AugmentConfig(RES, L.FULL_FACE, random_warp=False, **NO_MOTION)
    _, _, mask, _ = A.process_sample(image, sample, cfg, np.random.default_rng(0))
    crop = L.transform_matrix(sample.landmarks, RES, L.FULL_FACE)
    expected = face_masks.hull_mask((RES, RES), L.transform_points(sample.landmarks, crop))
    inter = np.minimum(mask > 0.5, expected > 0.5).sum()
    union = np.maximum(mask > 0.5, expected > 0.5).sum()
    assert inter / union > 0.95


def test_same_face_type_is_a_resize(real: tuple[FaceSample, np.ndarray]) -> None:
    sample, image = real
    cfg = AugmentConfig(128, L.WHOLE_FACE, random_warp=False, **NO_MOTION)
    target = A.process_sample(image, sample, cfg, np.random.default_rng(0))[1]
    resized = cv2.resize(image, (128, 128), interpolation=cv2.INTER_CUBIC) / 255.0
    assert np.abs(target - resized).mean() < 2e-3


def test_small_resolution_works_at_64_and_resizes(real: tuple[FaceSample, np.ndarray]) -> None:
    sample, image = real
    cfg = AugmentConfig(32, L.FULL_FACE, eyes_mouth=True)
    assert cfg.work_resolution == A.MIN_WORK_RESOLUTION
    warped, target, mask, em = A.process_sample(image, sample, cfg, np.random.default_rng(0))
    assert warped.shape == target.shape == (32, 32, 3)
    assert mask.shape == em.shape == (32, 32, 1)
    assert mask.mean() > 0.3 and em.max() == pytest.approx(1.0)


def test_plain_image_has_no_eyes_mouth_mask() -> None:
    image = _square_image()
    cfg = AugmentConfig(64, L.FULL_FACE, eyes_mouth=True)
    _, _, mask, em = A.process_sample(image, _plain(), cfg, np.random.default_rng(0))
    assert em is not None and not em.any()
    assert mask[16:48, 16:48].min() > 0.99


def test_hsv_changes_only_the_warped_input() -> None:
    image = np.random.default_rng(0).integers(40, 216, (64, 64, 3), dtype=np.uint8)
    cfg = AugmentConfig(64, L.FULL_FACE, random_warp=False, **NO_MOTION, random_hsv_power=0.3)
    warped, target, _, _ = A.process_sample(image, _plain(), cfg, np.random.default_rng(2))
    np.testing.assert_allclose(target, image / 255.0, atol=1e-6)
    assert np.abs(warped - target).mean() > 0.01
    params = A.draw_warp_params(cfg, np.random.default_rng(4))
    hue_max = int(A.HUE_DEGREES * 0.3 * 0.5)
    assert params.hsv is not None and -hue_max <= params.hsv[0] <= hue_max


def test_shift_hsv() -> None:
    red = np.zeros((4, 4, 3), np.float32)
    red[..., 2] = 1.0
    np.testing.assert_allclose(A.shift_hsv(red.copy(), (0.0, 0.0, 0.0)), red, atol=1e-6)
    blue = A.shift_hsv(red.copy(), (-120.0, 0.0, 0.0))  # hue 0 -> 240: blue
    np.testing.assert_allclose(blue[0, 0], [1.0, 0.0, 0.0], atol=1e-5)
    dark = A.shift_hsv(red.copy(), (0.0, 0.0, -0.5))
    np.testing.assert_allclose(dark[0, 0], [0.0, 0.0, 0.5], atol=1e-5)


def test_xseg_mask_wins_over_hull(real: tuple[FaceSample, np.ndarray]) -> None:
    sample, image = real
    xseg = np.zeros((128, 128), np.uint8)  # a different size: resized to the image
    xseg[:64] = 255
    ok, png = cv2.imencode(".png", xseg)
    assert ok
    with_xseg = replace(sample, xseg_mask=png.tobytes())
    masks = sample_masks.base_masks(with_xseg, image.shape[:2], eyes_mouth=False)
    assert masks.shape == (*image.shape[:2], 1) and masks.dtype == np.uint8
    assert masks[:120].min() == 255 and masks[136:].max() == 0


def test_errors_name_the_file(real: tuple[FaceSample, np.ndarray]) -> None:
    sample, image = real
    cfg = AugmentConfig(RES, L.FULL_FACE)
    no_landmarks = replace(sample, landmarks=None, path=Path("faces/odd.jpg"))
    with pytest.raises(ValueError, match=r"odd\.jpg"):
        A.process_sample(image, no_landmarks, cfg, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"odd\.jpg"):
        A.process_sample(image[..., 0], no_landmarks, cfg, np.random.default_rng(0))
    broken = replace(sample, xseg_mask=b"not an image", path=Path("faces/bad_mask.jpg"))
    with pytest.raises(ValueError, match=r"bad_mask\.jpg"):
        sample_masks.base_masks(broken, image.shape[:2], eyes_mouth=False)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="face type"):
        AugmentConfig(RES, "mark_only")
    with pytest.raises(ValueError, match="resolution"):
        AugmentConfig(0, L.FULL_FACE)
    with pytest.raises(ValueError, match="random_hsv_power"):
        AugmentConfig(RES, L.FULL_FACE, random_hsv_power=-0.1)


# --- colour transfer (docs/training.md §8) --------------------------------------------------------


def _tinted(size: tuple[int, int], bgr: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """uint8 BGR picture of one colour with some texture."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 12, (*size, 3))
    return np.clip(np.asarray(bgr, np.float64) + noise, 0, 255).astype(np.uint8)


BLUISH = _tinted((200, 180), (190, 110, 60))  # another size than the face: resized, not cropped


def _mean_colour(image: np.ndarray) -> np.ndarray:
    return image.reshape(-1, 3).mean(axis=0)


def test_ct_mode_config() -> None:
    assert AugmentConfig(RES, L.FULL_FACE).ct_mode is None
    assert AugmentConfig(RES, L.FULL_FACE, ct_mode="none").ct_mode is None
    assert AugmentConfig(RES, L.FULL_FACE, ct_mode="LCT").ct_mode == "lct"
    assert not AugmentConfig(RES, L.FULL_FACE).uniform_yaw
    with pytest.raises(ValueError, match="colour-transfer mode 'bogus'"):
        AugmentConfig(RES, L.FULL_FACE, ct_mode="bogus")


@pytest.mark.parametrize("mode", C.CT_MODES)
def test_colour_transfer_recolours_input_and_target(
    real: tuple[FaceSample, np.ndarray], mode: str
) -> None:
    sample, image = real
    plain_cfg = AugmentConfig(RES, L.FULL_FACE, random_flip=True)
    cfg = replace(plain_cfg, ct_mode=mode)
    w0, t0, m0, _ = A.process_sample(image, sample, plain_cfg, np.random.default_rng(3))
    w, t, m, _ = A.process_sample(image, sample, cfg, np.random.default_rng(3), ct_reference=BLUISH)
    for a in (w, t):
        assert a.shape == (RES, RES, 3) and a.dtype == np.float32
        assert a.min() >= 0.0 and a.max() <= 1.0
    np.testing.assert_array_equal(m, m0)  # same geometry; masks are not recoloured
    ref = _mean_colour(BLUISH / 255.0)
    for before, after in ((w0, w), (t0, t)):
        assert np.linalg.norm(_mean_colour(after) - ref) < 0.6 * np.linalg.norm(
            _mean_colour(before) - ref
        )


def test_colour_transfer_is_applied_to_the_crop_before_the_warp() -> None:
    image = _tinted((64, 64), (60, 120, 200), seed=1)
    cfg = AugmentConfig(64, L.FULL_FACE, random_warp=False, ct_mode="lct", **NO_MOTION)
    warped, target, _, _ = A.process_sample(
        image, _plain(), cfg, np.random.default_rng(0), ct_reference=BLUISH
    )
    ref = cv2.resize(BLUISH, (64, 64), interpolation=cv2.INTER_LINEAR) / 255.0
    expected = C.linear_transfer(image / 255.0, ref)
    np.testing.assert_allclose(target, expected, atol=1e-4)
    np.testing.assert_array_equal(warped, target)


def test_random_colour_transfer_is_deterministic(real: tuple[FaceSample, np.ndarray]) -> None:
    sample, image = real
    cfg = AugmentConfig(RES, L.FULL_FACE, ct_mode="idt")
    a, b, c = (
        A.process_sample(image, sample, cfg, np.random.default_rng(s), ct_reference=BLUISH)
        for s in (5, 5, 6)
    )
    for x, y in zip(a[:3], b[:3], strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[1], c[1])


def test_colour_transfer_needs_a_reference(real: tuple[FaceSample, np.ndarray]) -> None:
    sample, image = real
    cfg = AugmentConfig(RES, L.FULL_FACE, ct_mode="rct")
    odd = replace(sample, path=Path("faces/odd.jpg"))
    with pytest.raises(ValueError, match=r"odd\.jpg: colour transfer 'rct' needs a reference"):
        A.process_sample(image, odd, cfg, np.random.default_rng(0))
    with pytest.raises(ValueError, match="uint8 BGR"):
        A.process_sample(
            image, odd, cfg, np.random.default_rng(0), ct_reference=BLUISH.astype(np.float32)
        )
