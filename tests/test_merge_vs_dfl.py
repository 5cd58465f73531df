"""The merge against DeepFaceLab's own merger: the DFL-trained SAEHD fixture imported with
`dfl import`, merged with DFL's two recorded settings, must give every frame a face-region PSNR
of at least 30 dB and a mask IoU of at least 0.95 against the frames DFL wrote
(tests/data/dfl-merge)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from dfl import backend

backend.select(None)
backend.import_keras()

from dfl.interop.deepfacelab import find_dfl_model  # noqa: E402
from dfl.interop.deepfacelab.importer import import_dfl_model  # noqa: E402
from dfl.merge.frames import pair_frames  # noqa: E402
from dfl.merge.predictor import Predictor, load_predictor  # noqa: E402
from dfl.merge.run import MergeJob, run_merge  # noqa: E402
from dfl.merge.settings import MergeSettings, questionnaire_defaults  # noqa: E402

DATA = Path(__file__).parent / "data"
MERGE = DATA / "dfl-merge"
MODEL = DATA / "dfl-models" / "tiny-saehd-df-ud-64"
MIN_PSNR_DB = 30.0
MIN_MASK_IOU = 0.95
MASK_ON = 127  # a mask pixel counts as inside above this (of 255)


def _settings(case: str) -> MergeSettings:
    """DFL's non-interactive answers: Enter everywhere except the recorded ones."""
    base = questionnaire_defaults()
    if case == "overlay":
        return replace(base, mode="overlay", mask_mode="dst")
    return replace(
        base,
        mode="seamless",
        mask_mode="learned-prd+learned-dst",
        erode_mask_modifier=10,
        blur_mask_modifier=40,
        color_transfer_mode="mkl",
    )


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    folder = tmp_path_factory.mktemp("dfl") / MODEL.name
    shutil.copytree(MODEL, folder)
    files = find_dfl_model(folder, "tiny", "SAEHD")
    assert files is not None
    report = import_dfl_model(files, folder)
    return load_predictor(report.folder)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def compare(ours_dir: Path, ours_mask_dir: Path, case: str) -> list[tuple[str, float, float]]:
    """(frame, face-region PSNR dB, mask IoU) for every frame DFL merged."""
    rows = []
    for theirs_path in sorted((MERGE / f"merged-{case}").iterdir()):
        name = theirs_path.name
        theirs = cv2.imread(str(theirs_path), cv2.IMREAD_COLOR)
        ours = cv2.imread(str(ours_dir / name), cv2.IMREAD_COLOR)
        theirs_mask = cv2.imread(str(MERGE / f"merged-{case}-mask" / name), cv2.IMREAD_GRAYSCALE)
        ours_mask = cv2.imread(str(ours_mask_dir / name), cv2.IMREAD_GRAYSCALE)
        assert ours.shape == theirs.shape and ours_mask.shape == theirs_mask.shape, name
        a, b = theirs_mask > MASK_ON, ours_mask > MASK_ON
        iou = float(np.sum(a & b) / max(1, np.sum(a | b)))
        region = (theirs_mask > 0) | (ours_mask > 0)  # where either merger changed the frame
        rows.append((name, _psnr(ours[region], theirs[region]), iou))
    return rows


@pytest.mark.parametrize("case", ["overlay", "seamless"])
def test_merge_matches_dfls_merger(predictor: Predictor, tmp_path: Path, case: str) -> None:
    pairing = pair_frames(MERGE / "frames", MERGE / "aligned")
    job = MergeJob(
        frames=pairing.frames,
        output_dir=tmp_path / "merged",
        mask_dir=tmp_path / "merged_mask",
        settings=_settings(case),
        model_key={"model": "tiny"},
        workers=2,
    )
    report = run_merge(job, predictor)
    assert report.merged == 6 and not report.failed
    rows = compare(job.output_dir, job.mask_dir, case)
    for name, psnr, iou in rows:
        print(f"{case} {name}: face-region PSNR {psnr:.2f} dB, mask IoU {iou:.4f}")
    assert len(rows) == 6
    assert min(psnr for _, psnr, _ in rows) >= MIN_PSNR_DB, rows
    assert min(iou for _, _, iou in rows) >= MIN_MASK_IOU, rows
