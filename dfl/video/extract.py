"""A video's frames as numbered images: DFL's `videoed extract-video` (docs/video.md)."""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from dfl.video.common import ProgressFn, VideoError, resolve_video_path

OUTPUT_EXTS = ("png", "jpg")
# DFL asks FFmpeg for `-q:v 2` (its best JPEG setting); OpenCV's scale has no exact match,
# 95 is about as close as it gets.
JPEG_QUALITY = 95
PNG_COMPRESSION = 1  # zlib level: 0 (none) .. 9 (smallest, slowest); 1 is OpenCV's default
MAX_ENCODE_THREADS = 8
IN_FLIGHT_PER_THREAD = 2  # frames waiting for their encoder, per thread (bounds the memory)
FRAME_NAME_DIGITS = 5  # 00001.png, as FFmpeg's `%5d` pattern writes them
QUARTER_TURN_DEG = 90


@dataclass(frozen=True)
class ExtractResult:
    """What extract_frames wrote."""

    video: Path
    output_dir: Path
    frames: int  # images written
    fps: Fraction  # their frame rate: the video's own, or the one asked for
    removed: int  # old images of the same extension removed from output_dir first


def frame_name(number: int, ext: str) -> str:
    """The file name of frame `number` (counting from 1), e.g. `00001.png`."""
    return f"{number:0{FRAME_NAME_DIGITS}d}.{ext}"


def upright(image: np.ndarray, rotation_deg: int) -> np.ndarray:
    """Turn a decoded frame as the video's display matrix says (`rotation_deg` is the
    counter-clockwise angle PyAV reports; FFmpeg's command line applies it by default)."""
    quarter_turns = round(rotation_deg / QUARTER_TURN_DEG) % 4
    return np.ascontiguousarray(np.rot90(image, quarter_turns)) if quarter_turns else image


def _encode_image(image: np.ndarray, ext: str) -> bytes:
    if ext == "jpg":
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    else:
        params = [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION]
    ok, data = cv2.imencode(f".{ext}", image, params)
    if not ok:
        raise VideoError(f"cannot encode a frame as .{ext}")
    return data.tobytes()


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as e:
        raise VideoError(f"cannot write {path}: {e.strerror or e}") from e


def _prepare_output(output_dir: Path, ext: str) -> int:
    """Create `output_dir`; remove the images of extension `ext` already in it (as DFL does,
    so no frame of an older extraction is left behind). Returns how many were removed."""
    if output_dir.exists() and not output_dir.is_dir():
        raise VideoError(f"{output_dir} is a file, not a folder")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        old = [p for p in output_dir.iterdir() if p.is_file() and p.suffix.lower() == f".{ext}"]
        for p in old:
            p.unlink()
    except OSError as e:
        raise VideoError(f"cannot write to {output_dir}: {e.strerror or e}") from e
    return len(old)


def _frame_rate(stream: av.video.stream.VideoStream) -> Fraction | None:
    """The stream's frame rate: FFmpeg's r_frame_rate (what DFL reads), else its average."""
    for rate in (stream.base_rate, stream.average_rate, stream.guessed_rate):
        if rate:
            return Fraction(rate)
    return None


def _estimated_frames(stream: av.video.stream.VideoStream, out_fps: Fraction | None) -> int | None:
    """The number of images to expect, for the progress bar; None when unknown."""
    if stream.duration and stream.time_base:
        seconds = stream.duration * stream.time_base
        rate = out_fps or _frame_rate(stream)
        if rate:
            return max(1, round(seconds * rate))
    return stream.frames or None


def _timed_frames(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> Iterator[tuple[Fraction, np.ndarray]]:
    """(seconds from the first frame, BGR image) for every decoded frame."""
    rate = _frame_rate(stream) or Fraction(1)
    start: Fraction | None = None
    for index, frame in enumerate(container.decode(stream)):
        if frame.pts is not None and frame.time_base is not None:
            t = frame.pts * Fraction(frame.time_base)
        else:
            t = index / rate
        start = t if start is None else start
        yield t - start, upright(frame.to_ndarray(format="bgr24"), frame.rotation)


def _slots(
    frames: Iterator[tuple[Fraction, np.ndarray]], fps: Fraction, frame_s: Fraction
) -> Iterator[tuple[np.ndarray, int]]:
    """(image, repeat count) at a constant `fps`, as FFmpeg's `-r` gives for image output:
    output frame n (at n/fps seconds) shows the newest frame whose time is nearest to n/fps or
    earlier; frames between two output times are dropped, and a frame longer than one output
    interval repeats. The output lasts as long as the video: ceil(duration * fps) frames."""
    held: np.ndarray | None = None
    next_slot = 0
    last_t = Fraction(0)
    for t, image in frames:
        first = math.floor(t * fps - Fraction(1, 2)) + 1  # first slot this frame may fill
        if held is not None and first > next_slot:
            yield held, first - next_slot
            next_slot = first
        held, last_t = image, t
    if held is not None:
        end = math.ceil((last_t + frame_s) * fps)
        if end > next_slot:
            yield held, end - next_slot


def _write_all(
    pairs: Iterator[tuple[np.ndarray, int]],
    ext: str,
    output_dir: Path,
    total: int | None,
    progress: ProgressFn | None,
) -> int:
    """Encode the images on a few threads (OpenCV releases the GIL) while the next frames
    decode; write them in order. Returns the number of files written."""
    workers = max(1, min(MAX_ENCODE_THREADS, os.cpu_count() or 1))
    pending: deque[tuple[Future[bytes], int]] = deque()
    written = 0

    def flush(keep: int) -> None:
        nonlocal written
        while len(pending) > keep:
            future, repeat = pending.popleft()
            data = future.result()
            for _ in range(repeat):
                written += 1
                _write(output_dir / frame_name(written, ext), data)
                if progress is not None:
                    progress(written, total)

    with ThreadPoolExecutor(workers) as pool:
        for image, repeat in pairs:
            pending.append((pool.submit(_encode_image, image, ext), repeat))
            flush(keep=IN_FLIGHT_PER_THREAD * workers)
        flush(keep=0)
    return written


def extract_frames(
    video: Path | str,
    output_dir: Path | str,
    fps: float | Fraction | None = None,
    ext: str = "png",
    progress: ProgressFn | None = None,
) -> ExtractResult:
    """Write every frame of `video` to `output_dir` as 00001.<ext>, 00002.<ext>, ...

    `fps` None or 0 keeps every frame; otherwise frames are dropped or repeated to that rate.
    `video` may be DFL's `<folder>/<stem>.*`. Images of extension `ext` already in the folder are
    removed first (after the video has been opened). `progress(done, total)` follows each image.
    """
    if ext not in OUTPUT_EXTS:
        raise VideoError(f"output image format must be one of {', '.join(OUTPUT_EXTS)}, not {ext}")
    out_fps = Fraction(fps).limit_denominator(1001) if fps else None
    if out_fps is not None and out_fps < 0:
        raise VideoError(f"fps must be 0 (the video's own rate) or more, not {fps}")
    path = resolve_video_path(video)
    output_dir = Path(output_dir)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise VideoError(f"cannot read video {path}: {e}") from e
    with container:
        if not container.streams.video:
            raise VideoError(f"{path} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # decode with several threads
        rate = _frame_rate(stream) or Fraction(25)
        total = _estimated_frames(stream, out_fps)
        removed = _prepare_output(output_dir, ext)
        frames = _timed_frames(container, stream)
        pairs = _slots(frames, out_fps, 1 / rate) if out_fps else ((im, 1) for _, im in frames)
        try:
            written = _write_all(pairs, ext, output_dir, total, progress)
        except av.error.FFmpegError as e:
            raise VideoError(f"{path} is damaged: {e}") from e
    if written == 0:
        raise VideoError(f"{path} holds no readable video frame")
    return ExtractResult(path, output_dir, written, out_fps or rate, removed)
