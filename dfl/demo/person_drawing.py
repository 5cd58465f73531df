"""Painting one demo person over an image, back to front: hair behind the head, shoulders, neck
and ears, the lit skin, cheeks, nose, mouth, eyes, brows and the hair in front. Every random
draw happens in a fixed order, so a seed always gives the same picture (docs/demo.md)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from dfl.data import landmarks as L
from dfl.demo.paint import blend, blur, disc, jitter, line, polygon_mask, resample, shade
from dfl.demo.people import Person

Projection = Callable[[np.ndarray], np.ndarray]

EAR_ANGLES = np.linspace(0.0, 2.0 * math.pi, 16, endpoint=False)
# Template points (x, y, z) of the long hair falling behind the head to the shoulders.
LONG_HAIR_BACK = np.array([[95.0, 110.0, 40.0], [-95.0, 110.0, 40.0]])
# One side's long strand in front of the ear, template points; mirrored for the other side.
LONG_HAIR_STRAND = np.array(
    [
        [60.0, -95.0, 30.0],
        [100.0, -60.0, 40.0],
        [98.0, 40.0, 40.0],
        [92.0, 105.0, 40.0],
        [80.0, 105.0, 40.0],
        [78.0, 20.0, 40.0],
        [74.0, -55.0, 40.0],
    ]
)
HAIR_STRANDS = 28  # texture curves between the skull outline and the hairline
HAIR_CURVE_POINTS = 24
LIGHT_SHADING = 0.24  # brightness swing of the side light across the image


def draw_person(
    img: np.ndarray,
    person: Person,
    rng: np.random.Generator,
    shape: dict[str, np.ndarray],
    expr: dict[str, float],
    project: Projection,
    px: float,
) -> None:
    """Draw ``person`` over ``img`` (float32 BGR, in place): ``shape`` holds the 3-D template
    points, ``project`` maps them to image pixels and ``px`` is pixels per template unit."""
    P = {k: project(v) for k, v in shape.items()}
    lm = P["lm"]
    skin = jitter(person.skin, rng, 4.0)
    hair = jitter(person.hair, rng, 5.0)
    neck = _draw_body(img, person, rng, P, project, px, skin, hair)
    face, light = _draw_skin(img, rng, P, neck, px, skin)
    _draw_cheeks(img, person, lm, face, px)
    _draw_nose(img, lm, face, light, px, skin)
    _draw_mouth(img, person, rng, lm, expr, px)
    _draw_eyes(img, person, rng, lm, expr, px, skin)
    _draw_brows(img, person, lm, px)
    _draw_hair(img, person, rng, P, project, px, hair)


def _draw_body(
    img: np.ndarray,
    person: Person,
    rng: np.random.Generator,
    P: dict[str, np.ndarray],
    project: Projection,
    px: float,
    skin: tuple[float, float, float],
    hair: tuple[float, float, float],
) -> np.ndarray:
    """Hair behind the head (long styles reach the shoulders), shoulders, neck and ears; returns
    the neck's mask."""
    hw = img.shape[:2]
    if person.hair_style == "long":
        back = np.vstack([P["skull"], project(LONG_HAIR_BACK)])
        blend(img, polygon_mask(hw, back), shade(hair, 0.8))
    blend(img, polygon_mask(hw, P["shoulders"]), jitter(person.shirt, rng, 12.0))
    neck = polygon_mask(hw, P["neck"])
    blend(img, neck, shade(skin, 0.82))
    for c in P["ears"]:  # ears first, the face goes over them
        ear = c + px * np.stack([9 * np.cos(EAR_ANGLES), 19 * np.sin(EAR_ANGLES)], axis=1)
        blend(img, polygon_mask(hw, ear), shade(skin, 0.9))
    return neck


def _draw_skin(
    img: np.ndarray,
    rng: np.random.Generator,
    P: dict[str, np.ndarray],
    neck: np.ndarray,
    px: float,
    skin: tuple[float, float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """The jaw's shadow on the neck, then the skin with soft edge shading and a random side
    light; returns (the face mask, the light direction)."""
    hw = img.shape[:2]
    outline = np.vstack([P["lm"][L.JAW], P["top"][::-1][1:-1]])
    face = polygon_mask(hw, outline)
    chin_shadow = blur(np.roll(face, round(6 * px), axis=0) * neck, 4 * px)
    blend(img, chin_shadow, (0, 0, 0), 0.35)
    light = np.array([rng.uniform(-1, 1), -0.6])
    ramp_x = np.arange(hw[1], dtype=np.float32) / hw[1] - 0.5
    ramp_y = np.arange(hw[0], dtype=np.float32) / hw[0] - 0.5
    lit = 1.0 + LIGHT_SHADING * (ramp_x[None, :] * light[0] + ramp_y[:, None] * light[1])
    edge = blur(face, 10 * px)
    skin_layer = np.asarray(skin, np.float32) * (0.72 + 0.28 * edge * lit)[..., None]
    f3 = face[..., None]
    img *= 1.0 - f3
    img += f3 * skin_layer
    return face, light


def _draw_cheeks(
    img: np.ndarray, person: Person, lm: np.ndarray, face: np.ndarray, px: float
) -> None:
    hw = img.shape[:2]
    for a, b in ((2, 31), (14, 35)):
        c = 0.5 * (lm[a] + lm[b]) + np.array([0.0, 6 * px])
        blend(img, blur(disc(hw, c, 13 * px), 7 * px) * face, person.blush, 0.35)


def _draw_nose(
    img: np.ndarray,
    lm: np.ndarray,
    face: np.ndarray,
    light: np.ndarray,
    px: float,
    skin: tuple[float, float, float],
) -> None:
    """A soft shadow beside the ridge (away from the light), the nostrils' line and holes."""
    hw = img.shape[:2]
    side = 1.0 if light[0] < 0 else -1.0
    ridge = lm[27:31] + np.array([side * 4.5 * px, 0.0])
    m = np.zeros(hw, np.float32)
    line(m, ridge, 1.0, 3 * px)
    blend(img, blur(m, 2.5 * px) * face, shade(skin, 0.6), 0.6)
    m = np.zeros(hw, np.float32)
    line(m, lm[31:36], 1.0, 2.5 * px)
    blend(img, blur(m, 1.5 * px), shade(skin, 0.55), 0.8)
    for n in (32, 34):
        blend(img, disc(hw, lm[n], 2 * px), shade(skin, 0.4))


def _draw_mouth(
    img: np.ndarray,
    person: Person,
    rng: np.random.Generator,
    lm: np.ndarray,
    expr: dict[str, float],
    px: float,
) -> None:
    """Lips, the inner mouth with teeth when open, the line between the lips."""
    hw = img.shape[:2]
    lips = jitter(person.lips, rng, 5.0)
    blend(img, polygon_mask(hw, lm[48:60]), lips)
    upper = lm[[48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60]]
    blend(img, polygon_mask(hw, upper), shade(lips, 0.8))
    if expr["open"] > 0.05:
        inner = polygon_mask(hw, lm[60:68])
        blend(img, inner, (35, 25, 60))
        teeth = lm[[60, 61, 62, 63, 64]] + np.array([0.0, 3.5 * px * expr["open"] + 1])
        tpoly = np.vstack([lm[[60, 61, 62, 63, 64]], teeth[::-1]])
        blend(img, polygon_mask(hw, tpoly) * inner, (225, 235, 240))
    line(img, lm[[48, *range(60, 65), 54]], shade(lips, 0.45), 1.6 * px)


def _draw_eyes(
    img: np.ndarray,
    person: Person,
    rng: np.random.Generator,
    lm: np.ndarray,
    expr: dict[str, float],
    px: float,
    skin: tuple[float, float, float],
) -> None:
    """White, iris and pupil clipped to the lids, a highlight, lid lines."""
    hw = img.shape[:2]
    iris = jitter(person.iris, rng, 6.0)
    for eye in (L.RIGHT_EYE, L.LEFT_EYE):
        pts = lm[eye]
        white = polygon_mask(hw, pts)
        blend(img, white, (235, 240, 245))
        width = float(np.linalg.norm(pts[3] - pts[0]))
        c = pts.mean(axis=0) + np.array([expr["gaze_x"], expr["gaze_y"]]) * width
        r = 0.27 * width
        blend(img, disc(hw, c, r) * white, iris)
        blend(img, disc(hw, c, 0.45 * r) * white, (15, 15, 15))
        blend(img, disc(hw, c - 0.35 * r, 0.2 * r) * white, (255, 255, 255), 0.9)
        line(img, pts[[0, 1, 2, 3]], (25, 20, 20), 1.8 * px)
        line(img, pts[[3, 4, 5, 0]], shade(skin, 0.6), 1.0 * px)


def _draw_brows(img: np.ndarray, person: Person, lm: np.ndarray, px: float) -> None:
    """A thick stroke each, thinning toward the tail."""
    hw = img.shape[:2]
    for brow in (L.RIGHT_BROW, L.LEFT_BROW):
        pts = lm[brow] if brow == L.RIGHT_BROW else lm[brow][::-1]
        m = np.zeros(hw, np.float32)
        for k in range(4):
            t = person.brow_thickness * px * (1.0 - 0.18 * k)
            line(m, pts[k : k + 2], 1.0, t)
        blend(img, blur(m, 0.6 * px), person.brow, 0.95)


def _draw_hair(
    img: np.ndarray,
    person: Person,
    rng: np.random.Generator,
    P: dict[str, np.ndarray],
    project: Projection,
    px: float,
    hair: tuple[float, float, float],
) -> None:
    """Hair over the forehead (and long strands beside the face), textured with strands that
    follow the head: curves between the skull outline and the hairline."""
    hw = img.shape[:2]
    skull, hairline = P["skull"], P["hairline"]
    hmask = polygon_mask(hw, np.vstack([skull, hairline[::-1]]))
    if person.hair_style == "long":
        for sgn in (-1.0, 1.0):
            strand = LONG_HAIR_STRAND * np.array([sgn, 1.0, 1.0])
            hmask = np.maximum(hmask, polygon_mask(hw, project(strand)))
    tex = np.zeros(hw, np.float32)
    outer, inner = resample(skull, HAIR_CURVE_POINTS), resample(hairline, HAIR_CURVE_POINTS)
    for f in rng.uniform(0.0, 1.0, size=HAIR_STRANDS):
        lo, hi = sorted(rng.uniform(0.0, 1.0, size=2) * (HAIR_CURVE_POINTS - 1))
        curve = (outer * (1 - f) + inner * f)[int(lo) : int(hi) + 2]
        curve = curve + rng.normal(0, 1.0 * px, size=curve.shape)
        line(tex, curve, float(rng.uniform(-1, 1)), 1.3 * px)
    hair_layer = np.asarray(hair, np.float32) * (0.85 + 0.25 * blur(tex, 0.7 * px))[..., None]
    hair_layer *= (0.75 + 0.25 * blur(hmask, 6 * px))[..., None]
    h3 = hmask[..., None]
    img *= 1.0 - h3
    img += h3 * hair_layer
