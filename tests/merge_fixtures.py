"""Tiny frames and aligned faces for the merge tests, and stand-ins for the model and the engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dfl.data.jpeg_metadata import read_dfl_metadata, write_dfl_jpeg
from dfl.merge.run import Engine

DATA = Path(__file__).parent / "data" / "dfl-merge"
# 68 landmarks of a real frame (400x400) from DFL's fixture, scaled down for 100 px frames
BASE_LANDMARKS = np.asarray(
    read_dfl_metadata(DATA / "aligned" / "00001_0.jpg")["source_landmarks"], np.float32
)
FRAME_PX = 100
FACE_PX = 32  # the stand-in model's resolution


def landmarks(shift: tuple[float, float] = (0.0, 0.0), size: int = FRAME_PX) -> np.ndarray:
    return (BASE_LANDMARKS * (size / 400.0) + np.asarray(shift, np.float32)).astype(np.float32)


def frame_image(i: int, size: tuple[int, int] = (FRAME_PX, FRAME_PX)) -> np.ndarray:
    """A distinct frame: a gradient with a frame-number offset (uint8 BGR)."""
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    image = np.stack([x * 2 % 256, y * 2 % 256, np.full_like(x, 20 * i % 256)], axis=-1)
    return image.astype(np.uint8)


def write_frame(folder: Path, name: str, i: int, size: tuple[int, int] = (FRAME_PX, FRAME_PX)):
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / name), frame_image(i, size))
    return folder / name


def write_aligned(
    folder: Path,
    name: str,
    source: str | None,
    lm: np.ndarray | None = None,
    face_type: str = "whole_face",
) -> Path:
    """An aligned face JPEG with DFL metadata naming its frame (None: no source_filename)."""
    folder.mkdir(parents=True, exist_ok=True)
    lm = landmarks() if lm is None else lm
    meta = {"face_type": face_type, "landmarks": (lm / 2).tolist()}
    if source is not None:
        meta["source_filename"] = source
        meta["source_landmarks"] = lm.tolist()
    write_dfl_jpeg(folder / name, np.full((16, 16, 3), 128, np.uint8), meta)
    return folder / name


def make_workspace(root: Path, n: int = 4, faces: bool = True) -> tuple[Path, Path]:
    """`n` frames 00001.png ... with one face each; returns (frames folder, aligned folder)."""
    frames, aligned = root / "frames", root / "aligned"
    for i in range(1, n + 1):
        write_frame(frames, f"{i:05d}.png", i)
        if faces:
            write_aligned(aligned, f"{i:05d}_0.jpg", f"{i:05d}.png", landmarks((i, 0)))
    aligned.mkdir(parents=True, exist_ok=True)
    return frames, aligned


@dataclass(frozen=True)
class StandInFace:
    resolution: int = FACE_PX
    face_type: str = "whole_face"


@dataclass(frozen=True)
class StandInCrop:
    face: np.ndarray


@dataclass(frozen=True)
class StandInPrediction:
    face: np.ndarray


class StandInPredictor:
    """Predicts the inverted face; counts the faces it saw."""

    def __init__(self, batch_size: int = 2) -> None:
        self.model_face = StandInFace()
        self.batch_size = batch_size
        self.seen = 0
        self.calls = 0

    def predict(self, faces: np.ndarray) -> list[StandInPrediction]:
        assert faces.shape[1:] == (FACE_PX, FACE_PX, 3)
        self.seen += len(faces)
        self.calls += 1
        return [StandInPrediction(1.0 - f) for f in faces]


def stand_in_engine() -> Engine:
    """Crop: the frame resized to the model size. Merge: the frame inverted, mask all ones."""

    def crop(frame, lm, model_face, settings):
        return StandInCrop(cv2.resize(frame, (model_face.resolution,) * 2))

    def merge(frame, faces, settings):
        assert all(len(face) == 3 for face in faces)  # (crop, prediction, motion)
        return 1.0 - frame, np.ones((*frame.shape[:2], 1), np.float32)

    return Engine(crop=crop, merge=merge)
