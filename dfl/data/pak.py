"""DFL's packed faceset, ``faceset.pak``: sample configs and the face JPEGs in one file.

Layout (docs/facesets.md §3), all integers u64 little-endian:

    version (= 1)
    L = byte length of the pickled sample-config list
    the pickled list of N sample-config dicts (L bytes)
    N + 1 offsets: the first N relative to the data start, the last one (as DFL writes it) the
        absolute file position of the end of the data
    the data: the N face files' bytes, one after another

The config list is read through jpeg_metadata's allow-list unpickler (with DFL's IntEnum
members read as ints); nothing in the file is ever run. This module only reads paks; the
project writes none (decision 6).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dfl.data import jpeg_metadata

PAK_FILENAME = "faceset.pak"
PAK_VERSION = 1
_U64 = struct.Struct("<Q")


class PakError(ValueError):
    """A faceset.pak cannot be used as a whole; the message names the file."""

    def __init__(self, path: str | os.PathLike[str], reason: str, message: str | None = None):
        self.path = Path(path)
        self.reason = reason
        super().__init__(message or f"cannot read the packed faceset {self.path}: {reason}")


class PakRefusedError(PakError):
    """The pak's sample configs ask for an object outside the allow-list; nothing was run."""

    def __init__(self, path: str | os.PathLike[str], requested: str):
        self.requested = requested
        super().__init__(
            path,
            f"metadata refused (asks for {requested})",
            f"packed faceset {Path(path)} refused: its sample list asks for {requested}, which is "
            "not allowed; nothing in the file was run",
        )


@dataclass(frozen=True)
class PackedImage:
    """Where one face file's bytes lie inside a pak."""

    pak: Path
    offset: int  # absolute byte position in the pak
    size: int  # bytes

    def read(self) -> bytes:
        """The face file's bytes; OSError if the pak cannot be read or ends early."""
        with open(self.pak, "rb") as f:
            f.seek(self.offset)
            data = f.read(self.size)
        if len(data) != self.size:
            raise OSError(
                f"{self.pak} ends {self.size - len(data)} bytes early (truncated packed faceset)"
            )
        return data


@dataclass(frozen=True)
class PakEntry:
    """One sample of a pak: its config dict (as DFL wrote it) and where its image is."""

    index: int
    config: Any  # a dict as DFL writes it; anything else is a damaged entry
    image: PackedImage | None  # None when the offset table is broken for this entry
    image_problem: str = ""  # why the image bytes cannot be located, or ""

    @property
    def name(self) -> str:
        """The face's file name (with its person folder for a person faceset), or a stand-in."""
        config = self.config if isinstance(self.config, dict) else {}
        filename = config.get("filename")
        name = Path(filename).name if isinstance(filename, str) and filename else ""
        name = name or f"entry {self.index}"
        person = config.get("person_name")
        if isinstance(person, str) and person and Path(person).name == person:
            return f"{person}/{name}"
        return name


@dataclass(frozen=True)
class Pak:
    path: Path
    version: int
    entries: list[PakEntry]


def _read_exact(f: Any, size: int, path: Path, what: str) -> bytes:
    data = f.read(size)
    if len(data) != size:
        raise PakError(path, f"the file ends inside {what} (truncated)")
    return data


def _read_head(f: Any, path: Path, file_size: int) -> tuple[list[Any], bytes, int]:
    """Read version, sample list and offset table; return (configs, table bytes, data start)."""
    (version,) = _U64.unpack(_read_exact(f, 8, path, "its header"))
    if version != PAK_VERSION:
        raise PakError(path, f"unknown pak version {version} (expected {PAK_VERSION})")
    (list_size,) = _U64.unpack(_read_exact(f, 8, path, "its header"))
    if list_size > file_size - 16:
        raise PakError(path, "the file ends inside its sample list (truncated)")
    payload = _read_exact(f, list_size, path, "its sample list")
    try:
        configs = jpeg_metadata.unpickle_restricted(payload, path, dfl_enums=True)
    except jpeg_metadata.MetadataRefusedError as exc:
        raise PakRefusedError(path, exc.requested) from None
    except jpeg_metadata.MetadataError as exc:
        raise PakError(path, f"damaged sample list: {exc.reason}") from None
    if not isinstance(configs, (list, tuple)):
        raise PakError(path, f"the sample list is a {type(configs).__name__}, not a list")
    table = _read_exact(f, 8 * (len(configs) + 1), path, "its offset table")
    return list(configs), table, f.tell()


def read_pak(path: str | os.PathLike[str]) -> Pak:
    """Read a pak's header, sample configs and offset table (not the images).

    Raises PakRefusedError when the config list asks for anything outside the allow-list, and
    PakError when the file as a whole cannot be used (missing, unknown version, truncated,
    damaged list). An entry whose bytes cannot be located says why in ``image_problem``.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            file_size = os.fstat(f.fileno()).st_size
            configs, table, data_start = _read_head(f, path, file_size)
    except OSError as exc:
        raise PakError(path, f"cannot read the file ({exc.strerror or exc})") from None
    n = len(configs)
    offsets = [v for (v,) in _U64.iter_unpack(table)]
    data_size = file_size - data_start
    # DFL writes the last offset as an absolute file position; accept a relative one too.
    end = offsets[n] - data_start if offsets[n] == file_size else offsets[n]
    ends = [*offsets[1:n], end]
    entries = []
    for i, config in enumerate(configs):
        start, stop = offsets[i], ends[i]
        if not 0 <= start <= stop <= data_size:
            entries.append(
                PakEntry(i, config, None, f"its bytes lie outside {path.name} (broken offsets)")
            )
        elif start == stop:
            entries.append(PakEntry(i, config, None, "its image is empty (0 bytes)"))
        else:
            entries.append(PakEntry(i, config, PackedImage(path, data_start + start, stop - start)))
    return Pak(path=path, version=PAK_VERSION, entries=entries)
