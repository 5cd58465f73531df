"""Rough edges a careful user hits (issue 11, items 13-14): each failure ends in a clear message."""

from __future__ import annotations

import builtins
import pickle
import shutil
from pathlib import Path

import cv2
import numpy as np

from dfl.data import jpeg_metadata
from dfl.data.faceset import load_faceset

FACESET = Path(__file__).parent / "data" / "dfl-faceset"


class _Hostile:
    def __reduce__(self):
        return builtins.print, ("never run",)


def _refused_faceset(folder: Path, n_refused: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(FACESET / "src" / "00001_0.jpg", folder / "00001_0.jpg")
    _, enc = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    evil = pickle.dumps({"face_type": "whole_face", "landmarks": _Hostile()}, 4)
    for i in range(n_refused):
        (folder / f"evil{i}.jpg").write_bytes(jpeg_metadata.insert_app15(enc.tobytes(), evil))


def test_refused_metadata_files_are_named(tmp_path: Path, capsys) -> None:
    from dfl.ui.startup import SKIPPED_LOG, _load_faceset

    _refused_faceset(tmp_path / "src", 5)
    (tmp_path / "src" / "notes.txt").write_text("x")
    fs = load_faceset(tmp_path / "src")
    assert fs.refused_names() == [f"evil{i}.jpg" for i in range(5)]
    models = tmp_path / "model"
    models.mkdir()
    samples = _load_faceset(tmp_path / "src", "src", models)
    assert len(samples) == 1
    out = capsys.readouterr().out
    assert "evil0.jpg, evil1.jpg, evil2.jpg and 2 more" in out
    log = models / SKIPPED_LOG.format(side="src")
    assert str(log) in out
    listed = log.read_text().splitlines()
    assert [line.split(":")[0] for line in listed] == [f"evil{i}.jpg" for i in range(5)] + [
        "notes.txt"
    ]
    assert all("metadata refused" in line for line in listed[:5])
    # a later run without skipped files removes the stale list
    for i in range(5):
        (tmp_path / "src" / f"evil{i}.jpg").unlink()
    (tmp_path / "src" / "notes.txt").unlink()
    _load_faceset(tmp_path / "src", "src", models)
    assert not log.exists()
