"""The merge runner (dfl.merge.run) with a stand-in model and engine: outputs and their names,
faceless and unreadable frames, frame formats, resume after an interruption, restart when the
model or settings change, and an output folder that cannot be written."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from dfl.merge.frames import pair_frames
from dfl.merge.resume import RECORD_NAME
from dfl.merge.run import (
    FrameError,
    MergeJob,
    MergeProgress,
    MergeWriteError,
    read_frame,
    run_merge,
    stale_outputs,
)
from dfl.merge.settings import MergeSettings
from tests.merge_fixtures import (
    StandInPredictor,
    frame_image,
    make_workspace,
    stand_in_engine,
    write_frame,
)

KEY = {"model": "m", "iteration": 10}


def _job(root: Path, frames: Path, aligned: Path, **kw) -> MergeJob:
    pairing = pair_frames(frames, aligned)
    defaults = dict(
        frames=pairing.frames,
        output_dir=root / "merged",
        mask_dir=root / "merged_mask",
        settings=MergeSettings(),
        model_key=KEY,
        workers=2,
    )
    return MergeJob(**{**defaults, **kw})


def _read(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_outputs_keep_the_frame_names(tmp_path: Path) -> None:
    frames, aligned = make_workspace(tmp_path, n=5)
    write_frame(frames, "00006.jpg", 6)  # no face; a JPEG frame gives a PNG output
    job = _job(tmp_path, frames, aligned)
    predictor = StandInPredictor(batch_size=2)
    seen: list[MergeProgress] = []
    report = run_merge(job, predictor, engine=stand_in_engine(), progress=seen.append)
    assert (report.merged, report.copied, report.resumed, report.failed) == (5, 1, 0, [])
    assert predictor.seen == 5
    names = sorted(p.name for p in job.output_dir.iterdir() if not p.name.startswith("."))
    assert names == [f"{i:05d}.png" for i in range(1, 7)]
    merged = _read(job.output_dir / "00001.png")
    np.testing.assert_array_equal(merged, 255 - frame_image(1))  # the stand-in inverts
    mask = _read(job.mask_dir / "00001.png")
    assert mask.ndim == 2 and mask.min() == 255
    faceless = _read(job.output_dir / "00006.png")
    original = cv2.imread(str(frames / "00006.jpg"))
    np.testing.assert_array_equal(faceless, original)  # written unchanged
    assert _read(job.mask_dir / "00006.png").max() == 0
    assert seen[-1].done == seen[-1].total == 6 and seen[-1].frames_per_s > 0
    assert report.sizes == {(100, 100): 6}


def test_unreadable_and_odd_frames(tmp_path: Path) -> None:
    frames, aligned = make_workspace(tmp_path, n=3)
    (frames / "00002.png").write_bytes(b"\x89PNG broken")
    write_frame(frames, "00003.png", 3, (60, 80))  # another size
    job = _job(tmp_path, frames, aligned)
    report = run_merge(job, StandInPredictor(), engine=stand_in_engine())
    assert [name for name, _ in report.failed] == ["00002.png"]
    assert "not a readable image" in report.failed[0][1]
    assert report.merged == 2 and set(report.sizes) == {(100, 100), (80, 60)}
    assert not (job.output_dir / "00002.png").exists()


def test_read_frame_normalises_channels_and_depth(tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.full((4, 5), 7, np.uint8))
    deep = tmp_path / "deep.png"
    cv2.imwrite(str(deep), np.full((4, 5, 3), 65535, np.uint16))
    alpha = tmp_path / "alpha.png"
    cv2.imwrite(str(alpha), np.full((4, 5, 4), 9, np.uint8))
    for path, value in ((grey, 7), (deep, 255), (alpha, 9)):
        image = read_frame(path)
        assert image.shape == (4, 5, 3) and image.dtype == np.uint8 and image.max() == value
    with pytest.raises(FrameError):
        read_frame(tmp_path / "missing.png")


def test_interrupted_merge_resumes_without_redoing_frames(tmp_path: Path) -> None:
    frames, aligned = make_workspace(tmp_path, n=8)
    job = _job(tmp_path, frames, aligned, workers=1)

    def stop_after_three(p: MergeProgress) -> None:
        if p.done >= 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_merge(
            job, StandInPredictor(batch_size=1), engine=stand_in_engine(), progress=stop_after_three
        )
    assert (job.output_dir / RECORD_NAME).is_file()
    predictor = StandInPredictor(batch_size=1)
    report = run_merge(job, predictor, engine=stand_in_engine())
    assert report.resumed >= 3 and report.merged == 8 - report.resumed
    assert predictor.seen == report.merged and not report.restarted

    # a lost output file is merged again; the rest is kept
    (job.mask_dir / "00005.png").unlink()
    report = run_merge(job, StandInPredictor(), engine=stand_in_engine())
    assert (report.resumed, report.merged) == (7, 1)

    # the model trained further: everything again
    trained = replace(job, model_key={**KEY, "iteration": 11})
    report = run_merge(trained, StandInPredictor(), engine=stand_in_engine())
    assert report.restarted and (report.resumed, report.merged) == (0, 8)

    # other settings: everything again
    other = replace(trained, settings=MergeSettings(mode="seamless"))
    report = run_merge(other, StandInPredictor(), engine=stand_in_engine())
    assert report.restarted and report.merged == 8


def test_changed_frame_is_merged_again(tmp_path: Path) -> None:
    frames, aligned = make_workspace(tmp_path, n=3)
    job = _job(tmp_path, frames, aligned)
    run_merge(job, StandInPredictor(), engine=stand_in_engine())
    write_frame(frames, "00002.png", 42, (100, 101))  # new content (and size)
    job = _job(tmp_path, frames, aligned)
    report = run_merge(job, StandInPredictor(), engine=stand_in_engine())
    assert (report.resumed, report.merged) == (2, 1)


def test_stale_outputs_are_listed(tmp_path: Path) -> None:
    frames, aligned = make_workspace(tmp_path, n=2)
    job = _job(tmp_path, frames, aligned)
    job.output_dir.mkdir()
    cv2.imwrite(str(job.output_dir / "old.png"), np.zeros((2, 2, 3), np.uint8))
    run_merge(job, StandInPredictor(), engine=stand_in_engine())
    assert [p.name for p in stale_outputs(job)] == ["old.png"]


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="needs POSIX permissions")
def test_unwritable_output_folder(tmp_path: Path) -> None:
    frames, aligned = make_workspace(tmp_path, n=2)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        job = _job(tmp_path, frames, aligned, output_dir=locked / "merged")
        with pytest.raises(MergeWriteError, match="cannot write to the output folder"):
            run_merge(job, StandInPredictor(), engine=stand_in_engine())
        job = _job(tmp_path, frames, aligned, output_dir=locked)
        with pytest.raises(MergeWriteError, match="cannot write to the output folder"):
            run_merge(job, StandInPredictor(), engine=stand_in_engine())
    finally:
        locked.chmod(0o700)


def test_output_folder_that_is_a_file(tmp_path: Path) -> None:
    frames, aligned = make_workspace(tmp_path, n=1)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for output in (blocker, blocker / "merged"):
        job = _job(tmp_path, frames, aligned, output_dir=output)
        with pytest.raises(MergeWriteError, match="cannot write to the output folder"):
            run_merge(job, StandInPredictor(), engine=stand_in_engine())
