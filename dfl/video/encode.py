"""An image sequence as a video: DFL's `videoed video-from-sequence` ("merged to mp4").

H.264 through PyAV's bundled FFmpeg; the reference video gives the frame rate and the sound.
Facts and the differences from DFL are in docs/video.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from dfl.video import audio
from dfl.video.common import (
    IMAGE_SUFFIXES,
    ProgressFn,
    VideoError,
    atomic_output,
    list_images,
    resolve_video_path,
)

VIDEO_CODEC = "libx264"  # H.264 in 4:2:0, what players and browsers expect
VIDEO_PIX_FMT = "yuv420p"
LOSSLESS_CODEC = "libx264rgb"  # H.264 High 4:4:4 Predictive on RGB, qp 0: bit-exact frames
LOSSLESS_PIX_FMT = "bgr24"
LOSSLESS_OPTIONS = {"qp": "0", "preset": "veryfast"}
DEFAULT_BITRATE_MBPS = 16.0  # megabits per second, DFL's default
DEFAULT_FPS = 25  # DFL's default when there is no reference video
MEGABIT = 1_000_000
MAX_FPS_DENOMINATOR = 1001  # keeps NTSC rates such as 30000/1001 exact


@dataclass(frozen=True)
class EncodeResult:
    """What frames_to_video wrote."""

    output: Path
    frames: int
    fps: Fraction
    size: tuple[int, int]  # (width, height) of the frames
    codec: str
    audio_samples: int  # 0 when no sound was written
    padded: bool  # True when an odd width or height was padded to even for 4:2:0


def reference_fps(reference: Path) -> Fraction:
    """The frame rate of a video's first video stream (FFmpeg's r_frame_rate, as DFL uses)."""
    try:
        with av.open(str(reference)) as container:
            if not container.streams.video:
                raise VideoError(f"{reference} has no video stream")
            stream = container.streams.video[0]
            for rate in (stream.base_rate, stream.average_rate, stream.guessed_rate):
                if rate:
                    return Fraction(rate)
    except (av.error.FFmpegError, OSError) as e:
        raise VideoError(f"cannot read video {reference}: {e}") from e
    raise VideoError(f"{reference} does not say its frame rate; give --fps")


def sequence_images(frames_dir: Path, ext: str | None = None) -> list[Path]:
    """The frames to encode, in natural order; one image format only (DFL mixed them, which
    corrupts the video)."""
    if not frames_dir.is_dir():
        raise VideoError(f"frame folder not found: {frames_dir}")
    suffixes = (f".{ext.lower().lstrip('.')}",) if ext else IMAGE_SUFFIXES
    images = list_images(frames_dir, suffixes)
    if not images:
        wanted = f"*.{ext}" if ext else "images"
        raise VideoError(f"no {wanted} in {frames_dir}")
    kinds = sorted({p.suffix.lower() for p in images})
    if len(kinds) > 1:
        raise VideoError(f"{frames_dir} mixes {' and '.join(kinds)} images; choose one with --ext")
    return images


def _read_frames(images: list[Path]) -> Iterator[np.ndarray]:
    """Each image as 8-bit BGR; all must share one size."""
    size: tuple[int, int] | None = None
    for path in images:
        try:
            data = np.fromfile(path, np.uint8)
        except OSError as e:
            raise VideoError(f"cannot read frame {path}: {e.strerror or e}") from e
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if image is None:
            raise VideoError(f"cannot read frame {path}: not an image or damaged")
        shape = (image.shape[1], image.shape[0])
        if size is None:
            size = shape
        elif shape != size:
            raise VideoError(
                f"frame {path.name} is {shape[0]}x{shape[1]} but the frames before it are "
                f"{size[0]}x{size[1]}; all frames of a video must have one size"
            )
        yield image


def _even(image: np.ndarray) -> np.ndarray:
    """Pad an odd width or height by repeating the last column or row (4:2:0 needs even)."""
    h, w = image.shape[:2]
    return cv2.copyMakeBorder(image, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)


def _add_video_stream(
    output: av.container.OutputContainer,
    size: tuple[int, int],
    fps: Fraction,
    bitrate_mbps: float,
    lossless: bool,
) -> av.video.stream.VideoStream:
    if lossless:
        stream = output.add_stream(LOSSLESS_CODEC, rate=fps, options=dict(LOSSLESS_OPTIONS))
        stream.pix_fmt = LOSSLESS_PIX_FMT
    else:
        stream = output.add_stream(VIDEO_CODEC, rate=fps)
        stream.pix_fmt = VIDEO_PIX_FMT
        stream.bit_rate = int(bitrate_mbps * MEGABIT)
    stream.width, stream.height = size
    stream.thread_type = "AUTO"
    return stream


def _resolve_fps(reference: Path | None, fps: float | Fraction | None) -> Fraction:
    if reference is not None:
        return reference_fps(reference)
    if fps is None:
        raise VideoError("no frame rate: give a reference video or an fps")
    rate = Fraction(fps).limit_denominator(MAX_FPS_DENOMINATOR)
    if rate <= 0:
        raise VideoError(f"fps must be more than 0, not {fps}")
    return rate


@dataclass
class _Encoding:
    """The state of one encode: the stream is made when the first frame gives the size."""

    output: av.container.OutputContainer
    fps: Fraction
    bitrate_mbps: float
    lossless: bool
    reference_audio: Path | None
    audio_layout: str | None
    stream: av.video.stream.VideoStream | None = None
    audio_stream: av.audio.stream.AudioStream | None = None
    size: tuple[int, int] = (0, 0)

    def write(self, index: int, image: np.ndarray) -> None:
        if self.stream is None:
            self.size = (image.shape[1], image.shape[0])
            padded = self.size if self.lossless else _even(image).shape[1::-1]
            self.stream = _add_video_stream(
                self.output, padded, self.fps, self.bitrate_mbps, self.lossless
            )
            if self.reference_audio is not None and self.audio_layout is not None:
                self.audio_stream = audio.add_audio_stream(self.output, self.audio_layout)
        frame_image = image if self.lossless else _even(image)
        frame = av.VideoFrame.from_ndarray(frame_image, format="bgr24")
        frame.pts = index
        for packet in self.stream.encode(frame):
            self.output.mux(packet)

    def finish(self, frames: int) -> int:
        """Flush the video and write the sound; returns the audio samples written."""
        if self.stream is not None:
            for packet in self.stream.encode(None):
                self.output.mux(packet)
        if self.audio_stream is None or self.reference_audio is None:
            return 0
        return audio.copy_audio(
            self.reference_audio, self.output, self.audio_stream, frames / self.fps
        )


def frames_to_video(
    frames_dir: Path | str,
    output: Path | str,
    reference_video: Path | str | None = None,
    fps: float | Fraction | None = None,
    bitrate_mbps: float = DEFAULT_BITRATE_MBPS,
    lossless: bool = False,
    include_audio: bool = True,
    ext: str | None = None,
    progress: ProgressFn | None = None,
) -> EncodeResult:
    """Encode the images of `frames_dir` (natural order) into the video file `output`.

    The frame rate is the reference video's when one is given, else `fps`. Its sound, if any, is
    re-encoded (AAC) and cut to the video's length when `include_audio`. Normal output is H.264
    4:2:0 at `bitrate_mbps` megabits per second; `lossless` is H.264 RGB at qp 0 (bit-exact).
    The file is written under a temp name and renamed when whole.
    """
    frames_dir, output = Path(frames_dir), Path(output)
    reference = resolve_video_path(reference_video) if reference_video is not None else None
    rate = _resolve_fps(reference, fps)
    if not lossless and bitrate_mbps <= 0:
        raise VideoError(f"bitrate must be more than 0 megabits per second, not {bitrate_mbps}")
    images = sequence_images(frames_dir, ext)
    with_audio = reference if include_audio else None
    layout = audio.audio_layout(with_audio) if with_audio is not None else None
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VideoError(f"cannot create {output.parent}: {e.strerror or e}") from e
    try:
        with atomic_output(output) as tmp, av.open(str(tmp), mode="w") as container:
            job = _Encoding(container, rate, bitrate_mbps, lossless, with_audio, layout)
            for index, image in enumerate(_read_frames(images)):
                job.write(index, image)
                if progress is not None:
                    progress(index + 1, len(images))
            samples = job.finish(len(images))
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise VideoError(f"cannot write video {output}: {e}") from e
    codec = LOSSLESS_CODEC if lossless else VIDEO_CODEC
    padded = not lossless and (job.size[0] % 2 == 1 or job.size[1] % 2 == 1)
    return EncodeResult(output, len(images), rate, job.size, codec, samples, padded)
