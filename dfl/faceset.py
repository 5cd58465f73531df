"""A folder of aligned face images (DFL JPGs with metadata, or plain JPG/PNG) as FaceSamples."""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dfl import dflimg
from dfl.landmarks import FACE_TYPES, FULL_FACE, N_LANDMARKS

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
JPEG_MAGIC = b"\xff\xd8"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Bytes read to sniff a file's format and, for PNG, its IHDR size.
SNIFF_BYTES = 32
# Skipped files listed by name in the "no faces" message.
SKIPPED_EXAMPLES = 3
DEFAULT_EYEBROWS_EXPAND_MOD = 1.0

# Skip-reason categories: (singular, plural) wording for summaries.
NOT_IMAGE = "not an image"
UNREADABLE = "unreadable image"
REFUSED = "metadata refused"
DAMAGED = "damaged metadata"
BAD_LANDMARKS = "bad landmarks"
_CATEGORY_WORDS: dict[str, tuple[str, str]] = {
    NOT_IMAGE: ("not an image", "not images"),
    UNREADABLE: ("unreadable image", "unreadable images"),
    REFUSED: ("with refused metadata", "with refused metadata"),
    DAMAGED: ("with damaged metadata", "with damaged metadata"),
    BAD_LANDMARKS: ("with bad landmarks", "with bad landmarks"),
}

_WHAT_TO_DO = (
    "Put aligned face images there (the JPGs from DeepFaceLab's extractor, or plain "
    ".jpg/.png face crops), or run `dfl demo` to make a synthetic faceset."
)


class FacesetError(Exception):
    """A faceset cannot be used (missing folder, no usable faces, unreadable image)."""


@dataclass(frozen=True)
class FaceSample:
    path: Path
    shape: tuple[int, int]  # (h, w) of the stored image
    face_type: str | None  # DFL name ('whole_face', 'full_face', ...); None = plain image
    landmarks: np.ndarray | None  # (68, 2) float32, aligned-image pixels
    eyebrows_expand_mod: float = 1.0
    xseg_mask: bytes | None = None  # encoded PNG/JPG, as DFL stores it


@dataclass
class Faceset:
    """The usable faces of one folder and the files that were skipped, with reasons."""

    folder: Path
    samples: list[FaceSample] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def plain_count(self) -> int:
        """Number of samples without DFL metadata (no landmarks)."""
        return sum(1 for s in self.samples if s.landmarks is None)

    def skipped_summary(self) -> str:
        """Short summary of the skipped files, e.g. '2 skipped: 1 unreadable image, 1 not an
        image'; empty when nothing was skipped."""
        if not self.skipped:
            return ""
        return f"{len(self.skipped)} skipped: {_count_categories(self.skipped)}"


class _Skip(Exception):
    def __init__(self, category: str, detail: str = ""):
        super().__init__(category)
        self.reason = f"{category}: {detail}" if detail else category


def _category(reason: str) -> str:
    return reason.split(":", 1)[0]


def _count_categories(skipped: list[tuple[Path, str]]) -> str:
    counts = Counter(_category(reason) for _, reason in skipped)
    parts = []
    for cat, n in counts.most_common():
        one, many = _CATEGORY_WORDS.get(cat, (cat, cat))
        parts.append(f"{n} {one if n == 1 else many}")
    return ", ".join(parts)


def _decode_shape(data: bytes) -> tuple[int, int]:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise _Skip(UNREADABLE, "OpenCV cannot decode it")
    return int(image.shape[0]), int(image.shape[1])


def _png_shape(head: bytes) -> tuple[int, int] | None:
    if len(head) >= 24 and head[12:16] == b"IHDR":
        w, h = struct.unpack(">II", head[16:24])
        if w > 0 and h > 0:
            return int(h), int(w)
    return None


def _landmarks(value: Any) -> np.ndarray:
    try:
        lm = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise _Skip(BAD_LANDMARKS, "not a list of numbers") from None
    if lm.shape != (N_LANDMARKS, 2):
        raise _Skip(BAD_LANDMARKS, f"shape {lm.shape}, expected (68, 2)")
    if not np.all(np.isfinite(lm)):
        raise _Skip(BAD_LANDMARKS, "not finite")
    if np.ptp(lm, axis=0).min() <= 0:
        raise _Skip(BAD_LANDMARKS, "all points on one line")
    lm.setflags(write=False)
    return lm


def _sample_from_metadata(
    path: Path, shape: tuple[int, int], meta: dict[str, Any] | None
) -> FaceSample:
    if meta is None or meta.get("landmarks") is None:
        return FaceSample(path=path, shape=shape, face_type=None, landmarks=None)
    face_type = meta.get("face_type", FULL_FACE)
    if not isinstance(face_type, str) or face_type.lower() not in FACE_TYPES:
        raise _Skip(DAMAGED, f"unknown face_type {face_type!r}")
    landmarks = _landmarks(meta["landmarks"])
    mod = meta.get("eyebrows_expand_mod", DEFAULT_EYEBROWS_EXPAND_MOD)
    try:
        mod = float(mod) if mod is not None else DEFAULT_EYEBROWS_EXPAND_MOD
    except (TypeError, ValueError):
        raise _Skip(DAMAGED, "eyebrows_expand_mod is not a number") from None
    xseg = meta.get("xseg_mask")
    if isinstance(xseg, np.ndarray):
        xseg = xseg.astype(np.uint8, copy=False).tobytes()
    elif isinstance(xseg, (bytes, bytearray)):
        xseg = bytes(xseg)
    elif xseg is not None:
        raise _Skip(DAMAGED, f"xseg_mask is a {type(xseg).__name__}")
    return FaceSample(
        path=path,
        shape=shape,
        face_type=face_type.lower(),
        landmarks=landmarks,
        eyebrows_expand_mod=mod,
        xseg_mask=xseg or None,
    )


def _load_one(path: Path) -> FaceSample:
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise _Skip(NOT_IMAGE, path.suffix.lower() or "no file extension")
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as exc:
        raise _Skip(UNREADABLE, exc.strerror or str(exc)) from None
    if not head:
        raise _Skip(UNREADABLE, "empty file")
    if head.startswith(JPEG_MAGIC):
        try:
            header = dflimg.read_jpeg_header(path)
        except dflimg.MetadataRefusedError as exc:
            raise _Skip(REFUSED, f"asks for {exc.requested}; nothing in it was run") from None
        except dflimg.NotJpegError as exc:
            raise _Skip(UNREADABLE, exc.reason) from None
        except dflimg.MetadataError as exc:
            raise _Skip(DAMAGED, exc.reason) from None
        shape = header.shape or _decode_shape(path.read_bytes())
        return _sample_from_metadata(path, shape, header.metadata)
    if head.startswith(PNG_MAGIC):
        shape = _png_shape(head)
        if shape is None:
            raise _Skip(UNREADABLE, "broken PNG header")
        return _sample_from_metadata(path, shape, None)
    # Another format under an image name: accept it if OpenCV can decode it.
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _Skip(UNREADABLE, exc.strerror or str(exc)) from None
    try:
        shape = _decode_shape(data)
    except _Skip:
        raise _Skip(UNREADABLE, "not a JPEG or PNG file") from None
    return _sample_from_metadata(path, shape, None)


def load_faceset(folder: str | Path, progress: Callable[[int, int], None] | None = None) -> Faceset:
    """Load the faces of ``folder`` (non-recursive, sorted by name).

    Reads only file headers (JPEG segments up to the scan, the PNG IHDR). Files that cannot be
    used are skipped with a reason. Raises FacesetError for a missing folder or one without any
    usable face. ``progress(done, total)`` is called after each file.
    """
    folder = Path(folder)
    if not folder.exists():
        raise FacesetError(f"faceset folder not found: {folder}. {_WHAT_TO_DO}")
    if not folder.is_dir():
        raise FacesetError(f"faceset path is not a folder: {folder}. {_WHAT_TO_DO}")
    try:
        files = sorted((p for p in folder.iterdir() if p.is_file()), key=lambda p: p.name)
    except OSError as exc:
        raise FacesetError(f"cannot list the faceset folder {folder}: {exc}") from None
    faceset = Faceset(folder=folder)
    total = len(files)
    for i, path in enumerate(files):
        try:
            faceset.samples.append(_load_one(path))
        except _Skip as skip:
            faceset.skipped.append((path, skip.reason))
        if progress is not None:
            progress(i + 1, total)
    if not faceset.samples:
        raise FacesetError(_no_faces_message(folder, faceset.skipped))
    return faceset


def _no_faces_message(folder: Path, skipped: list[tuple[Path, str]]) -> str:
    if not skipped:
        return f"no faces in {folder}: the folder is empty. {_WHAT_TO_DO}"
    n = len(skipped)
    examples = "; ".join(f"{p.name}: {reason}" for p, reason in skipped[:SKIPPED_EXAMPLES])
    more = f"; and {n - SKIPPED_EXAMPLES} more" if n > SKIPPED_EXAMPLES else ""
    files = "file" if n == 1 else "files"
    return (
        f"no faces in {folder}: {n} {files} skipped ({_count_categories(skipped)}). "
        f"For example {examples}{more}. {_WHAT_TO_DO}"
    )


def read_image(sample: FaceSample | str | Path) -> np.ndarray:
    """Decode a face image as uint8 BGR (h, w, 3); grey is expanded, alpha dropped.

    Works with non-ASCII paths on Windows (reads the bytes with numpy, decodes with OpenCV).
    Raises FacesetError naming the file when it cannot be read.
    """
    path = Path(sample.path if isinstance(sample, FaceSample) else sample)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise FacesetError(f"cannot read the face image {path}: {exc.strerror or exc}") from None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise FacesetError(f"cannot read the face image {path}: the file is not a readable image")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] in (1, 2):  # grey, grey + alpha
        image = cv2.cvtColor(image[..., 0], cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = image[..., :3]
    return np.ascontiguousarray(image)
