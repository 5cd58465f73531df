"""DFL aligned-face JPEGs: APP15 metadata read through an allow-list unpickler, and written back."""

from __future__ import annotations

import io
import os
import pickle
import struct
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

# JPEG markers (the byte after 0xFF).
SOI = 0xD8
EOI = 0xD9
SOS = 0xDA
APP0 = 0xE0
APP15 = 0xEF
APPN_FIRST, APPN_LAST = 0xE0, 0xEF
# Markers that stand alone (no length field): TEM and RST0-7.
STANDALONE_MARKERS = frozenset([0x01, *range(0xD0, 0xD8)])
# Start-of-frame markers that carry the image size (not DHT C4, JPG C8, DAC CC).
SOF_MARKERS = frozenset(
    [*range(0xC0, 0xC4), *range(0xC5, 0xC8), *range(0xC9, 0xCC), 0xCD, 0xCE, 0xCF]
)

# A segment's u16 length counts itself, so a payload holds at most 65535 - 2 bytes.
MAX_SEGMENT_PAYLOAD_BYTES = 65533
# Bytes read per step while walking a file's header segments.
HEADER_READ_BYTES = 1 << 17
PICKLE_PROTOCOL = 4
DEFAULT_JPEG_QUALITY = 95


class MetadataError(ValueError):
    """A face image's DFL metadata cannot be read (or written); the message names the file."""

    def __init__(self, path: str | os.PathLike[str], reason: str, message: str | None = None):
        self.path = Path(path)
        self.reason = reason
        super().__init__(message or f"cannot read the DFL metadata of {self.path}: {reason}")


class MetadataRefusedError(MetadataError):
    """The metadata pickle asks for an object outside the allow-list; nothing in it was run."""

    def __init__(self, path: str | os.PathLike[str], requested: str):
        self.requested = requested
        super().__init__(
            path,
            f"metadata refused (asks for {requested})",
            f"DFL metadata in {Path(path)} refused: the metadata asks for {requested}, which is "
            "not allowed; nothing in the file was run",
        )


class NotJpegError(MetadataError):
    """The file is not a JPEG (no SOI marker) or its header segments are broken."""


@dataclass(frozen=True)
class JpegHeader:
    """What the header segments of a JPEG say: DFL metadata (or None) and (h, w) (or None)."""

    metadata: dict[str, Any] | None
    shape: tuple[int, int] | None


# --- restricted unpickling -------------------------------------------------------------------


def _numpy_core(sub: str) -> Any:
    import importlib

    try:
        return importlib.import_module(f"numpy._core.{sub}")
    except ImportError:  # numpy < 2
        return importlib.import_module(f"numpy.core.{sub}")


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    # Protocol 2/3 pickles of bytes call _codecs.encode(text, 'latin1'); admit only that.
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError("only latin1 text-to-bytes encoding is allowed")
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    multiarray = _numpy_core("multiarray")
    numeric = _numpy_core("numeric")
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    # Protocol 0-2 pickles name builtins by their Python 2 module, __builtin__.
    for mod in ("builtins", "__builtin__"):
        for kind in (set, frozenset, complex, bytearray):
            allowed[(mod, kind.__name__)] = kind
    for pkg in ("numpy.core", "numpy._core"):
        allowed[(f"{pkg}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{pkg}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{pkg}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


_ALLOWED: dict[tuple[str, str], Any] | None = None


class _Refused(Exception):
    def __init__(self, requested: str):
        super().__init__(requested)
        self.requested = requested


def _int_enum_value(value: Any) -> int:
    # A pickled IntEnum member is "call the class with its int value"; read it as that int.
    if type(value) is not int:
        raise pickle.UnpicklingError("an enum value must be an int")
    return value


# DFL's IntEnum classes found in faceset.pak sample configs (sample_type, face_type).
_DFL_INT_ENUMS: dict[tuple[str, str], Any] = {
    ("samplelib.Sample", "SampleType"): _int_enum_value,
    ("facelib.FaceType", "FaceType"): _int_enum_value,
}


class _AllowListUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the allow-listed numpy/builtin names; never imports."""

    def __init__(self, file: io.BytesIO, dfl_enums: bool = False):
        super().__init__(file)
        self._dfl_enums = dfl_enums

    def find_class(self, module: str, name: str) -> Any:
        global _ALLOWED
        if _ALLOWED is None:
            _ALLOWED = _allowed_globals()
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            pass
        if self._dfl_enums and (module, name) in _DFL_INT_ENUMS:
            return _DFL_INT_ENUMS[(module, name)]
        raise _Refused(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused(f"persistent id {pid!r}")


def unpickle_restricted(
    payload: bytes, path: str | os.PathLike[str] = "<bytes>", *, dfl_enums: bool = False
) -> Any:
    """Unpickle any DFL pickle payload with the allow-list: plain containers, numbers, strings,
    bytes and numpy arrays only; nothing in it is run.

    ``dfl_enums`` also reads DFL's IntEnum members (``samplelib.Sample.SampleType``,
    ``facelib.FaceType.FaceType``, as in faceset.pak) as their plain int values. Raises
    MetadataRefusedError for anything else it asks for, MetadataError for a damaged payload; both
    name ``path``.
    """
    try:
        return _AllowListUnpickler(io.BytesIO(payload), dfl_enums).load()
    except _Refused as exc:
        raise MetadataRefusedError(path, exc.requested) from None
    except Exception as exc:  # noqa: BLE001 - any failure of a garbled pickle is a bad file
        raise MetadataError(path, f"the metadata is damaged ({type(exc).__name__})") from None


def unpickle_metadata(payload: bytes, path: str | os.PathLike[str] = "<bytes>") -> dict[str, Any]:
    """Unpickle a DFL APP15 payload with the allow-list; raise MetadataError naming ``path``."""
    value = unpickle_restricted(payload, path)
    if not isinstance(value, dict):
        raise MetadataError(path, f"the metadata is a {type(value).__name__}, not a dict")
    return value


# --- JPEG segment walking --------------------------------------------------------------------


def _walk_header(
    read_more: Callable[[int], bytes], path: str | os.PathLike[str]
) -> tuple[bytes | None, tuple[int, int] | None]:
    """Walk segments up to SOS; return (last APP15 payload, (h, w) from SOF)."""
    buf = bytearray(read_more(HEADER_READ_BYTES))

    def need(end: int) -> bool:
        while len(buf) < end:
            more = read_more(max(HEADER_READ_BYTES, end - len(buf)))
            if not more:
                return False
            buf.extend(more)
        return True

    if len(buf) < 2 or buf[0] != 0xFF or buf[1] != SOI:
        raise NotJpegError(path, "not a JPEG file")
    app15: bytes | None = None
    shape: tuple[int, int] | None = None
    pos = 2
    while True:
        if not need(pos + 2):
            raise NotJpegError(path, "the JPEG ends inside its header (truncated file)")
        if buf[pos] != 0xFF:
            raise NotJpegError(path, f"broken JPEG header at byte {pos}")
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        pos += 2
        if marker in STANDALONE_MARKERS:
            continue
        if marker in (SOI, EOI):
            raise NotJpegError(path, "the JPEG has no image data")
        if not need(pos + 2):
            raise NotJpegError(path, "the JPEG ends inside its header (truncated file)")
        (length,) = struct.unpack_from(">H", buf, pos)
        if length < 2:
            raise NotJpegError(path, f"broken JPEG segment length at byte {pos}")
        start, end = pos + 2, pos + length
        if marker == SOS:
            return app15, shape
        if not need(end):
            raise NotJpegError(path, "the JPEG ends inside its header (truncated file)")
        if marker == APP15:
            app15 = bytes(buf[start:end])
        elif marker in SOF_MARKERS and length >= 7:
            h, w = struct.unpack_from(">HH", buf, start + 1)
            shape = (h, w)
        pos = end


def read_jpeg_header(path: str | os.PathLike[str]) -> JpegHeader:
    """Read only a JPEG's header segments: its DFL metadata (or None) and its (h, w).

    Raises NotJpegError (a MetadataError) for a file that is not a JPEG or whose header is cut
    short, MetadataRefusedError for metadata outside the allow-list, MetadataError otherwise.
    """
    try:
        with open(path, "rb") as f:
            payload, shape = _walk_header(f.read, path)
    except OSError as exc:
        raise MetadataError(path, f"cannot open the file ({exc.strerror or exc})") from None
    metadata = None if payload is None else unpickle_metadata(payload, path)
    return JpegHeader(metadata=metadata, shape=shape)


def read_jpeg_header_bytes(data: bytes, path: str | os.PathLike[str] = "<bytes>") -> JpegHeader:
    """read_jpeg_header for JPEG bytes already in memory."""
    stream = io.BytesIO(data)
    payload, shape = _walk_header(stream.read, path)
    metadata = None if payload is None else unpickle_metadata(payload, path)
    return JpegHeader(metadata=metadata, shape=shape)


def read_dfl_metadata(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """DFL metadata dict of an aligned-face JPEG, or None when it has no APP15 segment."""
    return read_jpeg_header(path).metadata


# --- writing ---------------------------------------------------------------------------------


def _plain(value: Any, where: str) -> Any:
    """Convert metadata to plain Python types (numpy arrays -> lists) or refuse it."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(
                f"metadata {where}: numpy arrays of dtype {value.dtype} are not allowed"
            )
        return value.tolist()
    if isinstance(value, np.generic):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"metadata {where}: numpy scalars of dtype {value.dtype} not allowed")
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"metadata {where}: keys must be str, got {type(k).__name__}")
            out[k] = _plain(v, f"{where}[{k!r}]")
        return out
    raise TypeError(f"metadata {where}: values of type {type(value).__name__} are not allowed")


def pickle_metadata(metadata: Mapping[str, Any]) -> bytes:
    """Pickle metadata (keys with None values dropped, as DFL does) from plain types only."""
    plain = _plain({k: v for k, v in metadata.items() if v is not None}, "")
    return pickle.dumps(plain, protocol=PICKLE_PROTOCOL)


def insert_app15(jpeg: bytes, payload: bytes) -> bytes:
    """Return ``jpeg`` with any APP15 removed and one holding ``payload`` after the last APPn."""
    if len(payload) > MAX_SEGMENT_PAYLOAD_BYTES:
        raise ValueError(
            f"metadata is {len(payload)} bytes; a JPEG APP15 segment holds at most "
            f"{MAX_SEGMENT_PAYLOAD_BYTES}"
        )
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG stream")
    pieces: list[bytes] = [jpeg[:2]]
    insert_at = 1  # index in pieces after which APP15 goes
    pos = 2
    while True:
        if jpeg[pos] != 0xFF:
            raise ValueError(f"broken JPEG header at byte {pos}")
        marker = jpeg[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in STANDALONE_MARKERS:
            pieces.append(jpeg[pos : pos + 2])
            pos += 2
            continue
        if marker == SOS:
            pieces.append(jpeg[pos:])  # SOS, entropy-coded data and the rest, unchanged
            break
        (length,) = struct.unpack_from(">H", jpeg, pos + 2)
        segment = jpeg[pos : pos + 2 + length]
        pos += 2 + length
        if marker == APP15:
            continue
        pieces.append(segment)
        if APPN_FIRST <= marker <= APPN_LAST:
            insert_at = len(pieces)
    app15 = b"\xff\xef" + struct.pack(">H", len(payload) + 2) + payload
    pieces.insert(insert_at, app15)
    return b"".join(pieces)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write a file via a temporary file in the same folder and os.replace."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def encode_dfl_jpeg(
    image_bgr_uint8: np.ndarray, metadata: Mapping[str, Any], quality: int = DEFAULT_JPEG_QUALITY
) -> bytes:
    """JPEG bytes of the image with DFL metadata in an APP15 segment."""
    image = np.asarray(image_bgr_uint8)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(
            f"expected a uint8 (h,w) or (h,w,3) image, got {image.dtype} {image.shape}"
        )
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("OpenCV could not encode the image as JPEG")
    return insert_app15(encoded.tobytes(), pickle_metadata(metadata))


def write_dfl_jpeg(
    path: str | os.PathLike[str],
    image_bgr_uint8: np.ndarray,
    metadata: Mapping[str, Any],
    quality: int = DEFAULT_JPEG_QUALITY,
) -> None:
    """Write an aligned face JPEG with DFL metadata (plain types only) atomically."""
    try:
        data = encode_dfl_jpeg(image_bgr_uint8, metadata, quality)
    except (TypeError, ValueError) as exc:
        raise MetadataError(path, str(exc), f"cannot write {Path(path)}: {exc}") from None
    write_bytes_atomic(path, data)
