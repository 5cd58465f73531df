"""Frames and the aligned faces that belong to them, paired as DFL's mainscripts/Merger.py does.

Each aligned face's DFL metadata names its frame (`source_filename`) and gives its 68 landmarks
in that frame's pixels (`source_landmarks`); faces are keyed by the frame's file stem. A frame
without faces is still a frame (written unchanged); several faces in one frame are all merged.
Differences from DFL (docs/merge-run.md): frames are sorted naturally (`frame2` before `frame10`),
unusable aligned files and faces without a frame are reported instead of skipped silently, and
motion vectors are tracked per face, so frames with several faces keep their motion blur.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dfl.data import jpeg_metadata
from dfl.data.landmarks import FULL_FACE, N_LANDMARKS, transform_matrix, transform_points
from dfl.data.pak import PAK_FILENAME, PakError, read_pak
from dfl.errors import UserError

FRAME_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff"})  # DFL's image list
ALIGNED_SUFFIXES = frozenset({".jpg", ".jpeg"})  # aligned faces are DFL JPEGs
MOTION_CROP_PX = 256  # DFL measures motion in a 256 px full-face crop ...
MOTION_POINT = (MOTION_CROP_PX // 2 - 1.0, MOTION_CROP_PX // 2 - 1.0)  # ... at its centre pixel

NO_METADATA = "no DFL metadata (not an aligned face written by an extractor)"
NO_SOURCE = (
    "no source_filename in its metadata: it does not say which frame it was cut from "
    "(re-extract the dst faces from the frames)"
)
NO_SOURCE_LANDMARKS = "no usable source_landmarks in its metadata (re-extract the dst faces)"


class MergeInputError(UserError):
    """Frames or aligned faces that cannot be merged; the message says what to do."""


@dataclass(frozen=True)
class AlignedFace:
    """One aligned face: where it is stored and where it lies in its frame."""

    path: Path  # the aligned file (or `<faceset.pak>/<name>` inside a pak)
    source_name: str  # the frame's file name as the metadata stores it
    landmarks: np.ndarray  # (68, 2) float32, frame pixels
    face_type: str | None  # the aligned image's face type (None when not stored)


Motion = tuple[float, float]  # (power in frame pixels over two frame intervals, angle in degrees)


@dataclass
class FrameFaces:
    """One frame and its faces in aligned-file order, with one motion vector per face."""

    path: Path
    faces: list[AlignedFace] = field(default_factory=list)
    motion: list[Motion | None] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class Pairing:
    """What pair_frames found: the frames to merge and every problem worth telling the user."""

    frames: list[FrameFaces]
    orphans: list[AlignedFace] = field(default_factory=list)  # their frame is not in the input
    unusable: list[tuple[Path, str]] = field(default_factory=list)  # aligned files, why not used
    same_stem: list[list[Path]] = field(default_factory=list)  # frames that share an output name
    pak: Path | None = None  # the faceset.pak the faces came from, if any

    @property
    def faces(self) -> int:
        return sum(len(frame.faces) for frame in self.frames)

    @property
    def shared(self) -> list[FrameFaces]:
        """Frames with more than one face."""
        return [frame for frame in self.frames if len(frame.faces) > 1]

    @property
    def face_types(self) -> set[str]:
        return {f.face_type for frame in self.frames for f in frame.faces if f.face_type}


def natural_key(name: str) -> list[Any]:
    """Sort key putting `frame2` before `frame10` (digit runs compare as numbers)."""
    parts = re.split(r"(\d+)", name.lower())
    return [int(part) if i % 2 else part for i, part in enumerate(parts)]


def _listing(folder: Path, what: str) -> list[Path]:
    if not folder.exists():
        raise MergeInputError(f"{what} not found: {folder}")
    if not folder.is_dir():
        raise MergeInputError(f"{what} is not a folder: {folder}")
    try:
        files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    except OSError as exc:
        raise MergeInputError(f"cannot list the {what} {folder}: {exc}") from None
    return sorted(files, key=lambda p: natural_key(p.name))


def list_frames(folder: Path) -> list[Path]:
    """The frame images of `folder` (not recursive), in natural order."""
    return [p for p in _listing(folder, "frame folder") if p.suffix.lower() in FRAME_SUFFIXES]


def _face_from_metadata(path: Path, meta: dict[str, Any] | None) -> AlignedFace:
    """The face a metadata dict describes; ValueError with the reason when it cannot be used."""
    if meta is None:
        raise ValueError(NO_METADATA)
    source = meta.get("source_filename")
    if not isinstance(source, str) or not source.strip():
        raise ValueError(NO_SOURCE)
    try:
        landmarks = np.asarray(meta.get("source_landmarks"), dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(NO_SOURCE_LANDMARKS) from None
    if landmarks.shape != (N_LANDMARKS, 2) or not np.all(np.isfinite(landmarks)):
        raise ValueError(NO_SOURCE_LANDMARKS)
    face_type = meta.get("face_type")
    face_type = face_type.lower() if isinstance(face_type, str) else None
    return AlignedFace(path, source.strip(), landmarks, face_type)


def _read_file(path: Path) -> AlignedFace:
    try:
        meta = jpeg_metadata.read_dfl_metadata(path)
    except jpeg_metadata.MetadataRefusedError as exc:
        raise ValueError(
            f"metadata asks for {exc.requested}; refused, nothing in it was run"
        ) from None
    except jpeg_metadata.MetadataError as exc:
        raise ValueError(exc.reason) from None
    except OSError as exc:
        raise ValueError(f"cannot read it: {exc.strerror or exc}") from None
    return _face_from_metadata(path, meta)


def _read_pak(pak: Path) -> Iterator[tuple[Path, AlignedFace | str]]:
    """Each entry of a pak as (its path, its face or the reason it cannot be used)."""
    for entry in read_pak(pak).entries:
        path = pak / entry.name
        if entry.image is None:
            yield path, entry.image_problem
            continue
        try:
            header = jpeg_metadata.read_jpeg_header_bytes(entry.image.read(), path)
            yield path, _face_from_metadata(path, header.metadata)
        except jpeg_metadata.MetadataError as exc:
            yield path, exc.reason
        except (OSError, ValueError) as exc:
            yield path, str(exc)


def collect_aligned(folder: Path) -> tuple[list[AlignedFace], list[tuple[Path, str]], Path | None]:
    """(usable faces in file order, unusable files with reasons, the pak used or None).

    A `faceset.pak` in the folder wins over the loose files, as in DFL."""
    files = _listing(folder, "aligned folder")
    faces: list[AlignedFace] = []
    unusable: list[tuple[Path, str]] = []
    pak = next((p for p in files if p.name.lower() == PAK_FILENAME), None)
    if pak is not None:
        try:
            for path, found in _read_pak(pak):
                if isinstance(found, str):
                    unusable.append((path, found))
                else:
                    faces.append(found)
            return faces, unusable, pak
        except PakError as exc:
            unusable.append((pak, f"unusable packed faceset: {exc.reason}"))
    for path in files:
        suffix = path.suffix.lower()
        if path == pak or suffix not in ALIGNED_SUFFIXES:
            if suffix in FRAME_SUFFIXES:
                unusable.append((path, "not a JPEG: aligned faces are DFL JPEG files"))
            continue
        try:
            faces.append(_read_file(path))
        except ValueError as exc:
            unusable.append((path, str(exc)))
    return faces, unusable, None


def _centre(landmarks: np.ndarray) -> np.ndarray | None:
    """The frame point DFL tracks for motion blur: the centre of the 256 px full-face crop."""
    try:
        mat = transform_matrix(landmarks, MOTION_CROP_PX, FULL_FACE)
    except ValueError:
        return None
    return transform_points(np.array([MOTION_POINT]), mat, invert=True)[0]


def _nearest(centres: list[np.ndarray | None], point: np.ndarray) -> np.ndarray | None:
    known = [c for c in centres if c is not None]
    if not known:
        return None
    return min(known, key=lambda c: float(np.sum((c - point) ** 2)))


def add_motion(frames: list[FrameFaces]) -> None:
    """Set each face's motion vector from the neighbouring frames (DFL Merger.py): the vector
    from the previous frame's face centre to the next frame's (the first and last frames use
    themselves as the missing neighbour); None when a neighbour has no face. Several faces: each
    follows the nearest face of each neighbour (DFL turned motion off for the whole video)."""
    centres = [[_centre(face.landmarks) for face in frame.faces] for frame in frames]
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        frame.motion = []
        for centre in centres[i]:
            prev = _nearest(centres[max(0, i - 1)], centre) if centre is not None else None
            succ = _nearest(centres[min(i + 1, last)], centre) if centre is not None else None
            if prev is None or succ is None:
                frame.motion.append(None)
                continue
            vector = succ - prev
            power = float(np.hypot(vector[0], vector[1]))
            degrees = -math.degrees(math.atan2(vector[1], vector[0])) if power else 0.0
            frame.motion.append((power, degrees))


def _same_stems(frames: list[Path]) -> tuple[list[Path], list[list[Path]]]:
    """Frames keyed by stem: the first of each stem is kept; groups sharing a stem returned."""
    groups: dict[str, list[Path]] = defaultdict(list)
    for path in frames:
        groups[path.stem].append(path)
    kept = [group[0] for group in groups.values()]
    return sorted(kept, key=lambda p: natural_key(p.name)), [
        g for g in groups.values() if len(g) > 1
    ]


def pair_frames(input_dir: Path, aligned_dir: Path) -> Pairing:
    """The frames of `input_dir` with their faces from `aligned_dir`.

    MergeInputError when there are no frames, or when no aligned face can be used."""
    paths = list_frames(input_dir)
    if not paths:
        suffixes = " ".join(sorted(FRAME_SUFFIXES))
        raise MergeInputError(f"no frames to merge in {input_dir} (images: {suffixes})")
    faces, unusable, pak = collect_aligned(aligned_dir)
    if not faces:
        raise MergeInputError(_no_faces_message(aligned_dir, unusable))
    kept, same_stem = _same_stems(paths)
    frames = {path.stem: FrameFaces(path) for path in kept}
    orphans = []
    for face in faces:
        frame = frames.get(Path(face.source_name.replace("\\", "/")).stem)
        if frame is None:
            orphans.append(face)
        else:
            frame.faces.append(face)
    pairing = Pairing(list(frames.values()), orphans, unusable, same_stem, pak)
    add_motion(pairing.frames)
    return pairing


def _no_faces_message(folder: Path, unusable: list[tuple[Path, str]]) -> str:
    if not unusable:
        return f"no aligned faces in {folder}: extract the faces of the dst frames first"
    reasons: dict[str, list[str]] = defaultdict(list)
    for path, reason in unusable:
        reasons[reason].append(path.name)
    lines = [f"no usable aligned faces in {folder}:"]
    for reason, names in reasons.items():
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        lines.append(f"  {shown}: {reason}")
    return "\n".join(lines)
