"""`dfl extract-video` and `dfl video-from-sequence` / `merged-to-mp4` through the real command:
DFL's flags and questions, the workspace defaults, the mask video, errors and the launchers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import pytest

from tests.video_helpers import FPS, FRAMES, make_video, probe, write_frames

DFL = [sys.executable, "-m", "dfl.cli"]
TIMEOUT_S = 120
SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def run(args: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [*DFL, *args], input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S, env=env
    )


@pytest.fixture(scope="module")
def sound_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("v") / "v.mp4", fps=FPS, audio_s=2.0)


def test_extract_asks_fps_then_format(sound_video: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(sound_video, ws / "data_dst.mp4")
    done = run(["extract-video", "--workspace", str(ws)], stdin="abc\n5\njpg\n")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.index("Enter FPS") < out.index("Output image format")
    assert out.count("Enter FPS") == 2  # "abc" is re-asked
    names = sorted(p.name for p in (ws / "data_dst").iterdir())
    assert names == [f"{i:05d}.jpg" for i in range(1, FRAMES // 2 + 1)]
    assert f"{FRAMES // 2} frames written" in out


def test_extract_with_dfl_flags_and_closed_input(sound_video: Path, tmp_path: Path) -> None:
    shutil.copy(sound_video, tmp_path / "data_src.mov")
    done = run(
        [
            "extract-video",
            f"--input-file={tmp_path / 'data_src.*'}",
            f"--output-dir={tmp_path / 'frames'}",
            "--output-ext=png",
            "--fps=0",
        ]
    )
    assert done.returncode == 0, done.stderr
    assert "Enter FPS" not in done.stdout and "Output image format" not in done.stdout
    assert len(list((tmp_path / "frames").glob("*.png"))) == FRAMES
    # No flags, input closed: the defaults (every frame, png) into workspace/data_src.
    done = run(["extract-video", "--workspace", str(tmp_path)])
    assert done.returncode == 0, done.stderr
    assert "input closed" in done.stdout
    assert len(list((tmp_path / "data_src").glob("*.png"))) == FRAMES


def test_extract_errors(tmp_path: Path) -> None:
    done = run(["extract-video", "--workspace", str(tmp_path)])
    assert done.returncode == 2 and "no video given" in done.stderr
    assert "Traceback" not in done.stderr
    done = run(["extract-video", "--input-file", str(tmp_path / "x.mp4"), "--fps=0"])
    assert done.returncode == 2 and "video not found" in done.stderr


def test_merged_to_mp4_with_mask_and_sound(sound_video: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write_frames(ws / "data_dst" / "merged", 6)
    write_frames(ws / "data_dst" / "merged_mask", 6)
    shutil.copy(sound_video, ws / "data_dst.mp4")
    done = run(["merged-to-mp4", "--workspace", str(ws)], stdin="4\n")
    assert done.returncode == 0, done.stderr
    assert "Bitrate of output file in Mbit/s" in done.stdout
    for name in ("result.mp4", "result_mask.mp4"):
        info = probe(ws / name)
        assert len(info["frames"]) == 6 and info["rate"] == FPS and info["codec"] == "h264"
        assert info["audio_s"] is not None and abs(info["audio_s"] - 0.6) < 0.05


def test_video_from_sequence_lossless_without_reference(tmp_path: Path) -> None:
    write_frames(tmp_path / "seq", 4)
    out = tmp_path / "out.mkv"
    args = ["video-from-sequence", f"--input-dir={tmp_path / 'seq'}", f"--output-file={out}"]
    done = run([*args, "--lossless", f"--workspace={tmp_path}"], stdin="30\n")
    assert done.returncode == 0, done.stderr
    assert "Enter FPS" in done.stdout and "Bitrate" not in done.stdout
    info = probe(out)
    assert info["rate"] == Fraction(30) and info["audio_s"] is None
    with av.open(str(out)) as c:
        assert c.format.name == "matroska,webm"
        assert c.streams.video[0].codec_context.pix_fmt == "gbrp"  # RGB, not 4:2:0
    assert not (tmp_path / "out_mask.mkv").exists()


def test_video_from_sequence_errors(tmp_path: Path) -> None:
    done = run(["merged-to-mp4", f"--workspace={tmp_path}"])
    assert done.returncode == 2 and "frame folder not found" in done.stderr
    write_frames(tmp_path / "seq", 2)
    write_frames(tmp_path / "seq", 1, size=(10, 10), names=["00003.png"])
    args = ["video-from-sequence", f"--input-dir={tmp_path / 'seq'}", "--fps=25", "--bitrate=2"]
    done = run([*args, f"--output-file={tmp_path / 'o.mp4'}"])
    assert done.returncode == 2 and "00003.png is 10x10" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("2_extract_images_from_video_data_src", "extract-video"),
        ("3_extract_images_from_video_data_dst", "extract-video"),
        ("8_merged_to_mp4", "video-from-sequence"),
        ("8_merged_to_mp4_lossless", "video-from-sequence --lossless"),
    ],
)
def test_launchers(name: str, command: str) -> None:
    sh = (SCRIPTS / f"{name}.sh").read_text()
    bat = (SCRIPTS / f"{name}.bat").read_bytes().decode()
    assert sh.startswith("#!/usr/bin/env bash") and f'"$DFL" {command}' in sh
    assert os.access(SCRIPTS / f"{name}.sh", os.X_OK)
    assert f'"%DFL%" {command}' in bat and "\r\n" in bat and "\n" not in bat.replace("\r\n", "")
