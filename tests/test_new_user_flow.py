"""The README's first commands on a fresh workspace, through the `dfl` command: demo, train
Quick96, merge, merged-to-mp4; the video exists and decodes with one frame per dst frame.

The slow test runs them exactly (a real Quick96, trained 2 iterations instead of hundreds); the
default-suite one saves a tiny Quick96 instead of training (the build and first step of the real
one take ~35 s on 2 cores) and runs the other commands as the README shows them."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from tests.e2e import run_dfl
from tests.merge_models import save_tiny_model

DEMO_COUNT = 8  # faces per person; the dst video gets as many frames
MODEL_NAME = "demo"


def _check_video(workspace: Path) -> None:
    frames = sorted(p.name for p in (workspace / "data_dst").glob("*.png"))
    merged = sorted(p.name for p in (workspace / "data_dst" / "merged").glob("*.png"))
    assert frames and merged == frames
    video = workspace / "result.mp4"
    assert video.is_file()
    with av.open(str(video)) as container:
        decoded = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(decoded) == len(frames)
    assert decoded[0].shape[:2] == (240, 320)  # the demo's frame size


def _run(args: list[str], cwd: Path) -> str:
    result = run_dfl(args, cwd)  # input closed: every question takes its default
    assert result.returncode == 0, f"dfl {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _demo(cwd: Path) -> None:
    _run(["demo", "--count", str(DEMO_COUNT)], cwd)


def _merge_and_video(cwd: Path) -> None:
    out = _run(["merge", "--force-model-name", MODEL_NAME, "--no-interactive"], cwd)
    assert f"Merged {DEMO_COUNT} frames" in out
    _run(["merged-to-mp4"], cwd)
    _check_video(cwd / "workspace")


def test_demo_merge_mp4_with_a_tiny_model(tmp_path: Path) -> None:
    _demo(tmp_path)
    save_tiny_model(tmp_path / "workspace" / "model", MODEL_NAME)
    _merge_and_video(tmp_path)


@pytest.mark.slow
def test_readme_commands_demo_train_merge_mp4(tmp_path: Path) -> None:
    _demo(tmp_path)
    train = ["train", "--model", "Quick96", "--name", MODEL_NAME, "--opt", "target_iter=2"]
    assert "Reached target iteration" in _run(train, tmp_path)
    _merge_and_video(tmp_path)
