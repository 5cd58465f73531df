"""Tests for dfl.data.landmarks: face types, alignment matrices and masks on real DFL faces."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dfl.data import face_masks, head_pose
from dfl.data import landmarks as L
from dfl.data.jpeg_metadata import read_dfl_metadata

FACESET = Path(__file__).parent / "data" / "dfl-faceset"
FILES = sorted(FACESET.glob("*/*.jpg"))
SIZE = 256


def _meta(path: Path) -> dict:
    meta = read_dfl_metadata(path)
    assert meta is not None
    return meta


@pytest.fixture(scope="module")
def faces() -> list[dict]:
    return [_meta(p) for p in FILES]


def _scale(mat: np.ndarray) -> float:
    return float(np.sqrt(abs(np.linalg.det(mat[:, :2]))))


def test_face_type_codes() -> None:
    assert L.face_type_from_code("wf") == L.WHOLE_FACE
    assert L.face_type_from_code("F") == L.FULL_FACE
    assert L.face_type_from_code("head") == L.HEAD
    assert L.face_type_from_code("midfull_face") == L.MIDFULL_FACE
    assert set(L.FACE_TYPE_CODES) == {"h", "mf", "f", "wf", "head"}
    assert all(L.FACE_TYPE_TO_CODE[v] == k for k, v in L.FACE_TYPE_CODES.items())
    assert L.FACE_TYPE_PADDING[L.FULL_FACE] == (0.2109375, False)
    with pytest.raises(ValueError, match="unknown face type"):
        L.face_type_from_code("xx")
    with pytest.raises(ValueError, match="no crop"):
        L.transform_matrix(np.zeros((68, 2)) + np.arange(68)[:, None], 64, "mark_only")


def test_umeyama_recovers_similarity() -> None:
    rng = np.random.default_rng(0)
    src = rng.normal(size=(33, 2))
    ang, s, t = 0.3, 2.5, np.array([4.0, -1.0])
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    dst = s * src @ rot.T + t
    m = L.umeyama(src, dst)
    np.testing.assert_allclose(m[:2, :2], s * rot, atol=1e-9)
    np.testing.assert_allclose(m[:2, 2], t, atol=1e-9)


def test_source_landmarks_reproduce_dfl_matrix(faces: list[dict]) -> None:
    # DFL stored image_to_face_mat = get_transform_mat(source_landmarks, 256, whole_face).
    for meta in faces:
        mat = L.transform_matrix(np.array(meta["source_landmarks"]), SIZE, "whole_face")
        np.testing.assert_allclose(mat, meta["image_to_face_mat"], atol=1e-3)


def test_whole_face_realignment_is_identity(faces: list[dict]) -> None:
    for meta in faces:
        mat = L.transform_matrix(np.array(meta["landmarks"]), SIZE, "wf")
        assert mat.shape == (2, 3) and mat.dtype == np.float64
        np.testing.assert_allclose(mat, np.eye(2, 3), atol=1e-3)


def test_coverage_order_and_centre(faces: list[dict]) -> None:
    lm = np.array(faces[0]["landmarks"])
    scales = {ft: _scale(L.transform_matrix(lm, SIZE, ft)) for ft in L.FACE_TYPE_PADDING}
    # Tighter face types zoom in further; whole_face at its own size is 1.
    assert scales["half_face"] > scales["midfull_face"] > scales["full_face"] > 1.0
    assert scales["whole_face"] == pytest.approx(1.0, abs=1e-3)
    assert scales["head"] < 1.0
    assert scales["full_face_no_align"] == pytest.approx(scales["full_face"], rel=1e-6)
    # A full-face crop keeps the face centre (nose bridge) near the crop centre.
    for meta in faces:
        lm = np.array(meta["landmarks"])
        mat = L.transform_matrix(lm, SIZE, "f")
        nose = L.transform_points(lm[30:31], mat)[0]
        assert np.all(np.abs(nose - SIZE / 2) < SIZE * 0.15)
        inside = L.transform_points(lm, mat)
        assert inside.min() > 0 and inside.max() < SIZE


def test_no_align_is_axis_aligned() -> None:
    lm = np.array(_meta(FILES[0])["landmarks"])
    centre = lm.mean(axis=0)
    rot = cv2.getRotationMatrix2D(tuple(centre), 20.0, 1.0)
    tilted = L.transform_points(lm, rot)
    mat = L.transform_matrix(tilted, 128, "full_face_no_align")
    assert abs(mat[0, 1]) < 1e-9 and abs(mat[1, 0]) < 1e-9
    aligned = L.transform_matrix(tilted, 128, "full_face")
    assert abs(aligned[0, 1]) > 0.1


def test_head_shifts_up_and_with_yaw() -> None:
    lm = np.array(_meta(FILES[0])["landmarks"])
    wf = L.transform_matrix(lm, SIZE, "whole_face")
    head = L.transform_matrix(lm, SIZE, "head")
    # The head crop's centre lies above the whole-face crop's centre in the source image.
    c_wf = L.transform_points([(SIZE / 2, SIZE / 2)], wf, invert=True)[0]
    c_head = L.transform_points([(SIZE / 2, SIZE / 2)], head, invert=True)[0]
    assert c_head[1] < c_wf[1]


def test_transform_points_roundtrip() -> None:
    mat = np.array([[1.2, 0.1, 3.0], [-0.1, 1.2, -4.0]])
    pts = np.array([[0.0, 0.0], [10.0, 5.0], [3.0, 7.0]])
    back = L.transform_points(L.transform_points(pts, mat), mat, invert=True)
    np.testing.assert_allclose(back, pts, atol=1e-9)


def test_hull_mask(faces: list[dict]) -> None:
    for meta in faces[::4]:
        lm = np.array(meta["landmarks"])
        mask = face_masks.hull_mask((SIZE, SIZE), lm)
        assert mask.shape == (SIZE, SIZE, 1) and mask.dtype == np.float32
        assert set(np.unique(mask)) <= {0.0, 1.0}
        frac = mask.mean()
        assert 0.2 < frac < 0.8
        # Nose tip inside, corners outside.
        x, y = lm[30].astype(int)
        assert mask[y, x, 0] == 1.0
        assert mask[0, 0, 0] == 0.0 and mask[-1, -1, 0] == 0.0
        # Bigger brow push -> the mask reaches higher.
        tall = face_masks.hull_mask((SIZE, SIZE), lm, eyebrows_expand_mod=2.0)
        assert tall.sum() > mask.sum()
        assert np.all(tall >= mask)


def test_expand_eyebrows_moves_brows_up() -> None:
    lm = np.array(_meta(FILES[0])["landmarks"])
    out = face_masks.expand_eyebrows(lm, 1.0)
    assert out.dtype.kind == "i"
    assert np.all(out[17:27, 1] <= np.trunc(lm[17:27, 1]))
    np.testing.assert_array_equal(out[:17], np.trunc(lm[:17]).astype(int))


def test_eyes_mouth_mask(faces: list[dict]) -> None:
    lm = np.array(faces[0]["landmarks"])
    em = face_masks.eyes_mouth_mask((SIZE, SIZE), lm)
    assert em.shape == (SIZE, SIZE, 1) and em.dtype == np.float32
    assert em.min() >= 0.0 and em.max() <= 1.0
    eye = lm[36:42].mean(axis=0).astype(int)
    mouth = lm[60:68].mean(axis=0).astype(int)
    nose = lm[30].astype(int)
    assert em[eye[1], eye[0], 0] > 0.5
    assert em[mouth[1], mouth[0], 0] > 0.5
    assert em[nose[1], nose[0], 0] < 0.05
    assert 0.005 < em.mean() < 0.2
    # Multiplying by the binarised face mask keeps what lies inside the face.
    face = face_masks.hull_mask((SIZE, SIZE), lm) * 0.3
    masked = face_masks.eyes_mouth_mask((SIZE, SIZE), lm, face_mask=face)
    np.testing.assert_array_equal(masked, em * (face != 0))
    empty = face_masks.eyes_mouth_mask((SIZE, SIZE), lm, face_mask=np.zeros((SIZE, SIZE)))
    assert empty.max() == 0.0


def test_small_sizes_work() -> None:
    lm = np.array(_meta(FILES[0])["landmarks"]) / 16.0
    assert face_masks.eyes_mouth_mask((16, 16), lm).shape == (16, 16, 1)
    assert face_masks.hull_mask((16, 16), lm).sum() > 0


def test_pose_estimates(faces: list[dict]) -> None:
    lm = np.array(faces[0]["landmarks"])
    pitch, yaw, roll = head_pose.estimate_pitch_yaw_roll(lm, SIZE)
    assert all(abs(v) <= np.pi / 2 for v in (pitch, yaw, roll))
    assert abs(yaw) < 0.5
    mirrored = lm.copy()
    mirrored[:, 0] = SIZE - mirrored[:, 0]
    assert L.estimate_averaged_yaw(mirrored) == pytest.approx(-L.estimate_averaged_yaw(lm))
    assert isinstance(head_pose.estimate_yaw(lm, SIZE), float)


def test_bad_landmarks() -> None:
    with pytest.raises(ValueError, match="68, 2"):
        L.transform_matrix(np.zeros((5, 2)), 64, "f")
    with pytest.raises(ValueError, match="degenerate"):
        L.transform_matrix(np.zeros((68, 2)), 64, "f")
