"""Durable file writes: temp file in the same folder, fsync, atomic replace, fsync the folder."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import shutil
import sys
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

HASH_CHUNK_BYTES = 1 << 20  # 1 MiB
COPY_CHUNK_BYTES = 1 << 20
TEMP_MARK = ".tmp-"  # temp files are ".<name>.tmp-<pid>-<random>" beside their target
TRASH_PREFIX = ".trash-"  # folders renamed away before they are deleted
_DISK_FULL_ERRNOS = frozenset(
    code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None
)
_WINDOWS_REPLACE_TRIES = 10  # a virus scanner or indexer may hold the target for a moment
_WINDOWS_REPLACE_WAIT_S = 0.05
_DIR_FSYNC_UNSUPPORTED = frozenset(
    code for code in (errno.EINVAL, getattr(errno, "ENOTSUP", None)) if code is not None
)


class DiskFullError(OSError):
    """The disk (or quota) filled up during a durable write; the previous file is untouched."""

    def __init__(self, path: Path | str, message: str | None = None) -> None:
        text = message or (
            f"disk full while saving {path}: free some space; the previous save is intact"
        )
        super().__init__(text)
        self.message = text
        self.errno = errno.ENOSPC
        self.filename = str(path)

    def __str__(self) -> str:
        return self.message


def disk_full_first_save(path: Path | str) -> str:
    """DiskFullError's message when nothing was saved before (there is no previous save)."""
    return f"disk full while saving {path}: free some space; nothing was saved yet"


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in _DISK_FULL_ERRNOS


def temp_path_for(path: Path) -> Path:
    """A unique hidden temp name in the same folder as `path` (so os.replace stays atomic)."""
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and TEMP_MARK in name


def fsync_fd(fd: int) -> None:
    """Flush a file to stable storage (on macOS plain fsync stops at the drive's cache)."""
    os.fsync(fd)
    if sys.platform == "darwin":
        import fcntl

        with contextlib.suppress(OSError):  # not every file system supports it
            fcntl.fcntl(fd, fcntl.F_FULLFSYNC)


def replace_file(src: Path | str, dst: Path | str) -> None:
    """os.replace, retried briefly on Windows where another process may hold `dst` open."""
    if os.name != "nt":
        os.replace(src, dst)
        return
    for attempt in range(_WINDOWS_REPLACE_TRIES):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if attempt == _WINDOWS_REPLACE_TRIES - 1:
                raise
            time.sleep(_WINDOWS_REPLACE_WAIT_S)


def fsync_dir(path: Path | str) -> None:
    """Make a folder's entries (new, renamed, removed files) durable. No-op on Windows."""
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        fsync_fd(fd)
    except OSError as e:
        if e.errno not in _DIR_FSYNC_UNSUPPORTED:
            raise
    finally:
        os.close(fd)


def _open_temp(path: Path) -> IO[bytes]:
    """Open a new temp file for writing (a seam for fault-injection tests)."""
    return open(path, "xb")  # closed by the caller


def _write_via_temp(path: Path, write: Any, *, sync_dir: bool) -> None:
    """Run write(file) into a temp file, fsync it, then atomically move it onto `path`."""
    path = Path(path)
    tmp = temp_path_for(path)
    try:
        f = _open_temp(tmp)
        try:
            write(f)
            f.flush()
            fsync_fd(f.fileno())
        finally:
            f.close()
        replace_file(tmp, path)
    except Exception as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if is_disk_full(e):
            raise DiskFullError(path) from e
        raise
    if sync_dir:
        fsync_dir(path.parent)


def write_bytes_durable(path: Path | str, data: bytes, *, sync_dir: bool = True) -> None:
    """Write `data` to `path` atomically and durably (the old file stays whole until replaced)."""
    _write_via_temp(Path(path), lambda f: f.write(data), sync_dir=sync_dir)


def write_text_durable(path: Path | str, text: str, *, sync_dir: bool = True) -> None:
    write_bytes_durable(path, text.encode("utf-8"), sync_dir=sync_dir)


def write_json_durable(path: Path | str, obj: Any, *, sync_dir: bool = True) -> None:
    """Write `obj` as UTF-8 JSON (indented, NaN refused) atomically and durably."""
    text = json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    write_text_durable(path, text, sync_dir=sync_dir)


def check_arrays(arrays: Mapping[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
    """Return the arrays as numpy arrays, refusing object dtypes (they would need pickle)."""
    out: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"{what}: array names must be non-empty strings, got {key!r}")
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise TypeError(f"{what}: array {key!r} has an object dtype, which cannot be stored")
        out[key] = array
    return out


def write_npz(f: IO[bytes], arrays: Mapping[str, np.ndarray]) -> None:
    """Write an uncompressed .npz (what np.savez writes) with pickling refused."""
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, array in arrays.items():
            with zf.open(key + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def save_npz_durable(
    path: Path | str, arrays: Mapping[str, np.ndarray], *, sync_dir: bool = True
) -> None:
    """Save named arrays as an .npz atomically and durably (no pickle, no object arrays)."""
    checked = check_arrays(arrays, str(path))
    _write_via_temp(Path(path), lambda f: write_npz(f, checked), sync_dir=sync_dir)


def load_npz(path: Path | str) -> dict[str, np.ndarray]:
    """Load every array of an .npz into memory (pickle refused) and close the file."""
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK_BYTES):
            h.update(chunk)
    return h.hexdigest()


def copy_file_durable(
    src: Path | str, dst: Path | str, *, sync_dir: bool = True
) -> tuple[int, str]:
    """Copy src to dst durably (via a temp file); returns (size, sha256) of the bytes copied."""
    h = hashlib.sha256()
    size = 0

    def write(f: IO[bytes]) -> None:
        nonlocal size
        with open(src, "rb") as fin:
            while chunk := fin.read(COPY_CHUNK_BYTES):
                h.update(chunk)
                f.write(chunk)
                size += len(chunk)

    _write_via_temp(Path(dst), write, sync_dir=sync_dir)
    return size, h.hexdigest()


def remove_tree(path: Path | str) -> None:
    """Delete a folder: first rename it to a hidden trash name (atomic), then remove that.

    A crash part-way leaves only a hidden `.trash-*` folder, never a half-deleted one under the
    original name.
    """
    path = Path(path)
    if not path.exists():
        return
    trash = path.with_name(f"{TRASH_PREFIX}{path.name}-{os.getpid()}-{secrets.token_hex(4)}")
    os.rename(path, trash)
    fsync_dir(path.parent)
    shutil.rmtree(trash, ignore_errors=True)
