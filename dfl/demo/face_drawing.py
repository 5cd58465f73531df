"""Procedural demo "people": faces drawn with OpenCV, with 68 landmarks and DFL alignment data."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from dfl.data import landmarks as L
from dfl.demo import paint
from dfl.demo.people import Person
from dfl.demo.person_drawing import draw_person

FACE_TYPE = L.WHOLE_FACE


# Per-image pose ranges (radians) and source-frame placement.
MAX_YAW = 0.35
MAX_PITCH = 0.15
MAX_ROLL = 0.20
SOURCE_FRAME_FACTOR = 2.0  # virtual source frame side, in output resolutions
SOURCE_SCALE_RANGE = (0.9, 1.5)  # template units -> source pixels, per 256 px of output


# The background is drawn this many times smaller than the image, then enlarged.
BACKGROUND_DOWNSCALE = 4

# Pixel noise added to each finished image (uint8 levels, standard deviation).
NOISE_SIGMA = 2.0


# --- geometry in the template frame (units ~ pixels of a 256 px whole_face crop) ---------------


def _arc(n: int, half_width: float, y0: float, top: float, z0: float, z_top: float) -> np.ndarray:
    """3-D arc from (-half_width, y0) over the top (0, top) to (+half_width, y0)."""
    t = np.linspace(math.pi, 0.0, n)
    s = np.sin(t)
    return np.stack(
        [half_width * np.cos(t), y0 + (top - y0) * s**0.8, z0 + (z_top - z0) * s], axis=1
    )


def person_landmarks(p: Person) -> np.ndarray:
    """The 68 3-D landmarks of one person in a neutral pose: the mean shape with the person's
    jaw, eyes, brows, nose and mouth."""
    lm = L.MEAN_SHAPE_3D.copy()
    jaw = lm[L.JAW]
    low = np.clip((jaw[:, 1] + 30.0) / 107.0, 0.0, 1.0)  # 0 at the temples, 1 at the chin
    jaw[:, 0] *= p.face_width
    jaw[:, 0] += np.sign(jaw[:, 0]) * p.jaw_round * np.sin(low * math.pi) ** 2
    jaw[:, 1] += p.chin_drop * low**3
    lm[L.JAW] = jaw
    for eye in (L.RIGHT_EYE, L.LEFT_EYE):
        c = lm[eye].mean(axis=0)
        lm[eye] = c + (lm[eye] - c) * [p.eye_size, p.eye_size * 1.6, 1.0]
    for brow in (L.RIGHT_BROW, L.LEFT_BROW):
        lm[brow, 1] -= (
            p.brow_raise
            + p.brow_arch
            * np.array([0.0, 0.6, 1.0, 0.7, 0.2])[:: 1 if brow == L.RIGHT_BROW else -1]
        )
    nose = lm[31:36]
    nose[:, 0] = lm[33, 0] + (nose[:, 0] - lm[33, 0]) * p.nose_width
    lm[30:36, 1] += p.nose_length
    mouth = lm[48:68]
    cx = lm[62, 0]
    mouth[:, 0] = cx + (mouth[:, 0] - cx) * p.mouth_width
    lm[48:68] = mouth
    lm[49:54, 1] -= p.lip_thickness
    lm[55:60, 1] += p.lip_thickness
    # A closed mouth: the inner lower lip sits just under the inner upper lip.
    lm[65, 1], lm[66, 1], lm[67, 1] = lm[63, 1] + 1.0, lm[62, 1] + 1.0, lm[61, 1] + 1.0
    return lm


def person_shape(p: Person) -> dict[str, np.ndarray]:
    """3-D landmarks and extra outline points of one person in a neutral pose."""
    lm = person_landmarks(p)
    half_w = 0.5 * (lm[16, 0] - lm[0, 0])
    top = _arc(15, half_w, lm[0, 1], -122.0, 47.0, 10.0)  # forehead outline
    skull = _arc(21, half_w + p.hair_volume, lm[0, 1] + 20.0, -130.0 - p.hair_volume, 50.0, 10.0)
    hairline = _arc(15, half_w - 2.0, lm[0, 1] - 8.0, p.hairline, 44.0, 0.0)
    hairline[:, 1] += (
        p.hair_part
        * (0.5 + 0.5 * hairline[:, 0] / half_w)
        * np.sin(np.linspace(0.0, math.pi, len(hairline)))
    )
    neck_w = 0.55 * half_w
    neck = np.array(
        [
            [-neck_w, 30.0, 25.0],
            [-neck_w - 4.0, 150.0, 25.0],
            [neck_w + 4.0, 150.0, 25.0],
            [neck_w, 30.0, 25.0],
        ]
    )
    shoulders = np.array(
        [
            [-neck_w - 2.0, 115.0, 25.0],
            [-170.0, 150.0, 25.0],
            [-190.0, 260.0, 25.0],
            [190.0, 260.0, 25.0],
            [170.0, 150.0, 25.0],
            [neck_w + 2.0, 115.0, 25.0],
        ]
    )
    ears = np.array([[-half_w - 4.0, -12.0, 40.0], [half_w + 4.0, -12.0, 40.0]])
    return {
        "lm": lm,
        "top": top,
        "skull": skull,
        "hairline": hairline,
        "neck": neck,
        "shoulders": shoulders,
        "ears": ears,
    }


def random_expression(rng: np.random.Generator) -> dict[str, float]:
    """Random expression knobs: mouth open, smile, blink, surprise (0-1) and gaze."""
    open_ = float(rng.uniform(0.0, 1.0)) if rng.random() < 0.45 else 0.0
    smile = float(rng.uniform(-0.3, 1.0))
    blink = float(rng.uniform(0.6, 0.9)) if rng.random() < 0.12 else float(rng.uniform(0, 0.25))
    surprise = float(rng.uniform(0.0, 1.0)) if rng.random() < 0.25 else 0.0
    gaze = rng.uniform(-0.18, 0.18, size=2) * [1.0, 0.5]
    return {
        "open": open_,
        "smile": smile,
        "blink": blink,
        "surprise": surprise,
        "gaze_x": float(gaze[0]),
        "gaze_y": float(gaze[1]),
    }


def apply_expression(lm: np.ndarray, expr: dict[str, float]) -> np.ndarray:
    """Move mouth, eyes and brows of the 3-D landmarks for the expression knobs."""
    lm = lm.copy()
    smile, blink = expr["smile"], expr["blink"]
    drop = expr["open"] * 16.0
    lm[[65, 66, 67], 1] += drop
    lm[55:60, 1] += drop * np.array([0.6, 0.9, 1.0, 0.9, 0.6])
    lm[5:12, 1] += drop * 0.35 * np.array([0.3, 0.7, 0.9, 1.0, 0.9, 0.7, 0.3])
    for corner, inner, side in ((48, 60, -1.0), (54, 64, 1.0)):
        lm[[corner, inner], 1] -= smile * 5.0
        lm[[corner, inner], 0] += side * smile * 3.5
    lm[[49, 53], 1] -= smile * 1.5
    for upper, lower in (((37, 38), (41, 40)), ((43, 44), (47, 46))):
        lm[list(upper), 1] += (lm[list(lower), 1] - lm[list(upper), 1]) * blink
    lm[17:27, 1] -= expr["surprise"] * 6.0
    return lm


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The 3x3 head rotation (radians): yaw about y, then pitch about x, then roll about z."""
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ rx @ ry


def _background(res: int, inv: np.ndarray, rng: np.random.Generator, src_px: float) -> np.ndarray:
    """A random backdrop defined in the source frame, seen through the alignment."""
    # Drawn at a quarter of the resolution (it is soft anyway), then enlarged.
    low = max(16, res // BACKGROUND_DOWNSCALE)
    k = res / low
    coords = (np.arange(low, dtype=np.float32) + 0.5) * k
    xx, yy = coords[None, :], coords[:, None]
    sx = inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2]
    sy = inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]
    base = rng.uniform(40, 230, size=3).astype(np.float32)
    other = np.clip(base + rng.normal(0, 60, size=3), 0, 255).astype(np.float32)
    ang = rng.uniform(-0.6, 0.6) + math.pi / 2
    span = src_px * rng.uniform(300, 600)
    g = ((sx * math.cos(ang) + sy * math.sin(ang)) / span) % 2.0
    g = np.minimum(g, 2.0 - g)[..., None]
    bg = base * (1 - g) + other * g
    kind = rng.integers(0, 3)
    if kind == 1:  # soft vertical stripes (curtain / panels)
        period = src_px * rng.uniform(40, 110)
        stripes = 0.5 + 0.5 * np.sin(sx / period * 2 * math.pi)
        bg *= (0.85 + 0.15 * stripes)[..., None]
    elif kind == 2:  # blurred blobs (bokeh)
        fwd = cv2.invertAffineTransform(inv)
        for _ in range(int(rng.integers(3, 8))):
            c = L.transform_points(rng.uniform(0, SOURCE_FRAME_FACTOR * res, size=(1, 2)), fwd)[0]
            r = float(rng.uniform(0.05, 0.2) * low)
            color = rng.uniform(30, 255, size=3)
            m = np.zeros((low, low), np.float32)
            centre = (round(c[0] / k * paint.SHIFT_SCALE), round(c[1] / k * paint.SHIFT_SCALE))
            cv2.circle(
                m, centre, round(r * paint.SHIFT_SCALE), 1.0, -1, cv2.LINE_AA, paint.SHIFT_BITS
            )
            paint.blend(bg, m, color, 0.6)
    bg = paint.blur(bg.astype(np.float32), 0.8)
    return cv2.resize(bg, (res, res), interpolation=cv2.INTER_LINEAR)


# --- one face ---------------------------------------------------------------------------------


def render_face(
    person: Person, rng: np.random.Generator, resolution: int, index: int = 0
) -> tuple[np.ndarray, dict]:
    """Draw one aligned whole_face image (uint8 BGR) of ``person`` and its DFL metadata."""
    res = int(resolution)
    shape = person_shape(person)
    expr = random_expression(rng)
    shape = {**shape, "lm": apply_expression(shape["lm"], expr)}

    # Pose: rotate in 3-D about the face centre and project orthographically into a virtual
    # source frame with a random scale and position.
    yaw = float(rng.uniform(-MAX_YAW, MAX_YAW))
    pitch = float(rng.uniform(-MAX_PITCH, MAX_PITCH))
    roll = float(rng.uniform(-MAX_ROLL, MAX_ROLL))
    frame = SOURCE_FRAME_FACTOR * res
    src_scale = float(rng.uniform(*SOURCE_SCALE_RANGE)) * res / 256.0
    centre = rng.uniform(0.35, 0.65, size=2) * frame
    to_source = projection(rotation(yaw, pitch, roll), src_scale, centre)

    src_lm = to_source(shape["lm"])
    mat = L.transform_matrix(src_lm, res, FACE_TYPE)
    px = float(np.sqrt(abs(np.linalg.det(mat[:, :2])))) * src_scale  # template unit -> px

    def to_aligned(pts: np.ndarray) -> np.ndarray:
        return L.transform_points(to_source(pts), mat)

    img = _background(res, cv2.invertAffineTransform(mat), rng, src_scale)
    draw_person(img, person, rng, shape, expr, to_aligned, px)
    img += rng.standard_normal(size=img.shape, dtype=np.float32) * np.float32(NOISE_SIGMA)
    out = np.clip(img, 0, 255).astype(np.uint8)
    meta = face_metadata(L.transform_points(src_lm, mat), src_lm, mat, index)
    return out, meta


def projection(
    rot: np.ndarray, scale: float, centre: np.ndarray
) -> Callable[[np.ndarray], np.ndarray]:
    """Template 3-D points -> 2-D pixels: rotate about the face centre, project
    orthographically, scale (template units -> pixels) and move to `centre`."""
    pivot = np.array([0.0, 0.0, 10.0])

    def project(pts: np.ndarray) -> np.ndarray:
        return ((pts - pivot) @ rot.T)[:, :2] * scale + centre

    return project


def face_metadata(
    landmarks: np.ndarray, src_lm: np.ndarray, mat: np.ndarray, index: int
) -> dict[str, Any]:
    """DFL's aligned-face metadata (plain lists): what DFL's extractor stores for a face cut
    from frame ``index + 1`` (``00001.png`` ...) with ``mat`` (frame -> aligned)."""
    x0, y0 = np.floor(src_lm.min(axis=0)).astype(int)
    x1, y1 = np.ceil(src_lm.max(axis=0)).astype(int)
    return {
        "face_type": FACE_TYPE,
        "landmarks": landmarks.astype(np.float32).tolist(),
        "source_filename": f"{index + 1:05d}.png",
        "source_rect": [int(x0), int(y0), int(x1), int(y1)],
        "source_landmarks": src_lm.astype(np.float32).tolist(),
        "image_to_face_mat": np.asarray(mat, np.float64).tolist(),
    }
