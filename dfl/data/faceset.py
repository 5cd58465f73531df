"""A folder of aligned face images (DFL JPGs with metadata, plain JPG/PNG, or DFL's packed
faceset.pak) as FaceSamples."""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dfl.data import jpeg_metadata
from dfl.data.landmarks import FACE_TYPE_RANK, FACE_TYPES, FULL_FACE, N_LANDMARKS
from dfl.data.pak import PAK_FILENAME, PackedImage, PakEntry, PakError, PakRefusedError, read_pak

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
UNUSABLE_PAK = "unusable packed faceset"
BESIDE_PAK = "ignored beside faceset.pak"
_CATEGORY_WORDS: dict[str, tuple[str, str]] = {
    NOT_IMAGE: ("not an image", "not images"),
    UNREADABLE: ("unreadable image", "unreadable images"),
    REFUSED: ("with refused metadata", "with refused metadata"),
    DAMAGED: ("with damaged metadata", "with damaged metadata"),
    BAD_LANDMARKS: ("with bad landmarks", "with bad landmarks"),
    UNUSABLE_PAK: ("unusable faceset.pak", "unusable faceset.pak files"),
    BESIDE_PAK: ("image ignored beside faceset.pak", "images ignored beside faceset.pak"),
}
# DFL's FaceType enum codes (as stored in faceset.pak) -> names.
_FACE_TYPE_BY_CODE: dict[int, str] = {code: name for name, code in FACE_TYPE_RANK.items()}

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
    packed: PackedImage | None = None  # where the image lies inside a faceset.pak, if it does


@dataclass
class Faceset:
    """The usable faces of one folder and the files that were skipped, with reasons.

    When the folder holds a usable ``faceset.pak``, the faces are its entries (``pak`` names it;
    each sample's path is ``<pak>/<file name>``) and loose images beside it are not read.
    """

    folder: Path
    samples: list[FaceSample] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    pak: Path | None = None

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

    def refused_names(self) -> list[str]:
        """File names (pak entries: ``<pak>/<entry>``) whose metadata was refused, in order."""
        return [_display_name(p, self.folder) for p, r in self.skipped if _category(r) == REFUSED]

    def skipped_report(self) -> str:
        """Every skipped file with its reason, one ``name: reason`` line each (for a log file)."""
        return "".join(f"{_display_name(p, self.folder)}: {r}\n" for p, r in self.skipped)


class _Skip(Exception):
    def __init__(self, category: str, detail: str = ""):
        super().__init__(category)
        self.reason = f"{category}: {detail}" if detail else category


def _display_name(path: Path, folder: Path) -> str:
    """The path relative to the faceset folder (a pak entry keeps its ``faceset.pak/`` part)."""
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return str(path)


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
            header = jpeg_metadata.read_jpeg_header(path)
        except jpeg_metadata.MetadataRefusedError as exc:
            raise _Skip(REFUSED, f"asks for {exc.requested}; nothing in it was run") from None
        except jpeg_metadata.NotJpegError as exc:
            raise _Skip(UNREADABLE, exc.reason) from None
        except jpeg_metadata.MetadataError as exc:
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

    As in DFL, a ``faceset.pak`` in the folder wins: its entries are the faces and the images
    beside it are skipped as ignored. A pak that cannot be used (refused or damaged sample list,
    unknown version, truncated) is skipped with its reason and the loose images are loaded
    instead. Reads only file headers (JPEG segments up to the scan, the PNG IHDR; for a pak its
    sample list and offset table). Files and pak entries that cannot be used are skipped with a
    reason. Raises FacesetError for a missing folder or one without any usable face.
    ``progress(done, total)`` is called after each file or pak entry.
    """
    folder = Path(folder)
    if not folder.exists():
        raise FacesetError(f"faceset folder not found: {folder}. {_WHAT_TO_DO}")
    if not folder.is_dir():
        raise FacesetError(f"faceset path is not a folder: {folder}. {_WHAT_TO_DO}")
    try:
        # Hidden files (.gitkeep, .DS_Store) are not faces and not worth reporting.
        files = sorted(
            (p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")),
            key=lambda p: p.name,
        )
    except OSError as exc:
        raise FacesetError(f"cannot list the faceset folder {folder}: {exc}") from None
    faceset = Faceset(folder=folder)
    pak_path = next((p for p in files if p.name.lower() == PAK_FILENAME), None)
    loose = [p for p in files if p != pak_path]
    if pak_path is not None:
        try:
            pak = read_pak(pak_path)
        except PakRefusedError as exc:
            reason = f"{REFUSED}: its sample list asks for {exc.requested}; nothing in it was run"
            faceset.skipped.append((pak_path, reason))
        except PakError as exc:
            faceset.skipped.append((pak_path, f"{UNUSABLE_PAK}: {exc.reason}"))
        else:
            faceset.pak = pak_path
            _load_pak_entries(faceset, pak_path, pak.entries, len(loose), progress)
            for path in loose:  # DFL does not look at them
                suffix = path.suffix.lower()
                if suffix in IMAGE_SUFFIXES:
                    faceset.skipped.append((path, BESIDE_PAK))
                else:
                    faceset.skipped.append((path, f"{NOT_IMAGE}: {suffix or 'no file extension'}"))
            if progress is not None:
                progress(len(pak.entries) + len(loose), len(pak.entries) + len(loose))
            loose = []
    total = len(loose)
    for i, path in enumerate(loose):
        try:
            faceset.samples.append(_load_one(path))
        except _Skip as skip:
            faceset.skipped.append((path, skip.reason))
        if progress is not None:
            progress(i + 1, total)
    if not faceset.samples:
        raise FacesetError(_no_faces_message(folder, faceset.skipped))
    return faceset


def _load_pak_entries(
    faceset: Faceset,
    pak_path: Path,
    entries: list[PakEntry],
    extra: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Append a pak's entries as samples (path ``<pak>/<name>``) or as skipped with reasons."""
    used: set[str] = set()
    total = len(entries) + extra
    for i, entry in enumerate(entries):
        name = entry.name
        if name in used:  # keep paths (the image-cache keys) unique
            name = f"{name}#{entry.index}"
        used.add(name)
        path = pak_path / name
        try:
            faceset.samples.append(_sample_from_pak_entry(path, entry))
        except _Skip as skip:
            faceset.skipped.append((path, skip.reason))
        if progress is not None:
            progress(i + 1, total)


def _pak_face_type(value: Any) -> Any:
    if value is None:
        return FULL_FACE  # as DFL reads a missing face type
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if int(value) not in _FACE_TYPE_BY_CODE:
            raise _Skip(DAMAGED, f"unknown face_type code {int(value)}")
        return _FACE_TYPE_BY_CODE[int(value)]
    return value


def _pak_shape(value: Any) -> tuple[int, int] | None:
    if isinstance(value, (tuple, list)) and len(value) >= 2:
        h, w = value[0], value[1]
        is_int = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (h, w))
        if is_int and h > 0 and w > 0:
            return int(h), int(w)
    return None


def _pak_xseg(config: dict[str, Any]) -> Any:
    """The entry's XSeg mask as DFL keeps it: an encoded buffer (or None)."""
    compressed = config.get("xseg_mask_compressed")
    if compressed is not None:
        return compressed
    raw = config.get("xseg_mask")  # an uncompressed mask array; DFL packs it compressed
    if isinstance(raw, np.ndarray) and raw.ndim >= 2 and raw.dtype.kind in "biuf":
        mask = raw.reshape(raw.shape[0], raw.shape[1], -1)[..., 0]
        if mask.dtype.kind == "f":
            mask = mask * 255.0
        ok, enc = cv2.imencode(".png", np.clip(mask, 0, 255).astype(np.uint8))
        if not ok:
            raise _Skip(DAMAGED, "its xseg_mask cannot be encoded")
        return enc
    return raw


def _sample_from_pak_entry(path: Path, entry: PakEntry) -> FaceSample:
    config = entry.config
    if not isinstance(config, dict):
        raise _Skip(DAMAGED, f"its sample config is a {type(config).__name__}, not a dict")
    if entry.image is None:
        raise _Skip(UNREADABLE, entry.image_problem)
    meta = {
        "face_type": _pak_face_type(config.get("face_type")),
        "landmarks": config.get("landmarks"),
        "eyebrows_expand_mod": config.get("eyebrows_expand_mod"),
        "xseg_mask": _pak_xseg(config),
    }
    shape = _pak_shape(config.get("shape"))
    if shape is None:  # not in the config: read it from the image's header
        try:
            data = entry.image.read()
        except OSError as exc:
            raise _Skip(UNREADABLE, str(exc)) from None
        try:
            shape = jpeg_metadata.read_jpeg_header_bytes(data, path).shape
        except jpeg_metadata.MetadataError:
            shape = None
        shape = shape or _decode_shape(data)
    return replace(_sample_from_metadata(path, shape, meta), packed=entry.image)


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
