"""Pairing frames with aligned faces (dfl.merge.frames): DFL's stem keys and landmarks, natural
order, faceless frames, several faces, unusable files and orphans reported, motion vectors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from dfl.merge.frames import (
    NO_METADATA,
    NO_SOURCE,
    MergeInputError,
    add_motion,
    natural_key,
    pair_frames,
)
from tests.merge_fixtures import DATA, landmarks, make_workspace, write_aligned, write_frame


def test_dfl_fixture_pairs_one_face_per_frame() -> None:
    pairing = pair_frames(DATA / "frames", DATA / "aligned")
    assert [f.name for f in pairing.frames] == [f"{i:05d}.png" for i in range(1, 7)]
    assert all(len(f.faces) == 1 and len(f.motion) == 1 for f in pairing.frames)
    assert pairing.faces == 6 and not pairing.orphans and not pairing.unusable
    assert pairing.face_types == {"whole_face"}
    face = pairing.frames[0].faces[0]
    assert face.landmarks.shape == (68, 2) and face.source_name == "00001.png"
    # frame-space landmarks: the face lies inside the 400x400 frame, not in the aligned image
    assert 50 < face.landmarks[:, 0].mean() < 350


def test_natural_order_faceless_frames_and_orphans(tmp_path: Path) -> None:
    frames, aligned = tmp_path / "frames", tmp_path / "aligned"
    for i, name in enumerate(["f10.png", "f2.jpg", "f1.png", "notes.txt"]):
        if name.endswith(".txt"):
            (frames / name).write_text("not a frame")
        else:
            write_frame(frames, name, i)
    write_aligned(aligned, "f2_0.jpg", "f2.png")  # another extension: the stem pairs it (DFL)
    write_aligned(aligned, "f99_0.jpg", "f99.png")  # no such frame
    pairing = pair_frames(frames, aligned)
    assert [f.name for f in pairing.frames] == ["f1.png", "f2.jpg", "f10.png"]
    assert [len(f.faces) for f in pairing.frames] == [0, 1, 0]
    assert [face.source_name for face in pairing.orphans] == ["f99.png"]
    assert pairing.frames[1].motion == [None]  # its neighbours have no face


def test_several_faces_keep_aligned_order(tmp_path: Path) -> None:
    frames, aligned = make_workspace(tmp_path, n=3)
    for k in (2, 10):  # 00002_2 and 00002_10: natural order of the aligned names
        write_aligned(aligned, f"00002_{k}.jpg", "00002.png", landmarks((40, 10 * k)))
    pairing = pair_frames(frames, aligned)
    names = [face.path.name for face in pairing.frames[1].faces]
    assert names == ["00002_0.jpg", "00002_2.jpg", "00002_10.jpg"]
    assert [f.name for f in pairing.shared] == ["00002.png"]
    assert len(pairing.frames[1].motion) == 3  # motion stays on, per face


def test_unusable_aligned_files_are_reported(tmp_path: Path) -> None:
    frames, aligned = make_workspace(tmp_path, n=2)
    write_aligned(aligned, "nosource.jpg", None)
    import cv2

    cv2.imwrite(str(aligned / "plain.jpg"), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(aligned / "face.png"), np.zeros((8, 8, 3), np.uint8))
    (aligned / "readme.txt").write_text("ignored")
    pairing = pair_frames(frames, aligned)
    reasons = {path.name: reason for path, reason in pairing.unusable}
    assert reasons["nosource.jpg"] == NO_SOURCE
    assert reasons["plain.jpg"] == NO_METADATA
    assert "not a JPEG" in reasons["face.png"]
    assert "readme.txt" not in reasons
    assert pairing.faces == 2


def test_bad_inputs_raise_clear_errors(tmp_path: Path) -> None:
    frames, aligned = make_workspace(tmp_path, n=2)
    with pytest.raises(MergeInputError, match="frame folder not found"):
        pair_frames(tmp_path / "nowhere", aligned)
    with pytest.raises(MergeInputError, match="aligned folder not found"):
        pair_frames(frames, tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MergeInputError, match="no frames to merge"):
        pair_frames(empty, aligned)
    with pytest.raises(MergeInputError, match="no aligned faces in"):
        pair_frames(frames, empty)
    only_plain = tmp_path / "plain"
    write_aligned(only_plain, "a.jpg", None)
    with pytest.raises(MergeInputError, match="source_filename"):
        pair_frames(frames, only_plain)


def test_motion_vector_follows_the_face_between_neighbours(tmp_path: Path) -> None:
    frames, aligned = tmp_path / "frames", tmp_path / "aligned"
    for i in range(3):
        write_frame(frames, f"{i}.png", i)
        write_aligned(aligned, f"{i}_0.jpg", f"{i}.png", landmarks((4.0 * i, -3.0 * i)))
    pairing = pair_frames(frames, aligned)
    power, degrees = pairing.frames[1].motion[0]
    assert power == pytest.approx(10.0, abs=1e-3)  # (8, -6) over two frame intervals
    assert degrees == pytest.approx(math.degrees(math.atan2(6, 8)), abs=1e-3)  # y is down
    first_power, _ = pairing.frames[0].motion[0]  # the first frame is its own predecessor
    assert first_power == pytest.approx(5.0, abs=1e-3)


def test_motion_pairs_each_face_with_its_nearest_neighbour(tmp_path: Path) -> None:
    frames, aligned = tmp_path / "frames", tmp_path / "aligned"
    for i in range(3):
        write_frame(frames, f"{i}.png", i, (100, 200))
        write_aligned(aligned, f"{i}_0.jpg", f"{i}.png", landmarks((2.0 * i, 0)))
        write_aligned(aligned, f"{i}_1.jpg", f"{i}.png", landmarks((100, 3.0 * i)))
    pairing = pair_frames(frames, aligned)
    (p0, d0), (p1, d1) = pairing.frames[1].motion
    assert (p0, d0) == pytest.approx((4.0, 0.0), abs=1e-3)
    assert (p1, d1) == pytest.approx((6.0, -90.0), abs=1e-3)
    add_motion([])  # nothing to do


def test_natural_key() -> None:
    names = ["a10b", "a2b", "A1b", "b"]
    assert sorted(names, key=natural_key) == ["A1b", "a2b", "a10b", "b"]
