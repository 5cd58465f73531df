"""Tests for dfl.data.colortransfer: the five colour-transfer modes (docs/training.md §9)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dfl.data import colortransfer as C

SIZE = 48


def _image(
    seed: int,
    tint: tuple[float, float, float],
    size: int = SIZE,
    lo: float = 0.25,
    amp: float = 0.4,
    noise: float = 0.05,
) -> np.ndarray:
    """A smooth, tinted gradient with noise: float32 BGR in [0, 1]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] / size
    base = np.stack([x, y, (x + y) / 2], -1)
    out = lo + amp * base * np.asarray(tint) + noise * rng.standard_normal((size, size, 3))
    return np.clip(out, 0, 1).astype(np.float32)


SRC = _image(0, (0.3, 0.6, 1.0))  # reddish (BGR)
REF = _image(1, (1.0, 0.5, 0.2), 40)  # bluish, another size
# Milder pictures whose linear transfers stay inside [0, 1], so nothing is clipped.
MILD_SRC = _image(0, (0.3, 0.6, 1.0), lo=0.35, amp=0.3, noise=0.03)
MILD_REF = _image(1, (1.0, 0.5, 0.2), 40, lo=0.3, amp=0.3, noise=0.03)


def _stats(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    px = image.reshape(-1, 3).astype(np.float64)
    return px.mean(axis=0), px.std(axis=0)


def _lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(image, np.float32), cv2.COLOR_BGR2LAB)


def _run(mode: str, image: np.ndarray = SRC, ref: np.ndarray = REF, seed: int = 0) -> np.ndarray:
    return C.color_transfer(mode, image, ref, np.random.default_rng(seed))


@pytest.mark.parametrize("mode", C.CT_MODES)
def test_output_shape_dtype_range(mode: str) -> None:
    out = _run(mode)
    assert out.shape == SRC.shape and out.dtype == np.float32
    assert np.isfinite(out).all()
    assert out.min() >= -1e-6 and out.max() <= 1 + 1e-6
    # The inputs are left alone.
    np.testing.assert_array_equal(SRC, _image(0, (0.3, 0.6, 1.0)))


@pytest.mark.parametrize("mode", C.CT_MODES)
def test_moves_colour_statistics_toward_the_reference(mode: str) -> None:
    out = _run(mode)
    (m_src, s_src), (m_out, s_out), (m_ref, s_ref) = _stats(SRC), _stats(out), _stats(REF)
    before = np.linalg.norm(m_src - m_ref)
    assert np.linalg.norm(m_out - m_ref) < 0.5 * before
    if mode == C.RCT:  # rct matches the spread in L*a*b*, its own space
        (_, s_src), (_, s_out), (_, s_ref) = _stats(_lab(SRC)), _stats(_lab(out)), _stats(_lab(REF))
    assert np.linalg.norm(s_out - s_ref) < np.linalg.norm(s_src - s_ref)


@pytest.mark.parametrize("mode", sorted(C.RANDOM_MODES))
def test_random_modes_are_deterministic_given_an_rng(mode: str) -> None:
    a, b, c = _run(mode, seed=3), _run(mode, seed=3), _run(mode, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(ValueError, match="rng"):
        C.color_transfer(mode, SRC, REF)


@pytest.mark.parametrize("mode", [C.RCT, C.LCT, C.MKL])
def test_deterministic_modes_ignore_the_rng(mode: str) -> None:
    np.testing.assert_array_equal(_run(mode, seed=1), C.color_transfer(mode, SRC, REF))


def test_rct_matches_the_reinhard_formula() -> None:
    lab_x, lab_r = _lab(SRC).reshape(-1, 3), _lab(REF).reshape(-1, 3)
    mean_x, std_x = lab_x.mean(0), lab_x.std(0)
    mean_r, std_r = lab_r.mean(0), lab_r.std(0)
    expected = (lab_x - mean_x) * (std_r / std_x) + mean_r
    expected[:, 0] = np.clip(expected[:, 0], 0, 100)
    expected[:, 1:] = np.clip(expected[:, 1:], -127, 127)
    expected_bgr = cv2.cvtColor(expected.reshape(SRC.shape).astype(np.float32), cv2.COLOR_LAB2BGR)
    out = C.reinhard_transfer(SRC, REF)
    np.testing.assert_allclose(out, expected_bgr, atol=2e-4)


def _sqrt_spd(cov: np.ndarray) -> np.ndarray:
    u, s, _ = np.linalg.svd(cov)  # SPD: cov = U S U^T
    return u @ np.diag(np.sqrt(s)) @ u.T


def test_lct_matches_the_pca_formula_and_the_reference_covariance() -> None:
    x, r = MILD_SRC.reshape(-1, 3).astype(np.float64), MILD_REF.reshape(-1, 3).astype(np.float64)
    eps = np.eye(3) * C.LCT_EPS
    cov_x = np.cov(x, rowvar=False, bias=True) + eps  # population covariances
    cov_r = np.cov(r, rowvar=False, bias=True) + eps
    mat = _sqrt_spd(cov_r) @ np.linalg.inv(_sqrt_spd(cov_x))
    expected = np.clip((x - x.mean(0)) @ mat.T + r.mean(0), 0, 1).reshape(MILD_SRC.shape)
    out = C.linear_transfer(MILD_SRC, MILD_REF)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert out.min() > 0 and out.max() < 1  # unclipped here, so the covariance is the reference's
    y = out.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(y.mean(0), r.mean(0), atol=1e-5)
    # M·(Cx + eps)·M^T = Cr + eps, so the output covariance is Cr + eps - eps·M·M^T.
    expected_cov = cov_r - C.LCT_EPS * (mat @ mat.T)
    np.testing.assert_allclose(np.cov(y, rowvar=False, bias=True), expected_cov, atol=1e-6)


def test_mkl_gives_the_reference_mean_and_covariance() -> None:
    out = C.mkl_transfer(MILD_SRC, MILD_REF)
    assert out.min() > 0 and out.max() < 1
    y, r = out.reshape(-1, 3).astype(np.float64), MILD_REF.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(y.mean(0), r.mean(0), atol=1e-5)
    np.testing.assert_allclose(np.cov(y, rowvar=False), np.cov(r, rowvar=False), atol=2e-5)
    # The Monge-Kantorovich map is the symmetric one: it differs from lct's.
    assert np.abs(out - C.linear_transfer(MILD_SRC, MILD_REF)).max() > 1e-3


def test_idt_matches_each_axis_when_fully_relaxed() -> None:
    # With relaxation 1 every rotation fully matches the three rotated marginals.
    out = C.idt_transfer(SRC, REF, np.random.default_rng(0), rotations=10, relaxation=1.0)
    (m_out, s_out), (m_ref, s_ref) = _stats(out), _stats(REF)
    np.testing.assert_allclose(m_out, m_ref, atol=0.01)
    np.testing.assert_allclose(s_out, s_ref, atol=0.01)


IDT_BINS = 256


def _dfl_axis_map(values: np.ndarray, ref: np.ndarray, bins: int = IDT_BINS) -> np.ndarray:
    """DFL's 1-D histogram matching, restated: both histograms over the common range, their
    normalised cumulative sums read at the *upper* bin edges only; each value is moved to the
    reference value of equal cumulative share, read off by linear interpolation over the upper
    edges, and anything below the first upper edge is sent to 0 (DFL passes left=0, right=bins)."""
    lo, hi = min(values.min(), ref.min()), max(values.max(), ref.max())
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    ref_counts, _ = np.histogram(ref, bins=bins, range=(lo, hi))
    share = np.cumsum(counts).astype(np.float32) / counts.sum()
    ref_share = np.cumsum(ref_counts).astype(np.float32) / ref_counts.sum()
    upper = edges[1:]
    matched = np.interp(share, ref_share, upper)
    return np.interp(values, upper, matched, left=0.0, right=float(bins))


def _dfl_idt(image: np.ndarray, reference: np.ndarray, rotations: list[np.ndarray]) -> np.ndarray:
    """DFL's idt restated on top of _dfl_axis_map: per rotation, map each rotated axis and move
    the pixels back by 1/len(rotations) of the change; clip at the end."""
    x = image.reshape(-1, 3).T.astype(np.float32)
    ref = reference.reshape(-1, 3).T.astype(np.float32)
    step = 1.0 / len(rotations)
    for rot in rotations:
        xr, rr = rot @ x, rot @ ref
        moved = np.stack([_dfl_axis_map(xr[a], rr[a]) for a in range(3)])
        x = x + step * np.linalg.solve(rot, moved - xr)
    return np.clip(x.T.reshape(image.shape), 0.0, 1.0)


def _rotations(seed: int, n: int = C.IDT_ROTATIONS) -> list[np.ndarray]:
    """The rotations idt_transfer draws from default_rng(seed), in order."""
    rng = np.random.default_rng(seed)
    return [C.random_rotation(rng).astype(np.float32) for _ in range(n)]


def test_idt_axis_map_equals_dfls_above_the_lowest_bin() -> None:
    """docs/training.md §9: the one-axis quantile map is DFL's to float precision for every
    value above the lowest bin; in the lowest bin DFL sends values to 0 (its bug), ours maps
    them in order into the reference's range."""
    rng = np.random.default_rng(3)
    values = rng.normal(0.0, 1.0, 5000).astype(np.float32)
    ref = rng.normal(0.5, 0.6, 3000).astype(np.float32)
    ours = values + C._match_1d(values, ref, IDT_BINS)
    theirs = _dfl_axis_map(values, ref)
    width = (max(values.max(), ref.max()) - min(values.min(), ref.min())) / IDT_BINS
    lowest = values < values.min() + width
    assert lowest.any() and (~lowest).sum() > 4000
    np.testing.assert_allclose(ours[~lowest], theirs[~lowest], atol=1e-4)
    # DFL sends the lowest bin to 0, above values that started higher: not monotone any more.
    assert np.abs(theirs[lowest]).max() < 1e-6
    assert theirs[lowest].min() > theirs[~lowest].min()
    # Ours keeps the order and lands inside the reference's range.
    assert ours[lowest].max() <= ours[~lowest].min() + 1e-6
    assert ours[lowest].min() >= ref.min() - width


def test_idt_agrees_with_dfl_on_random_images() -> None:
    """Same rotations: the whole transfer matches the DFL restatement except for the few pixels
    that fell in a lowest bin on the way."""
    rng = np.random.default_rng(11)
    for seed in range(3):
        image = rng.random((32, 32, 3), dtype=np.float32) * rng.random(3).astype(np.float32)
        ref = rng.random((24, 24, 3), dtype=np.float32)
        ours = C.idt_transfer(image, ref, np.random.default_rng(seed))
        diff = np.abs(ours - _dfl_idt(image, ref, _rotations(seed)))
        assert diff.mean() < 1e-3
        assert (diff > 1 / 255).mean() < 0.01


def test_idt_keeps_colours_that_already_match_where_dfl_darkens_some() -> None:
    """The reason dfl keeps its own idt: recolouring a face toward its own colours must change
    nothing. DFL's lowest-bin-to-0 pulls a few percent of the pixels by several levels."""
    image = np.random.default_rng(5).random((32, 32, 3), dtype=np.float32)
    ours = C.idt_transfer(image, image, np.random.default_rng(0))
    theirs = _dfl_idt(image, image, _rotations(0))
    assert np.abs(ours - image).max() < 1 / 255
    assert np.abs(theirs - image).max() > 5 / 255
    assert (np.abs(theirs - image) > 1 / 255).any(axis=-1).mean() > 0.01


def test_sot_without_smoothing_matches_the_distribution() -> None:
    ref = _image(1, (1.0, 0.5, 0.2))  # same size as SRC
    out = C.sot_transfer(SRC, ref, np.random.default_rng(0), steps=30, sigma_space=0)
    (m_out, s_out), (m_ref, s_ref) = _stats(out), _stats(ref)
    np.testing.assert_allclose(m_out, m_ref, atol=0.01)
    np.testing.assert_allclose(s_out, s_ref, atol=0.01)


@pytest.mark.parametrize("mode", C.CT_MODES)
def test_flat_images_stay_finite(mode: str) -> None:
    flat = np.full((16, 16, 3), 0.4, np.float32)
    for image, ref in ((flat, REF), (SRC, flat)):
        out = _run(mode, image, ref)
        assert np.isfinite(out).all() and out.shape == image.shape


def test_mode_names() -> None:
    assert C.normalize_ct_mode(None) is None
    assert C.normalize_ct_mode("none") is None and C.normalize_ct_mode(" None ") is None
    assert C.normalize_ct_mode("RCT") == "rct"
    with pytest.raises(ValueError, match="none or one of rct, lct, mkl, idt, sot"):
        C.normalize_ct_mode("fancy")
    with pytest.raises(ValueError, match="none"):
        C.color_transfer("none", SRC, REF)
    with pytest.raises(ValueError, match=r"\(h, w, 3\)"):
        C.color_transfer("rct", SRC[..., 0], REF)


def test_random_rotation_is_a_rotation() -> None:
    rng = np.random.default_rng(0)
    for _ in range(5):
        rot = C.random_rotation(rng)
        np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(rot) == pytest.approx(1.0)
