"""Loss history: append-only float32 rows, the valid count from the manifest, stale rows cut."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from dfl.store import losshistory
from dfl.store.fsutil import DiskFullError
from dfl.store.losshistory import HEADER, LossHistory, LossHistoryError

K = 2


def rows(start: int, n: int, k: int = K) -> np.ndarray:
    return (np.arange(start * k, (start + n) * k, dtype=np.float32) / 7).reshape(n, k)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / losshistory.FILE_NAME


def size_for(n: int, k: int = K) -> int:
    return HEADER.size + n * k * 4


def test_append_flush_read(path: Path) -> None:
    h = LossHistory.open(path, K)
    assert not path.exists()  # opening writes nothing
    assert len(h) == 0 and h.flush() == 0
    assert path.stat().st_size == HEADER.size
    h.append(rows(0, 3))
    h.append(rows(3, 1)[0])  # a single row of shape (k,)
    assert (h.durable_rows, h.pending_rows, len(h)) == (0, 4, 4)
    assert h.flush() == 4
    assert path.stat().st_size == size_for(4)
    np.testing.assert_array_equal(h.read(), rows(0, 4))
    np.testing.assert_array_equal(h.read(2), rows(0, 2))
    np.testing.assert_array_equal(h.read(100), rows(0, 4))  # clamped to what is on disk
    assert h.read(0).shape == (0, K)
    again = LossHistory.open(path, K, valid_rows=4)
    np.testing.assert_array_equal(again.read(), rows(0, 4))
    assert again.notes == []


def test_tail_covers_saved_and_pending_rows(path: Path) -> None:
    h = LossHistory.open(path, K)
    h.append(rows(0, 5))
    h.flush()
    h.append(rows(5, 3))
    np.testing.assert_array_equal(h.tail(), rows(0, 8))
    np.testing.assert_array_equal(h.tail(4), rows(4, 4))
    np.testing.assert_array_equal(h.tail(2), rows(6, 2))
    np.testing.assert_array_equal(h.tail(100), rows(0, 8))
    assert h.tail(0).shape == (0, K)
    assert h.tail().dtype == np.float32


def test_rows_past_the_manifest_count_are_ignored_then_cut(path: Path) -> None:
    h = LossHistory.open(path, K)
    h.append(rows(0, 10))
    assert h.flush() == 10  # saved with loss_rows=10
    h.append(rows(10, 5))
    h.flush()  # 15 rows on disk, but the save after them never finished
    resumed = LossHistory.open(path, K, valid_rows=10)
    assert resumed.durable_rows == 10
    np.testing.assert_array_equal(resumed.read(), rows(0, 10))
    np.testing.assert_array_equal(resumed.tail(3), rows(7, 3))
    inode = path.stat().st_ino
    resumed.append(np.full((2, K), 9.0, np.float32))
    assert resumed.flush() == 12
    assert path.stat().st_size == size_for(12)
    assert path.stat().st_ino == inode  # appended in place, never re-written
    expected = np.concatenate([rows(0, 10), np.full((2, K), 9.0, np.float32)])
    np.testing.assert_array_equal(LossHistory.open(path, K, 12).read(), expected)


def test_flush_without_new_rows_still_cuts_stale_rows(path: Path) -> None:
    h = LossHistory.open(path, K)
    h.append(rows(0, 6))
    h.flush()
    resumed = LossHistory.open(path, K, valid_rows=4)
    assert resumed.flush() == 4
    assert path.stat().st_size == size_for(4)


def test_partial_trailing_row_is_ignored(path: Path) -> None:
    h = LossHistory.open(path, K)
    h.append(rows(0, 3))
    h.flush()
    with open(path, "ab") as f:
        f.write(b"\x01\x02\x03")  # a crash in the middle of an append
    resumed = LossHistory.open(path, K, valid_rows=3)
    np.testing.assert_array_equal(resumed.read(10), rows(0, 3))
    resumed.append(rows(3, 1))
    assert resumed.flush() == 4
    np.testing.assert_array_equal(resumed.read(), rows(0, 4))


def test_file_shorter_than_manifest_count(path: Path) -> None:
    h = LossHistory.open(path, K)
    h.append(rows(0, 3))
    h.flush()
    resumed = LossHistory.open(path, K, valid_rows=5)
    assert resumed.durable_rows == 3
    assert "holds 3 of the 5 saved rows" in resumed.notes[0]
    missing = LossHistory.open(path.with_name("gone.f32"), K, valid_rows=5)
    assert len(missing) == 0 and "missing" in missing.notes[0]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"DFL", "too short"),
        (b"NOTALOSS" + bytes(8), "not a dfl loss history"),
        (HEADER.pack(losshistory.MAGIC, 99, K), "format version 99"),
        (HEADER.pack(losshistory.MAGIC, 1, 3), "3 losses per row, the model has 2"),
    ],
)
def test_unusable_file_is_moved_aside(path: Path, content: bytes, problem: str) -> None:
    path.write_bytes(content)
    h = LossHistory.open(path, K, valid_rows=10)
    assert problem in h.notes[0]
    assert len(h) == 0 and h.read(10).shape == (0, K)
    assert path.read_bytes() == content  # open() changes nothing
    h.append(rows(0, 2))
    assert h.flush() == 2
    aside = [p for p in path.parent.iterdir() if p.name.startswith(path.name + ".bad-")]
    assert len(aside) == 1 and aside[0].read_bytes() == content
    np.testing.assert_array_equal(LossHistory.open(path, K, 2).read(), rows(0, 2))


def test_bad_rows_refused(path: Path) -> None:
    h = LossHistory.open(path, K)
    with pytest.raises(LossHistoryError, match=r"shape \(n, 2\)"):
        h.append(np.zeros((2, 3)))
    with pytest.raises(LossHistoryError, match="non-finite"):
        h.append(np.array([[1.0, np.nan]]))
    with pytest.raises(LossHistoryError, match="non-finite"):
        h.append(np.array([np.inf, 1.0]))
    assert len(h) == 0
    with pytest.raises(ValueError, match="losses per row"):
        LossHistory.open(path, 0)


class _Full:
    def __init__(self, f, room: int) -> None:
        self._f = f
        self._room = room

    def write(self, data) -> int:
        data = bytes(data)
        self._f.write(data[: self._room])
        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


def test_disk_full_keeps_rows_pending(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = LossHistory.open(path, K)
    h.append(rows(0, 4))
    h.flush()
    h.append(rows(4, 3))

    def full_open(p: Path, mode: str) -> _Full:
        return _Full(open(p, mode), room=5)  # _Full closes it

    monkeypatch.setattr(losshistory, "open", full_open, raising=False)
    with pytest.raises(DiskFullError, match=r"disk full while saving .*loss_history"):
        h.flush()
    monkeypatch.undo()
    assert (h.durable_rows, h.pending_rows) == (4, 3)
    assert path.stat().st_size == size_for(4) + 5  # a torn row, past the valid count
    np.testing.assert_array_equal(LossHistory.open(path, K, 4).read(), rows(0, 4))
    assert h.flush() == 7
    np.testing.assert_array_equal(h.read(), rows(0, 7))
    assert path.stat().st_size == size_for(7)


def test_flush_is_fsynced(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_size), real(fd)))
    h = LossHistory.open(path, K)
    h.append(rows(0, 2))
    h.flush()
    assert size_for(2) in synced


def test_pending_rows_are_those_since_the_last_flush(tmp_path):
    history = LossHistory.open(tmp_path / "h.f32", 2)
    assert history.pending().shape == (0, 2)
    history.append(np.array([[1.0, 2.0]], np.float32))
    history.append(np.array([[3.0, 4.0]], np.float32))
    np.testing.assert_array_equal(history.pending(), [[1.0, 2.0], [3.0, 4.0]])
    history.flush()
    assert history.pending().shape == (0, 2)
