"""dfl's one-resample augmentation next to DFL's order of resampling, on the same random draws.

DFL makes a training sample in steps, each resampling the image: the face-type crop, then (for
the warped input) the grid remap, whose zero offsets are the identity plus half a pixel, with a
black border, then the random affine. dfl composes crop, affine and flip into one matrix and
nests the grid inside it, so the target is one warpAffine and the warped input one remap from
the stored image (docs/training.md §8, "Resampling"). This script applies both to the
DFL-made fixture faces with the same WarpParams and prints one JSON line:

- `psnr_db`: each pipeline's target and warped input against the same geometry sampled once
  from the stored image with Lanczos interpolation (the sharpest single resampling OpenCV has);
  DFL's warped input is compared with a reference shifted by its half pixel, so the figure is the
  blur alone;
- `offset_px`: the shift between the warped input (grid offsets zero) and the target, measured
  by phase correlation: DFL's half pixel, dfl's none;
- `ms_per_sample`: both pipelines' time for target plus warped input.

    python bench/augment_resampling.py [--draws 40] [--resolution 96]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dfl.data import augment  # noqa: E402
from dfl.data.face_image import read_image  # noqa: E402
from dfl.data.faceset import load_faceset  # noqa: E402

FACESET = ROOT / "tests" / "data" / "dfl-faceset"
DFL_GRID_SHIFT_PX = 0.5  # DFL's grid with zero offsets samples half a pixel down and right
BORDER_PX = 8  # compared away from the edges, where the two border rules differ on purpose


def dfl_order(image: np.ndarray, params, w: int, affine: np.ndarray, crop: np.ndarray):
    """(target, warped) made as DFL orders it: crop, grid remap (black border), affine (the
    arguments of dfl's augment.warp_images)."""
    size = (w, w)
    face = cv2.warpAffine(
        image, crop[:2], size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    grid = augment.pixel_grid(w) + DFL_GRID_SHIFT_PX
    if params.grid is not None:
        grid = grid + augment.grid_offsets(params, w)
    bent = cv2.remap(face, grid, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT)
    flags = {"flags": cv2.INTER_CUBIC, "borderMode": cv2.BORDER_REPLICATE}
    target = cv2.warpAffine(face, affine[:2], size, **flags)
    warped = cv2.warpAffine(bent, affine[:2], size, **flags)
    return target, warped


def reference(image, crop, affine, params, w, shift_px: float = 0.0):
    """The same geometry sampled once with Lanczos: (target, warped)."""
    target = cv2.warpAffine(
        image,
        (affine @ crop)[:2],
        (w, w),
        flags=cv2.INTER_LANCZOS4,
        borderMode=cv2.BORDER_REPLICATE,
    )
    shifted = np.eye(3)
    shifted[:2, 2] = shift_px  # DFL reads the crop half a pixel down and right
    warp_map = augment.warp_map(params, w, affine, np.linalg.inv(shifted) @ crop)
    warped = cv2.remap(image, warp_map, None, cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REPLICATE)
    return target, warped


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    inner = (slice(BORDER_PX, -BORDER_PX), slice(BORDER_PX, -BORDER_PX))
    mse = float(np.mean((a[inner].astype(np.float64) - b[inner].astype(np.float64)) ** 2))
    return 10.0 * np.log10(255.0**2 / max(mse, 1e-12))


def offset(target: np.ndarray, warped: np.ndarray) -> float:
    """Length of the shift between two images (phase correlation on grey), px."""
    a, b = (
        cv2.cvtColor(np.clip(x, 0, 255).astype(np.float32), cv2.COLOR_BGR2GRAY)
        for x in (target, warped)
    )
    (dx, dy), _ = cv2.phaseCorrelate(a.astype(np.float64), b.astype(np.float64))
    return float(np.hypot(dx, dy))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=40, help="random draws per face")
    parser.add_argument("--resolution", type=int, default=96, help="px (Quick96: 96)")
    args = parser.parse_args()
    cfg = augment.AugmentConfig(args.resolution, "full_face", random_warp=True, random_flip=True)
    w = cfg.work_resolution
    rng = np.random.default_rng(0)
    figures: dict[str, list[float]] = {
        key: [] for key in ("ours_target", "ours_warped", "dfl_target", "dfl_warped")
    }
    offsets: dict[str, list[float]] = {"ours": [], "dfl": []}
    times: dict[str, float] = {"ours": 0.0, "dfl": 0.0}
    samples = [s for side in ("src", "dst") for s in load_faceset(FACESET / side).samples]
    for sample in samples:
        image = read_image(sample).astype(np.float32)
        crop = augment.crop_matrix(sample, image.shape[:2], cfg)
        for _ in range(args.draws):
            params = augment.draw_warp_params(cfg, rng)
            affine = augment.affine_matrix(params, w)
            for name, make in (("ours", augment.warp_images), ("dfl", dfl_order)):
                start = time.perf_counter()
                target, warped = make(image, params, w, affine, crop)
                times[name] += time.perf_counter() - start
                shift = DFL_GRID_SHIFT_PX if name == "dfl" else 0.0
                ref_target, ref_warped = reference(image, crop, affine, params, w, shift)
                figures[f"{name}_target"].append(psnr(target, ref_target))
                figures[f"{name}_warped"].append(psnr(warped, ref_warped))
            flat = replace(params, grid=np.zeros_like(params.grid))  # the grid's own shift only
            for name, make in (("ours", augment.warp_images), ("dfl", dfl_order)):
                target, warped = make(image, flat, w, affine, crop)
                offsets[name].append(offset(target, warped))
    count = len(samples) * args.draws
    print(
        json.dumps(
            {
                "faces": len(samples),
                "draws": count,
                "resolution": args.resolution,
                "psnr_db": {k: round(statistics.fmean(v), 2) for k, v in figures.items()},
                "offset_px": {k: round(statistics.fmean(v), 3) for k, v in offsets.items()},
                "ms_per_sample": {k: round(1000 * v / count, 3) for k, v in times.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
