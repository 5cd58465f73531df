"""Demo dst *frames*: the dst person in a room, moving a little from frame to frame, and the
aligned faces cut from those frames as DFL's extractor cuts them (docs/demo.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dfl.data import landmarks as L
from dfl.demo.face_drawing import (
    FACE_TYPE,
    NOISE_SIGMA,
    apply_expression,
    face_metadata,
    person_shape,
    projection,
    rotation,
)
from dfl.demo.people import Person
from dfl.demo.person_drawing import draw_person

FRAME_SIZE = (320, 240)  # (width, height) of a demo frame, pixels
DEMO_FPS = 25  # frame rate of the demo video
DEMO_VIDEO_NAME = "data_dst.mp4"
DEMO_BITRATE_MBPS = 2.0  # plenty for 320x240
# Head size in the frame: template units (about pixels of a 256 px whole_face crop) -> frame px.
HEAD_SCALE = 0.62
HEAD_SCALE_SWING = 0.04  # the head moves a little toward and away from the camera

# Smooth motion: (amplitude, period in frames, phase in radians) per pose parameter.
SWAY_X = (36.0, 33.0, 0.0)  # pixels
SWAY_Y = (9.0, 29.0, 1.0)  # pixels
YAW = (0.32, 25.0, 0.0)  # radians
PITCH = (0.10, 37.0, 2.0)
ROLL = (0.12, 27.0, 0.0)
ZOOM_PERIOD = 61.0  # frames
# Expression over time: mouth opening and smiling come and go; a blink every BLINK_EVERY frames.
MOUTH = (1.0, 23.0, 0.5)
SMILE = (0.6, 71.0, 1.3)
BLINK_EVERY = 31
BLINK_FRAMES = 2
WALLPAPER_PERIOD_PX = 10.0
WALLPAPER_CONTRAST = 0.4  # darkest pattern / wall colour = 1 - this
SCENE_BLUR_SIGMA = 0.7  # pixels; softens the drawn room a little, like a camera


@dataclass(frozen=True)
class DemoFrame:
    """One rendered frame and where its face is."""

    image: np.ndarray  # uint8 BGR, FRAME_SIZE
    landmarks: np.ndarray  # (68, 2) float32, frame pixels


def _wave(params: tuple[float, float, float], t: float) -> float:
    amplitude, period, phase = params
    return amplitude * math.sin(2.0 * math.pi * t / period + phase)


def render_scene(seed: int, size: tuple[int, int] = FRAME_SIZE) -> np.ndarray:
    """The room behind the person (float32 BGR): a papered wall with a window, a picture and a
    shelf of books, and a floor; the same for every frame of one seed."""
    rng = np.random.default_rng([seed, 7])
    w, h = size
    wall = rng.uniform(120, 200, size=3).astype(np.float32)
    xs = np.arange(w, dtype=np.float32)[None, :, None]
    ys = np.arange(h, dtype=np.float32)[:, None, None]
    img = wall * (0.85 + 0.15 * ys / h) * np.ones((h, w, 1), np.float32)
    stripes = np.sin(xs * 2.0 * math.pi / WALLPAPER_PERIOD_PX) > 0
    dots = (np.sin(xs * 0.9) * np.sin(ys * 0.9)) > 0.6
    img *= 1.0 - WALLPAPER_CONTRAST * (0.6 * stripes + 0.4 * dots)
    floor = int(h * 0.82)
    img[floor:] = rng.uniform(50, 110, size=3).astype(np.float32)
    img[floor:, :] *= 0.9 + 0.1 * (np.sin(xs[0] * 2.0 * math.pi / 23.0) > 0)
    x0 = int(w * 0.04)
    cv2.rectangle(img, (x0, int(h * 0.1)), (x0 + w // 5, int(h * 0.55)), (235, 225, 205), -1)
    cv2.rectangle(img, (x0, int(h * 0.1)), (x0 + w // 5, int(h * 0.55)), (60, 60, 70), 3)
    cv2.line(img, (x0 + w // 10, int(h * 0.1)), (x0 + w // 10, int(h * 0.55)), (60, 60, 70), 2)
    px0, py0 = int(w * 0.74), int(h * 0.12)
    picture = rng.uniform(30, 230, size=(6, 8, 3)).astype(np.float32)
    pw, ph = w // 6, h // 5
    img[py0 : py0 + ph, px0 : px0 + pw] = cv2.resize(picture, (pw, ph), cv2.INTER_NEAREST)
    cv2.rectangle(img, (px0, py0), (px0 + pw, py0 + ph), (40, 70, 110), 3)
    shelf_y = int(h * 0.62)
    x = int(w * 0.68)
    while x < w - 6:  # books
        bw = int(rng.integers(5, 11))
        top = shelf_y - int(rng.integers(18, 32))
        cv2.rectangle(img, (x, top), (x + bw - 1, shelf_y), rng.uniform(20, 230, 3).tolist(), -1)
        x += bw + 1
    cv2.rectangle(img, (int(w * 0.66), shelf_y), (w, shelf_y + 5), (50, 80, 120), -1)
    return cv2.GaussianBlur(img, (0, 0), SCENE_BLUR_SIGMA)


def frame_pose(
    index: int, size: tuple[int, int] = FRAME_SIZE
) -> tuple[np.ndarray, float, np.ndarray]:
    """(rotation, template units -> pixels, face centre in pixels) of frame `index`."""
    t = float(index)
    w, h = size
    scale = (HEAD_SCALE + HEAD_SCALE_SWING * math.sin(2 * math.pi * t / ZOOM_PERIOD)) * h / 240.0
    centre = np.array([w * 0.5 + _wave(SWAY_X, t) * w / 320.0, h * 0.47 + _wave(SWAY_Y, t)])
    rot = rotation(_wave(YAW, t), _wave(PITCH, t), _wave(ROLL, t))
    return rot, scale, centre


def frame_expression(index: int) -> dict[str, float]:
    """Expression knobs of frame `index`, changing smoothly."""
    t = float(index)
    blinking = index % BLINK_EVERY >= BLINK_EVERY - BLINK_FRAMES
    return {
        "open": max(0.0, _wave(MOUTH, t)) ** 2,
        "smile": _wave(SMILE, t) + 0.2,
        "blink": 0.85 if blinking else 0.05,
        "surprise": 0.0,
        "gaze_x": 0.1 * math.sin(t / 9.0),
        "gaze_y": 0.0,
    }


def render_frame(
    person: Person, index: int, seed: int, scene: np.ndarray | None = None
) -> DemoFrame:
    """Frame `index` (from 0) of the demo video: the person in the room, deterministic per seed.

    The person's look (colours, hair strands, light) is drawn from one generator per seed, so
    it stays the same from frame to frame; only the camera noise changes.
    """
    scene = render_scene(seed) if scene is None else scene
    h, w = scene.shape[:2]
    rot, scale, centre = frame_pose(index, (w, h))
    expr = frame_expression(index)
    shape = person_shape(person)
    shape = {**shape, "lm": apply_expression(shape["lm"], expr)}
    project = projection(rot, scale, centre)
    img = scene.copy()
    draw_person(img, person, np.random.default_rng([seed, 1, 0]), shape, expr, project, scale)
    noise_rng = np.random.default_rng([seed, 1, index + 1])
    img += noise_rng.standard_normal(size=img.shape, dtype=np.float32) * np.float32(NOISE_SIGMA)
    image = np.clip(img, 0, 255).astype(np.uint8)
    return DemoFrame(image, project(shape["lm"]).astype(np.float32))


def cut_face(frame: DemoFrame, resolution: int, index: int) -> tuple[np.ndarray, dict]:
    """The aligned face of a frame and its metadata, as DFL's extractor makes them: the
    face-type transform of the frame landmarks, bilinear, black outside the frame."""
    mat = L.transform_matrix(frame.landmarks, resolution, FACE_TYPE)
    face = cv2.warpAffine(frame.image, mat, (resolution, resolution), flags=cv2.INTER_LINEAR)
    aligned = L.transform_points(frame.landmarks, mat)
    return face, face_metadata(aligned, frame.landmarks, mat, index)


def make_demo_video(workspace: Path, overwrite: bool = False) -> Path | None:
    """``workspace/data_dst.mp4`` from the demo's dst frames (so `dfl extract-video` can be
    tried on it). An existing ``data_dst.*`` video is kept unless ``overwrite``; returns the
    video written, or None when one was kept."""
    from dfl.video import VideoError, frames_to_video, resolve_video_path

    try:
        existing = resolve_video_path(workspace / "data_dst.*")
    except VideoError:
        existing = None
    if existing is not None and not overwrite:
        return None
    output = workspace / DEMO_VIDEO_NAME
    frames_to_video(
        workspace / "data_dst", output, fps=DEMO_FPS, bitrate_mbps=DEMO_BITRATE_MBPS, ext="png"
    )
    return output
