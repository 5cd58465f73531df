"""The two demo identities: everything that makes each synthetic person look like itself."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Person:
    """Everything that makes one synthetic identity look like itself (colours BGR 0-255)."""

    name: str
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    brow: tuple[int, int, int]
    iris: tuple[int, int, int]
    lips: tuple[int, int, int]
    blush: tuple[int, int, int]
    shirt: tuple[int, int, int]
    hair_style: str  # 'short' or 'long'
    face_width: float  # x scale of the face outline
    jaw_round: float  # extra width of the lower jaw (template units)
    chin_drop: float  # chin lengthening (template units)
    eye_size: float
    brow_thickness: float  # template units
    brow_raise: float  # template units
    brow_arch: float  # template units
    nose_width: float
    nose_length: float  # template units
    mouth_width: float
    lip_thickness: float  # template units
    hairline: float  # template y of the hairline at the centre
    hair_volume: float  # how far the hair stands out around the skull (template units)
    hair_part: float  # hairline tilt: how much lower it sits on the left (template units)


PERSON_SRC = Person(
    name="ada",
    skin=(150, 185, 232),
    hair=(30, 28, 40),
    brow=(30, 30, 45),
    iris=(170, 110, 40),
    lips=(90, 70, 190),
    blush=(120, 140, 235),
    shirt=(110, 60, 30),
    hair_style="short",
    face_width=0.92,
    jaw_round=-4.0,
    chin_drop=6.0,
    eye_size=1.05,
    brow_thickness=3.0,
    brow_raise=2.0,
    brow_arch=4.0,
    nose_width=0.85,
    nose_length=2.0,
    mouth_width=0.9,
    lip_thickness=1.5,
    hairline=-100.0,
    hair_volume=14.0,
    hair_part=14.0,
)

PERSON_DST = Person(
    name="bo",
    skin=(75, 110, 165),
    hair=(50, 170, 220),
    brow=(40, 120, 170),
    iris=(30, 60, 90),
    lips=(90, 60, 140),
    blush=(80, 100, 210),
    shirt=(60, 140, 60),
    hair_style="long",
    face_width=1.06,
    jaw_round=6.0,
    chin_drop=-4.0,
    eye_size=0.9,
    brow_thickness=5.5,
    brow_raise=-2.0,
    brow_arch=0.5,
    nose_width=1.25,
    nose_length=-1.0,
    mouth_width=1.12,
    lip_thickness=3.5,
    hairline=-92.0,
    hair_volume=20.0,
    hair_part=0.0,
)

PERSONS = (PERSON_SRC, PERSON_DST)
