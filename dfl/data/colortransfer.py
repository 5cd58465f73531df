"""Colour transfer: recolour a face so its colour statistics follow a reference
(docs/training.md §9).

Every mode takes ``image`` (the picture to recolour, the src sample) and ``reference`` (whose
colours it should take on, a random dst sample), both float32 BGR (h, w, 3) in [0, 1]; they may
differ in size. The result is float32 (h, w, 3) shaped like ``image``. ``lct``, ``mkl``, ``idt`` and
``sot`` clip to [0, 1]; ``rct`` clips in L*a*b* only, so its BGR result can leave [0, 1] slightly
(docs/training.md §9); the augmentation clips after the warp.

Written from the published methods: Reinhard et al. 2001 (rct), a PCA-square-root linear map
(lct), Pitié & Kokaram 2007's Monge-Kantorovich linear map (mkl), Pitié et al. 2005's iterative
distribution transfer (idt), and sliced optimal transport (sot, Rabin et al. 2011, Bonneel et al.
2015) with a bilateral smoothing of the displacement.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

RCT = "rct"
LCT = "lct"
MKL = "mkl"
IDT = "idt"
SOT = "sot"
CT_MODES: tuple[str, ...] = (RCT, LCT, MKL, IDT, SOT)
NONE = "none"  # the option value that turns colour transfer off
RANDOM_MODES = frozenset({IDT, SOT})  # need a random generator

# rct: cv2's float L*a*b* ranges.
LAB_L_RANGE = (0.0, 100.0)
LAB_AB_RANGE = (-127.0, 127.0)
STD_FLOOR = 1e-6  # a flat channel keeps its (shifted) mean instead of dividing by zero

LCT_EPS = 1e-5  # added to the covariance diagonals
MKL_EIG_FLOOR = float(np.finfo(np.float64).eps)  # smallest eigenvalue kept

IDT_ROTATIONS = 20
IDT_BINS = 256

SOT_STEPS = 10
SOT_DIRECTIONS = 5  # random directions per step
SOT_SIGMA_SPACE = 16.0  # bilateral smoothing of the displacement field, px
SOT_SIGMA_COLOR = 5.0


def normalize_ct_mode(mode: str | None) -> str | None:
    """The colour-transfer mode for an option value: None for None/'none', else one of CT_MODES."""
    if mode is None:
        return None
    key = str(mode).strip().lower()
    if key in ("", NONE):
        return None
    if key not in CT_MODES:
        modes = ", ".join(CT_MODES)
        raise ValueError(
            f"unknown colour-transfer mode {mode!r}: expected {NONE} or one of {modes}"
        )
    return key


def _as_image(image: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"the {what} must be a BGR image (h, w, 3), got shape {a.shape}")
    if a.dtype != np.float32:
        a = a.astype(np.float32)
    return a


def _pixels(image: np.ndarray) -> np.ndarray:
    return image.reshape(-1, 3)


def reinhard_transfer(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """rct: in L*a*b*, give each channel the reference's mean and standard deviation.

    x' = (x - mean_x) * std_ref / std_x + mean_ref per channel, then L clipped to [0, 100] and
    a, b to [-127, 127], and back to BGR (not clipped there).
    """
    image = _as_image(image, "image")
    reference = _as_image(reference, "reference")
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB)
    ref = cv2.cvtColor(reference, cv2.COLOR_BGR2LAB)
    mean_x, std_x = (v.reshape(3) for v in cv2.meanStdDev(lab))
    mean_r, std_r = (v.reshape(3) for v in cv2.meanStdDev(ref))
    gain = std_r / np.maximum(std_x, STD_FLOOR)
    out = lab * gain.astype(np.float32) + (mean_r - mean_x * gain).astype(np.float32)
    np.clip(out[..., 0], *LAB_L_RANGE, out=out[..., 0])
    np.clip(out[..., 1:], *LAB_AB_RANGE, out=out[..., 1:])
    return cv2.cvtColor(out, cv2.COLOR_LAB2BGR)


def _mean_cov(image: np.ndarray, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (3,) and covariance (3, 3), float64, of an image's pixels (divided by n - ddof)."""
    px = _pixels(image).astype(np.float64)
    mean = px.mean(axis=0)
    centred = px - mean
    n = max(1, px.shape[0] - ddof)
    return mean, centred.T @ centred / n


def _sym_sqrt(cov: np.ndarray) -> np.ndarray:
    """The symmetric square root E·sqrt(L)·E^T of a symmetric positive semi-definite matrix."""
    vals, vecs = np.linalg.eigh(cov)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def _apply_linear(
    image: np.ndarray, mat: np.ndarray, mean_in: np.ndarray, mean_out: np.ndarray
) -> np.ndarray:
    """x' = mat·(x - mean_in) + mean_out per pixel, clipped to [0, 1], float32."""
    shift = mean_out - mat @ mean_in
    affine = np.hstack([mat, shift[:, None]]).astype(np.float32)
    out = cv2.transform(image, affine)
    return np.clip(out, 0.0, 1.0, out=out)


def linear_transfer(image: np.ndarray, reference: np.ndarray, eps: float = LCT_EPS) -> np.ndarray:
    """lct: match the mean and the 3x3 colour covariance, x' = Qr·Qx⁻¹·(x - mean_x) + mean_r.

    Q is the symmetric (PCA) square root of each (population) covariance with ``eps`` added to
    its diagonal; the result is clipped to [0, 1].
    """
    image = _as_image(image, "image")
    reference = _as_image(reference, "reference")
    mean_x, cov_x = _mean_cov(image, ddof=0)
    mean_r, cov_r = _mean_cov(reference, ddof=0)
    eye = np.eye(3) * eps
    mat = _sym_sqrt(cov_r + eye) @ np.linalg.inv(_sym_sqrt(cov_x + eye))
    return _apply_linear(image, mat, mean_x, mean_r)


def mkl_transfer(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """mkl: the Monge-Kantorovich (optimal transport) linear map between the two Gaussian colour
    distributions, T = Cx^-1/2 (Cx^1/2 Cr Cx^1/2)^1/2 Cx^-1/2, applied as T·(x - mean_x) + mean_r
    and clipped to [0, 1]. Covariances are the unbiased ones; eigenvalues below machine epsilon
    are raised to it."""
    image = _as_image(image, "image")
    reference = _as_image(reference, "reference")
    mean_x, cov_x = _mean_cov(image, ddof=1)
    mean_r, cov_r = _mean_cov(reference, ddof=1)
    vals_x, vecs_x = np.linalg.eigh(cov_x)
    root_x = np.sqrt(np.clip(vals_x, MKL_EIG_FLOOR, None))
    # C = Dx·Ux^T·Cr·Ux·Dx, with Dx the square roots of Cx's eigenvalues.
    inner = (vecs_x * root_x).T @ cov_r @ (vecs_x * root_x)
    vals_c, vecs_c = np.linalg.eigh((inner + inner.T) / 2.0)
    root_c = np.sqrt(np.clip(vals_c, MKL_EIG_FLOOR, None))
    whiten = vecs_x / root_x  # Ux·Dx^-1
    mat = whiten @ (vecs_c * root_c) @ vecs_c.T @ whiten.T
    return _apply_linear(image, mat, mean_x, mean_r)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3-D rotation matrix (det +1), from the QR decomposition of a Gaussian."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _match_1d(values: np.ndarray, ref: np.ndarray, bins: int) -> np.ndarray:
    """Displacement taking ``values`` toward ``ref``'s 1-D distribution: each value moves to the
    reference quantile of its own quantile, both read from ``bins``-bin histograms over the
    common range. The table includes the lowest bin's lower edge (share 0); DFL's
    color_transfer_idt leaves it out and sends the lowest bin to 0, a bug (docs/training.md §9)."""
    lo = float(min(values.min(), ref.min()))
    hi = float(max(values.max(), ref.max()))
    if not hi - lo > 1e-12:
        return np.zeros_like(values)
    scale = bins / (hi - lo)
    pos = (values - np.float32(lo)) * np.float32(scale)  # in [0, bins]
    idx = np.minimum(pos.astype(np.intp), bins - 1)

    def cdf(bin_index: np.ndarray) -> np.ndarray:
        counts = np.bincount(bin_index, minlength=bins).astype(np.float64)
        return np.concatenate([[0.0], np.cumsum(counts) / bin_index.size])

    ref_idx = np.minimum(((ref - np.float32(lo)) * np.float32(scale)).astype(np.intp), bins - 1)
    edges = np.linspace(lo, hi, bins + 1)
    mapped_edges = np.interp(cdf(idx), cdf(ref_idx), edges).astype(np.float32)
    # Linear interpolation of mapped_edges at each value (the edges are uniform).
    frac = pos - idx
    lower = mapped_edges[idx]
    return lower + frac * (mapped_edges[idx + 1] - lower) - values


def idt_transfer(
    image: np.ndarray,
    reference: np.ndarray,
    rng: np.random.Generator,
    rotations: int = IDT_ROTATIONS,
    bins: int = IDT_BINS,
    relaxation: float | None = None,
) -> np.ndarray:
    """idt: iterative distribution transfer. For each of ``rotations`` random 3-D rotations, match
    the 1-D histogram (``bins`` bins) of the pixels along every rotated axis to the reference's,
    and move the pixels by ``relaxation`` (default 1/rotations) of that displacement. Clipped."""
    image = _as_image(image, "image")
    reference = _as_image(reference, "reference")
    relax = np.float32(1.0 / rotations if relaxation is None else relaxation)
    x = _pixels(image).copy()
    ref = _pixels(reference)
    for _ in range(rotations):
        rot = random_rotation(rng).astype(np.float32)  # rows are the axes
        px = rot @ x.T  # (3, n): the pixels along each rotated axis
        pr = rot @ ref.T
        disp = np.empty_like(px)
        for axis in range(3):
            disp[axis] = _match_1d(px[axis], pr[axis], bins)
        x += relax * (disp.T @ rot)
    out = x.reshape(image.shape)
    return np.clip(out, 0.0, 1.0, out=out)


def sot_transfer(
    image: np.ndarray,
    reference: np.ndarray,
    rng: np.random.Generator,
    steps: int = SOT_STEPS,
    directions: int = SOT_DIRECTIONS,
    sigma_space: float = SOT_SIGMA_SPACE,
    sigma_color: float = SOT_SIGMA_COLOR,
) -> np.ndarray:
    """sot: sliced optimal transport. Each of ``steps`` steps projects the pixels and the reference
    on ``directions`` random unit directions, matches the sorted projections, and moves every
    pixel by the mean of those displacements. The total displacement is then smoothed with a
    bilateral filter (``sigma_space`` px, ``sigma_color``; 0 turns it off); the result is
    clipped."""
    image = _as_image(image, "image")
    reference = _as_image(reference, "reference")
    x0 = _pixels(image)
    x = x0.copy()
    ref = _pixels(reference)
    n, m = x.shape[0], ref.shape[0]
    # Reference quantiles at the image's pixel ranks (the identity when the sizes agree).
    quantiles = None if n == m else (np.arange(n) + 0.5) * (m / n) - 0.5
    disp = np.empty(n, np.float32)
    for _ in range(steps):
        advect = np.zeros_like(x)
        for _ in range(directions):
            d = rng.standard_normal(3)
            d = (d / np.linalg.norm(d)).astype(np.float32)
            px = x @ d
            order = np.argsort(px)
            pr = np.sort(ref @ d)
            if quantiles is not None:
                pr = np.interp(quantiles, np.arange(m), pr).astype(np.float32)
            disp[order] = pr - px[order]
            advect += disp[:, None] * d
        x += advect / np.float32(directions)
    delta = (x - x0).reshape(image.shape)
    if sigma_space > 0:
        delta = cv2.bilateralFilter(delta, 0, sigma_color, sigma_space)
    out = image + delta
    return np.clip(out, 0.0, 1.0, out=out)


_DETERMINISTIC: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    RCT: reinhard_transfer,
    LCT: linear_transfer,
    MKL: mkl_transfer,
}
_RANDOM: dict[str, Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]] = {
    IDT: idt_transfer,
    SOT: sot_transfer,
}


def color_transfer(
    mode: str,
    image: np.ndarray,
    reference: np.ndarray,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Recolour ``image`` toward ``reference`` with one of CT_MODES; float32 (h, w, 3).

    ``idt`` and ``sot`` draw random directions from ``rng`` (required for them); the others are
    deterministic and ignore it.
    """
    key = normalize_ct_mode(mode)
    if key is None:
        raise ValueError("colour transfer mode 'none' transfers nothing")
    if key in _RANDOM:
        if rng is None:
            raise ValueError(f"colour transfer {key!r} is random: pass a numpy Generator as rng")
        return _RANDOM[key](image, reference, rng)
    return _DETERMINISTIC[key](image, reference)
