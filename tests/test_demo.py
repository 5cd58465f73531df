"""Tests for dfl.demo.facesets: synthetic src/dst facesets with DFL-compatible metadata."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from dfl.data import face_masks
from dfl.data import landmarks as L
from dfl.data.face_image import read_image
from dfl.data.faceset import load_faceset
from dfl.data.jpeg_metadata import read_dfl_metadata
from dfl.demo import facesets as demo

COUNT = 6
RES = 128


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("ws")
    demo.make_demo_facesets(ws, count=COUNT, resolution=RES, seed=0)
    return ws


def _region_mean(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return img[mask[..., 0] > 0].mean(axis=0)


def test_layout_and_loading(workspace: Path) -> None:
    for side in ("data_src", "data_dst"):
        folder = workspace / side / "aligned"
        names = sorted(p.name for p in folder.iterdir())
        assert names == [f"{i:05d}_0.jpg" for i in range(1, COUNT + 1)]
        fs = load_faceset(folder)
        assert len(fs) == COUNT and fs.skipped == []
        for s in fs.samples:
            assert s.face_type == "whole_face" and s.shape == (RES, RES)
            assert s.landmarks is not None and s.landmarks.shape == (68, 2)
            assert s.landmarks.min() > 0 and s.landmarks.max() < RES
            # The whole_face alignment of its own landmarks is the identity.
            mat = L.transform_matrix(s.landmarks, RES, "whole_face")
            np.testing.assert_allclose(mat, np.eye(2, 3), atol=2e-3)
            # A full-face crop zooms in on the face.
            full = L.transform_matrix(s.landmarks, RES, "f")
            assert np.sqrt(np.linalg.det(full[:, :2])) > 1.2
            assert read_image(s).shape == (RES, RES, 3)


def test_metadata_is_dfl_like(workspace: Path) -> None:
    meta = read_dfl_metadata(workspace / "data_src" / "aligned" / "00002_0.jpg")
    assert meta is not None
    assert set(meta) == {
        "face_type",
        "landmarks",
        "source_filename",
        "source_rect",
        "source_landmarks",
        "image_to_face_mat",
    }
    assert meta["source_filename"] == "00002.png"
    assert all(isinstance(v, (str, list)) for v in meta.values())  # plain types only
    src = np.array(meta["source_landmarks"])
    mat = np.array(meta["image_to_face_mat"])
    np.testing.assert_allclose(mat, L.transform_matrix(src, RES, "whole_face"), atol=1e-6)
    np.testing.assert_allclose(L.transform_points(src, mat), meta["landmarks"], atol=1e-3)
    left, top, right, bottom = meta["source_rect"]
    assert left <= src[:, 0].min() and src[:, 0].max() <= right
    assert top <= src[:, 1].min() and src[:, 1].max() <= bottom


def test_drawing_matches_landmarks(workspace: Path) -> None:
    for side, person in zip(("data_src", "data_dst"), demo.PERSONS, strict=True):
        for s in load_faceset(workspace / side / "aligned").samples[:3]:
            img = read_image(s).astype(np.float32)
            lm = s.landmarks
            face = face_masks.hull_mask((RES, RES), lm)
            lips = np.zeros((RES, RES, 1), np.float32)
            cv2.fillPoly(lips, [lm[48:60].astype(np.int32)], 1.0)
            cv2.fillPoly(lips, [lm[60:68].astype(np.int32)], 0.0)
            skin = _region_mean(img, face * (1 - lips))
            assert np.linalg.norm(skin - person.skin) < 45
            assert np.linalg.norm(_region_mean(img, lips) - person.lips) < 45
            eyes = face_masks.eyes_mouth_mask((RES, RES), lm) * (1 - lips)
            eyes[int(lm[48:68, 1].min()) - 2 :] = 0  # eyes only
            assert np.linalg.norm(_region_mean(img, eyes > 0.9) - skin) > 40


def test_src_and_dst_differ(workspace: Path) -> None:
    means = []
    for side in ("data_src", "data_dst"):
        fs = load_faceset(workspace / side / "aligned")
        faces = [
            _region_mean(
                read_image(s).astype(np.float32), face_masks.hull_mask((RES, RES), s.landmarks)
            )
            for s in fs.samples
        ]
        means.append(np.mean(faces, axis=0))
        # Images of one person vary (pose, expression, background).
        imgs = [read_image(s).astype(np.float32) for s in fs.samples]
        assert np.abs(imgs[0] - imgs[1]).mean() > 10
    assert np.linalg.norm(means[0] - means[1]) > 60


def test_deterministic_per_seed(tmp_path: Path) -> None:
    a = demo.make_demo_facesets(tmp_path / "a", count=2, resolution=64, seed=3)
    b = demo.make_demo_facesets(tmp_path / "b", count=2, resolution=64, seed=3)
    c = demo.make_demo_facesets(tmp_path / "c", count=2, resolution=64, seed=4)
    for fa, fb, fc in zip(a, b, c, strict=True):
        for name in ("00001_0.jpg", "00002_0.jpg"):
            assert (fa / name).read_bytes() == (fb / name).read_bytes()
            assert (fa / name).read_bytes() != (fc / name).read_bytes()


def test_refuses_non_empty_folder(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    src, dst = demo.make_demo_facesets(
        tmp_path, count=3, resolution=64, progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(i, 6) for i in range(1, 7)]
    with pytest.raises(demo.DemoError, match="already holds 3 file") as info:
        demo.make_demo_facesets(tmp_path, count=2, resolution=64)
    assert "overwrite" in str(info.value)
    (dst / "keep.txt").write_text("not an image")
    demo.make_demo_facesets(tmp_path, count=2, resolution=64, seed=1, overwrite=True)
    assert sorted(p.name for p in src.iterdir()) == ["00001_0.jpg", "00002_0.jpg"]
    assert sorted(p.name for p in dst.iterdir()) == ["00001_0.jpg", "00002_0.jpg", "keep.txt"]


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="count"):
        demo.make_demo_facesets(tmp_path, count=0)
    with pytest.raises(ValueError, match="resolution"):
        demo.make_demo_facesets(tmp_path, resolution=16)
    (tmp_path / "x" / "data_src").mkdir(parents=True)
    (tmp_path / "x" / "data_src" / "aligned").write_text("a file")
    with pytest.raises(demo.DemoError, match="not a folder"):
        demo.make_demo_facesets(tmp_path / "x", count=1, resolution=64)


@pytest.mark.slow  # a speed figure, not behaviour: kept out of the default suite
def test_speed(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    demo.make_demo_facesets(tmp_path, count=16, resolution=256)
    elapsed = time.perf_counter() - t0
    # About 20 ms per 256 px face on one core; generous for a shared CI machine.
    assert elapsed < 6.0, f"32 faces took {elapsed:.1f} s"


def test_hidden_files_do_not_block_the_demo(tmp_path):
    for side in ("data_src", "data_dst"):
        folder = tmp_path / side / "aligned"
        folder.mkdir(parents=True)
        (folder / ".gitkeep").touch()
    src, _dst = demo.make_demo_facesets(tmp_path, count=2, resolution=64)
    assert (src / ".gitkeep").exists()
    assert len(list(src.glob("*.jpg"))) == 2


# --- dst frames: the faces are cut from them as DFL's extractor does ------------------------


def test_dst_frames_exist(workspace: Path) -> None:
    from dfl.demo.frames import FRAME_SIZE

    frames = sorted(p.name for p in (workspace / "data_dst").glob("*.png"))
    assert frames == [f"{i:05d}.png" for i in range(1, COUNT + 1)]
    first = cv2.imread(str(workspace / "data_dst" / frames[0]))
    assert first.shape == (FRAME_SIZE[1], FRAME_SIZE[0], 3)
    assert not list((workspace / "data_src").glob("*.png"))  # src has aligned faces only


def test_dst_faces_reproject_from_their_frames(workspace: Path) -> None:
    corners = np.array([[0, 0], [RES, 0], [RES, RES], [0, RES]], np.float64)
    for i in range(1, COUNT + 1):
        aligned = workspace / "data_dst" / "aligned" / f"{i:05d}_0.jpg"
        meta = read_dfl_metadata(aligned)
        assert meta is not None and meta["source_filename"] == f"{i:05d}.png"
        frame = cv2.imread(str(workspace / "data_dst" / meta["source_filename"]))
        src = np.array(meta["source_landmarks"], np.float64)
        h, w = frame.shape[:2]
        assert src.shape == (68, 2) and src.min() > 0 and src[:, 0].max() < w
        left, top, right, bottom = meta["source_rect"]
        assert left <= src[:, 0].min() and src[:, 0].max() <= right <= w
        assert top <= src[:, 1].min() and src[:, 1].max() <= bottom <= h
        # The frame landmarks alone give the crop: DFL's transform of them for the face type
        # puts the crop's corners within a pixel of the stored matrix's.
        stored = np.array(meta["image_to_face_mat"])
        again = L.transform_matrix(src, RES, meta["face_type"])
        err = L.transform_points(corners, again, invert=True) - L.transform_points(
            corners, stored, invert=True
        )
        assert np.abs(err).max() < 1.0
        np.testing.assert_allclose(L.transform_points(src, again), meta["landmarks"], atol=1.0)
        # Cutting the frame with it gives the aligned image (up to JPEG).
        crop = cv2.warpAffine(frame, again, (RES, RES), flags=cv2.INTER_LINEAR)
        face = cv2.imread(str(aligned)).astype(np.float32)
        assert np.abs(crop - face).mean() < 3.0
        shift = np.array([[0, 0, 3], [0, 0, 0]])  # three pixels to the right
        moved = cv2.warpAffine(frame, again + shift, (RES, RES))
        assert np.abs(moved - face).mean() > 2 * np.abs(crop - face).mean()


def test_dst_person_moves_a_little(workspace: Path) -> None:
    lms = [
        np.array(read_dfl_metadata(p)["source_landmarks"])
        for p in sorted((workspace / "data_dst" / "aligned").glob("*.jpg"))
    ]
    steps = [np.abs(b - a).mean() for a, b in itertools.pairwise(lms)]
    assert all(0.5 < s < 15 for s in steps), steps


def test_demo_video(tmp_path: Path) -> None:
    import av

    from dfl.demo.frames import DEMO_FPS, make_demo_video

    demo.make_demo_facesets(tmp_path, count=3, resolution=64)
    video = make_demo_video(tmp_path)
    assert video == tmp_path / "data_dst.mp4"
    with av.open(str(video)) as c:
        assert c.streams.video[0].base_rate == DEMO_FPS
        assert sum(1 for _ in c.decode(video=0)) == 3
    stamp = video.stat().st_mtime_ns
    assert make_demo_video(tmp_path) is None  # an existing dst video is kept
    assert video.stat().st_mtime_ns == stamp
    assert make_demo_video(tmp_path, overwrite=True) == video


def test_dst_frames_are_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "data_dst").mkdir()
    cv2.imwrite(str(tmp_path / "data_dst" / "00001.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(demo.DemoError, match="1 frame image"):
        demo.make_demo_facesets(tmp_path, count=2, resolution=64)
    demo.make_demo_facesets(tmp_path, count=2, resolution=64, overwrite=True)
    assert cv2.imread(str(tmp_path / "data_dst" / "00001.png")).shape == (240, 320, 3)
