"""Tiny generated videos and frame folders for the video tests."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

W, H = 64, 48
FRAMES = 10
FPS = 10
STEP = 20  # brightness step between frames, so the order can be read back
AUDIO_RATE = 44_100


def frame_image(i: int, size: tuple[int, int] = (W, H)) -> np.ndarray:
    """Frame i: brightness STEP * i plus a small fixed pattern (BGR uint8)."""
    w, h = size
    img = np.full((h, w, 3), min(255, STEP * i + 10), np.uint8)
    img[4:12, 4:20] = (255, 0, 0)
    return img


def brightness(path: Path) -> float:
    return float(cv2.imread(str(path))[H // 2 :, W // 2 :].mean())


def make_video(
    path: Path, frames: int = FRAMES, fps: int | Fraction = FPS, audio_s: float | None = None
) -> Path:
    """An H.264 video of `frames` frames; with `audio_s` seconds of a stereo tone (AAC)."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps, options={"qp": "0", "preset": "ultrafast"})
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv444p"
        aus = None
        if audio_s is not None:
            aus = out.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(frame_image(i), format="bgr24")
            frame.pts = i
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
        if aus is not None:
            t = np.arange(int(AUDIO_RATE * audio_s)) / AUDIO_RATE
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for k in range(0, len(t), 1024):
                chunk = np.ascontiguousarray(np.stack([tone[k : k + 1024]] * 2))
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                af.sample_rate, af.pts = AUDIO_RATE, k
                for packet in aus.encode(af):
                    out.mux(packet)
            for packet in aus.encode(None):
                out.mux(packet)
    return path


def write_frames(folder: Path, count: int, size=(W, H), ext="png", names=None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    names = names or [f"{i + 1:05d}.{ext}" for i in range(count)]
    paths = []
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / name), frame_image(i, size))
        paths.append(folder / name)
    return paths


def probe(path: Path) -> dict:
    """Frame count, rate, codec, size and sound (seconds) of a written video."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        info = {
            "rate": Fraction(v.base_rate),
            "codec": v.codec_context.name,
            "size": (v.codec_context.width, v.codec_context.height),
            "frames": [f.to_ndarray(format="bgr24") for f in c.decode(v)],
        }
    with av.open(str(path)) as c:
        info["audio_s"] = None
        if c.streams.audio:
            a = c.streams.audio[0]
            info["audio_rate"] = a.rate
            info["audio_s"] = sum(f.samples for f in c.decode(a)) / a.rate
    return info
