"""Append-only loss history: a small header, then float32 rows of k losses per iteration."""

from __future__ import annotations

import contextlib
import os
import struct
import time
from pathlib import Path

import numpy as np

from dfl.store.fsutil import (
    DiskFullError,
    disk_full_first_save,
    fsync_dir,
    fsync_fd,
    is_disk_full,
    replace_file,
    write_bytes_durable,
)

FILE_NAME = "loss_history.f32"
MAGIC = b"DFLLOSS\x00"
FORMAT_VERSION = 1
HEADER = struct.Struct("<8sII")  # magic, format version, k (losses per row)
ROW_DTYPE = np.dtype("<f4")
MAX_LOSSES_PER_ROW = 64
BAD_FILE_SUFFIX = ".bad-"  # a damaged file is moved aside to <name>.bad-<unix time>


class LossHistoryError(ValueError):
    """Rows that do not fit the history (wrong width, non-finite values)."""


class LossHistory:
    """The loss history of one model.

    Rows on disk past `valid_rows` (the count recorded by the checkpoint that was loaded) belong
    to a run that was never saved: they are never read, and the next flush cuts them off before
    appending. The file is only ever appended to or cut short, never re-written in full.
    """

    def __init__(self, path: Path, k: int, durable_rows: int, *, reset: bool, notes: list[str]):
        self.path = path
        self.k = k
        self.notes = notes  # things the user should be told (damaged or short file)
        self._durable_rows = durable_rows
        self._reset = reset  # the file on disk is unusable: move it aside on the next flush
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0

    @property
    def row_bytes(self) -> int:
        return self.k * ROW_DTYPE.itemsize

    @classmethod
    def open(cls, path: Path | str, k: int, valid_rows: int = 0) -> LossHistory:
        """Open (without writing anything) the history at `path` with `k` losses per row.

        `valid_rows` is the number of rows the loaded checkpoint's manifest recorded (0 for a
        new model).
        """
        path = Path(path)
        if not 1 <= k <= MAX_LOSSES_PER_ROW:
            raise ValueError(f"losses per row must be 1..{MAX_LOSSES_PER_ROW}, got {k}")
        if valid_rows < 0:
            raise ValueError(f"valid_rows must be >= 0, got {valid_rows}")
        notes: list[str] = []
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            if valid_rows:
                notes.append(
                    f"the loss history {path.name} is missing; the loss graph starts empty"
                )
            return cls(path, k, 0, reset=False, notes=notes)
        problem = _header_problem(path, size, k)
        if problem:
            notes.append(
                f"the loss history {path.name} is unusable ({problem}); it will be moved aside "
                "and a new one started"
            )
            return cls(path, k, 0, reset=True, notes=notes)
        file_rows = (size - HEADER.size) // (k * ROW_DTYPE.itemsize)
        if file_rows < valid_rows:
            notes.append(
                f"the loss history {path.name} holds {file_rows} of the {valid_rows} saved rows; "
                "the loss graph misses the rest"
            )
        return cls(path, k, min(valid_rows, file_rows), reset=False, notes=notes)

    @property
    def durable_rows(self) -> int:
        """Rows on disk that belong to the saved history."""
        return self._durable_rows

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    def pending(self) -> np.ndarray:
        """The rows appended since the last flush, shape (n, k)."""
        if not self._pending:
            return np.empty((0, self.k), ROW_DTYPE)
        return np.concatenate(self._pending)

    def __len__(self) -> int:
        return self._durable_rows + self._pending_rows

    def append(self, rows: np.ndarray) -> None:
        """Buffer rows of shape (n, k) (or one row of shape (k,)) in memory until flush()."""
        array = np.asarray(rows, dtype=ROW_DTYPE)
        if array.ndim == 1:
            array = array.reshape(1, -1)
        if array.ndim != 2 or array.shape[1] != self.k:
            raise LossHistoryError(f"loss rows must have shape (n, {self.k}), got {array.shape}")
        if not np.all(np.isfinite(array)):
            raise LossHistoryError("a non-finite loss cannot be stored in the loss history")
        if array.shape[0]:
            self._pending.append(array.copy())
            self._pending_rows += array.shape[0]

    def flush(self) -> int:
        """Append the pending rows to the file, fsync it, and return the durable row count.

        Rows past the saved count are cut off first. On an error (disk full) nothing counts as
        written and the pending rows are kept for the next try.
        """
        expected = HEADER.size + self._durable_rows * self.row_bytes
        if self._reset:
            self._move_aside()
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                write_bytes_durable(self.path, HEADER.pack(MAGIC, FORMAT_VERSION, self.k))
            except DiskFullError as e:
                if self._durable_rows == 0:  # nothing to fall back on: say so
                    raise DiskFullError(self.path, disk_full_first_save(self.path)) from e
                raise
        pending = (
            np.concatenate(self._pending).astype(ROW_DTYPE, copy=False)
            if self._pending
            else np.empty((0, self.k), ROW_DTYPE)
        )
        if not pending.size and self.path.stat().st_size == expected:
            return self._durable_rows
        try:
            with open(self.path, "r+b") as f:
                f.truncate(expected)
                f.seek(expected)
                f.write(pending.tobytes())
                f.flush()
                fsync_fd(f.fileno())
        except OSError as e:
            if is_disk_full(e):
                if self._durable_rows == 0:  # no row was ever saved: a new model
                    raise DiskFullError(self.path, disk_full_first_save(self.path)) from e
                raise DiskFullError(
                    self.path,
                    f"disk full while saving {self.path}: free some space; "
                    "the previous save is intact",
                ) from e
            raise
        self._durable_rows += pending.shape[0]
        self._pending.clear()
        self._pending_rows = 0
        return self._durable_rows

    def read(self, limit_rows: int | None = None) -> np.ndarray:
        """The first `limit_rows` rows on disk (default: the saved rows), shape (n, k)."""
        limit = self._durable_rows if limit_rows is None else limit_rows
        if limit < 0:
            raise ValueError(f"limit_rows must be >= 0, got {limit}")
        return self._read_rows(0, limit)

    def tail(self, n: int | None = None) -> np.ndarray:
        """The last `n` rows (all when None), saved and pending together, shape (m, k)."""
        total = len(self)
        n = total if n is None else max(0, min(n, total))
        from_pending = min(n, self._pending_rows)
        from_disk = n - from_pending
        parts = [self._read_rows(self._durable_rows - from_disk, from_disk)]
        if from_pending:
            parts.append(np.concatenate(self._pending)[self._pending_rows - from_pending :])
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _read_rows(self, start: int, count: int) -> np.ndarray:
        empty = np.empty((0, self.k), ROW_DTYPE)
        if count <= 0 or self._reset:
            return empty
        try:
            with open(self.path, "rb") as f:
                file_rows = (os.fstat(f.fileno()).st_size - HEADER.size) // self.row_bytes
                count = max(0, min(count, file_rows - start))
                f.seek(HEADER.size + start * self.row_bytes)
                data = f.read(count * self.row_bytes)
        except FileNotFoundError:
            return empty
        rows = len(data) // self.row_bytes
        return np.frombuffer(data[: rows * self.row_bytes], ROW_DTYPE).reshape(rows, self.k).copy()

    def _move_aside(self) -> None:
        aside = self.path.with_name(f"{self.path.name}{BAD_FILE_SUFFIX}{time.time():.0f}")
        with contextlib.suppress(FileNotFoundError):
            replace_file(self.path, aside)
            fsync_dir(self.path.parent)
        self._reset = False
        self._durable_rows = 0


def _header_problem(path: Path, size: int, k: int) -> str | None:
    if size < HEADER.size:
        return "too short for its header"
    with open(path, "rb") as f:
        magic, version, file_k = HEADER.unpack(f.read(HEADER.size))
    if magic != MAGIC:
        return "not a dfl loss history"
    if version != FORMAT_VERSION:
        return f"format version {version}, this dfl reads {FORMAT_VERSION}"
    if file_k != k:
        return f"{file_k} losses per row, the model has {k}"
    return None
