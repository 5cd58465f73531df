"""dfl.video: frames out of a video (DFL's extract-video) and an image sequence into a video
(DFL's merged to mp4), on tiny generated videos with and without sound."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from dfl.video import VideoError, extract_frames, frames_to_video, resolve_video_path
from dfl.video.extract import upright
from tests.video_helpers import (
    FPS,
    FRAMES,
    STEP,
    H,
    W,
    brightness,
    frame_image,
    make_video,
    probe,
    write_frames,
)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    return {
        "silent": make_video(root / "silent.mp4"),
        "sound": make_video(root / "sound.mp4", fps=Fraction(30000, 1001), audio_s=1.0),
    }


# --- extract_frames ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["silent", "sound"])
def test_extract_every_frame(videos: dict[str, Path], tmp_path: Path, kind: str) -> None:
    progress: list[tuple[int, int | None]] = []
    result = extract_frames(
        videos[kind], tmp_path / "out", progress=lambda d, t: progress.append((d, t))
    )
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [f"{i:05d}.png" for i in range(1, FRAMES + 1)]
    assert result.frames == FRAMES and result.removed == 0
    assert result.fps == (FPS if kind == "silent" else Fraction(30000, 1001))
    assert [d for d, _ in progress] == list(range(1, FRAMES + 1))
    levels = [brightness(tmp_path / "out" / n) for n in names]
    np.testing.assert_allclose(levels, [STEP * i + 10 for i in range(FRAMES)], atol=2)


def test_extract_at_another_fps(videos: dict[str, Path], tmp_path: Path) -> None:
    half = extract_frames(videos["silent"], tmp_path / "half", fps=FPS // 2)
    assert half.frames == FRAMES // 2 and half.fps == FPS // 2
    levels = [brightness(tmp_path / "half" / f"{i:05d}.png") for i in range(1, 6)]
    np.testing.assert_allclose(levels, [STEP * i + 10 for i in range(0, FRAMES, 2)], atol=2)
    double = extract_frames(videos["silent"], tmp_path / "double", fps=2 * FPS, ext="jpg")
    assert double.frames == 2 * FRAMES
    assert sorted(p.name for p in (tmp_path / "double").iterdir())[-1] == "00020.jpg"
    levels = [brightness(tmp_path / "double" / f"{i:05d}.jpg") for i in range(1, 21)]
    np.testing.assert_allclose(levels, [STEP * (i // 2) + 10 for i in range(20)], atol=3)


def test_extract_replaces_old_frames_of_its_format_only(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "data_dst"
    write_frames(out, 15)  # an older, longer extraction
    (out / "keep.jpg").write_bytes(b"x")
    (out / "aligned").mkdir()
    result = extract_frames(videos["silent"], out)
    assert result.removed == 15 and result.frames == FRAMES
    assert not (out / "00015.png").exists() and (out / "keep.jpg").exists()
    assert (out / "aligned").is_dir()


def test_dfl_star_input(videos: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "Data_Dst.mp4").write_bytes(videos["silent"].read_bytes())
    (tmp_path / "data_dst").mkdir()
    assert resolve_video_path(tmp_path / "data_dst.*") == tmp_path / "Data_Dst.mp4"
    assert extract_frames(tmp_path / "data_dst.*", tmp_path / "data_dst").frames == FRAMES
    with pytest.raises(VideoError, match=r"no video named data_src\.\*"):
        resolve_video_path(tmp_path / "data_src.*")


def test_extract_bad_inputs(videos: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_frames(out, 2)
    with pytest.raises(VideoError, match="video not found"):
        extract_frames(tmp_path / "missing.mp4", out)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(VideoError, match="cannot read video"):
        extract_frames(text, out)
    assert len(list(out.iterdir())) == 2  # nothing removed when the video cannot be read
    with pytest.raises(VideoError, match="png, jpg"):
        extract_frames(videos["silent"], out, ext="bmp")
    with pytest.raises(VideoError, match="not a folder"):
        extract_frames(videos["silent"], text)
    with pytest.raises(VideoError, match="is not a file"):
        extract_frames(tmp_path, out)


def test_upright_applies_the_display_rotation() -> None:
    img = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert upright(img, 0) is img
    np.testing.assert_array_equal(upright(img, 90), np.rot90(img))  # counter-clockwise
    np.testing.assert_array_equal(upright(img, -90), np.rot90(img, -1))
    np.testing.assert_array_equal(upright(img, 180), img[::-1, ::-1])


# --- frames_to_video --------------------------------------------------------------------------


def test_rate_and_sound_come_from_the_reference(videos: dict[str, Path], tmp_path: Path) -> None:
    write_frames(tmp_path / "merged", 6)
    result = frames_to_video(tmp_path / "merged", tmp_path / "result.mp4", videos["sound"], fps=99)
    info = probe(tmp_path / "result.mp4")
    assert info["rate"] == Fraction(30000, 1001) == result.fps
    assert info["codec"] == "h264" and len(info["frames"]) == 6
    assert info["audio_rate"] == 48_000
    seconds = 6 * 1001 / 30000
    assert result.audio_samples == int(seconds * 48_000)  # cut to the video, not 1 s
    assert abs(info["audio_s"] - seconds) < 0.05  # plus the AAC encoder's priming
    silent = frames_to_video(tmp_path / "merged", tmp_path / "a.mp4", videos["silent"])
    assert silent.audio_samples == 0 and probe(tmp_path / "a.mp4")["audio_s"] is None
    assert silent.fps == FPS
    muted = frames_to_video(
        tmp_path / "merged", tmp_path / "m.mp4", videos["sound"], include_audio=False
    )
    assert muted.audio_samples == 0 and probe(tmp_path / "m.mp4")["audio_s"] is None


def test_lossless_round_trip_is_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    (tmp_path / "seq").mkdir()
    images = [rng.integers(0, 256, size=(37, 51, 3), dtype=np.uint8) for _ in range(4)]
    for i, img in enumerate(images):
        cv2.imwrite(str(tmp_path / "seq" / f"{i + 1:05d}.png"), img)
    result = frames_to_video(tmp_path / "seq", tmp_path / "out.mp4", fps=24, lossless=True)
    assert result.codec == "libx264rgb" and not result.padded
    frames = probe(tmp_path / "out.mp4")["frames"]
    assert len(frames) == 4
    for got, want in zip(frames, images, strict=True):
        np.testing.assert_array_equal(got, want)
    assert extract_frames(tmp_path / "out.mp4", tmp_path / "back").frames == 4
    for i, want in enumerate(images):
        np.testing.assert_array_equal(cv2.imread(str(tmp_path / "back" / f"{i + 1:05d}.png")), want)


def test_normal_output_pads_odd_sizes(tmp_path: Path) -> None:
    write_frames(tmp_path / "seq", 3, size=(33, 21))
    result = frames_to_video(tmp_path / "seq", tmp_path / "out" / "v.mp4", fps=25, bitrate_mbps=1)
    assert result.padded and result.size == (33, 21) and result.codec == "libx264"
    info = probe(tmp_path / "out" / "v.mp4")  # the missing folder was created
    assert info["size"] == (34, 22) and info["rate"] == 25


def test_natural_order_and_one_format(tmp_path: Path) -> None:
    folder = tmp_path / "seq"
    write_frames(folder, 3, names=["1.png", "2.png", "10.png"])
    frames_to_video(folder, tmp_path / "o.mp4", fps=5, lossless=True)
    levels = [f[H // 2 :, W // 2 :].mean() for f in probe(tmp_path / "o.mp4")["frames"]]
    np.testing.assert_allclose(levels, [10, 10 + STEP, 10 + 2 * STEP])
    cv2.imwrite(str(folder / "3.jpg"), frame_image(0))
    with pytest.raises(VideoError, match=r"mixes \.jpg and \.png"):
        frames_to_video(folder, tmp_path / "o2.mp4", fps=5)
    assert frames_to_video(folder, tmp_path / "o2.mp4", fps=5, ext="png").frames == 3


def test_frames_of_different_sizes_are_refused(tmp_path: Path) -> None:
    write_frames(tmp_path / "seq", 3)
    cv2.imwrite(str(tmp_path / "seq" / "00004.png"), frame_image(3, (W + 2, H)))
    output = tmp_path / "result.mp4"
    output.write_bytes(b"an older result")
    with pytest.raises(VideoError, match=r"00004.png is 66x48 but the frames before it are 64x48"):
        frames_to_video(tmp_path / "seq", output, fps=25)
    assert output.read_bytes() == b"an older result"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.mp4", "seq"]  # no temp file


def test_bad_sequences(videos: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="frame folder not found"):
        frames_to_video(tmp_path / "missing", tmp_path / "o.mp4", fps=25)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="no images in"):
        frames_to_video(tmp_path / "empty", tmp_path / "o.mp4", fps=25)
    write_frames(tmp_path / "seq", 2)
    with pytest.raises(VideoError, match="no frame rate"):
        frames_to_video(tmp_path / "seq", tmp_path / "o.mp4")
    with pytest.raises(VideoError, match="video not found"):
        frames_to_video(tmp_path / "seq", tmp_path / "o.mp4", tmp_path / "nope.mp4")
    with pytest.raises(VideoError, match="bitrate"):
        frames_to_video(tmp_path / "seq", tmp_path / "o.mp4", fps=25, bitrate_mbps=0)
    (tmp_path / "seq" / "00003.png").write_bytes(b"broken")
    with pytest.raises(VideoError, match=r"cannot read frame .*00003\.png"):
        frames_to_video(tmp_path / "seq", tmp_path / "o.mp4", fps=25)
    assert not (tmp_path / "o.mp4").exists()
