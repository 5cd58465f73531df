"""Tests for dfl.data.faceset: loading DFL and plain facesets, skipping bad files, reading."""

from __future__ import annotations

import builtins
import pickle
import shutil
import struct
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from dfl.data import jpeg_metadata
from dfl.data import landmarks as L
from dfl.data.face_image import read_image
from dfl.data.faceset import FaceSample, FacesetError, load_faceset
from dfl.data.sample_checks import face_type_note, face_type_notes, narrower_faces

FACESET = Path(__file__).parent / "data" / "dfl-faceset"


class _Hostile:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return builtins.eval, (f"open({str(self.marker)!r}, 'w').close()",)


def _write_png(path: Path, image: np.ndarray) -> None:
    ok, enc = cv2.imencode(".png", image)
    assert ok
    path.write_bytes(enc.tobytes())


@pytest.mark.parametrize("side", ["src", "dst"])
def test_dfl_faceset_loads(side: str) -> None:
    calls: list[tuple[int, int]] = []
    fs = load_faceset(FACESET / side, progress=lambda d, t: calls.append((d, t)))
    assert len(fs) == 8 and len(fs.samples) == 8 and fs.skipped == []
    assert fs.skipped_summary() == "" and fs.plain_count == 0
    assert calls[-1] == (8, 8) and len(calls) == 8
    assert [s.path.name for s in fs.samples] == [f"0000{i}_0.jpg" for i in range(1, 9)]
    for s in fs.samples:
        assert s.face_type == "whole_face"
        assert s.shape == (256, 256)
        assert s.landmarks is not None
        assert s.landmarks.shape == (68, 2) and s.landmarks.dtype == np.float32
        assert s.eyebrows_expand_mod == 1.0 and s.xseg_mask is None
        assert s.landmarks.min() > 0 and s.landmarks.max() < 256
    img = read_image(fs.samples[0])
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8


def test_mixed_folder(tmp_path: Path) -> None:
    for name in ("00001_0.jpg", "00002_0.jpg", "00003_0.jpg"):
        shutil.copy(FACESET / "src" / name, tmp_path / name)
    shutil.copy(FACESET / "src" / "00004_0.jpg", tmp_path / "UPPER.JPG")
    _write_png(tmp_path / "plain.png", np.full((40, 30, 3), 90, np.uint8))
    _write_png(tmp_path / "grey.PNG", np.full((20, 24), 200, np.uint8))
    _, enc = cv2.imencode(".jpg", np.zeros((10, 12, 3), np.uint8))
    (tmp_path / "plain.jpeg").write_bytes(enc.tobytes())
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF")  # cut short
    (tmp_path / "garbage.jpg").write_bytes(b"this is not an image at all")
    (tmp_path / "empty.png").write_bytes(b"")
    marker = tmp_path / "pwned"
    evil = pickle.dumps({"face_type": "whole_face", "landmarks": _Hostile(marker)}, 4)
    (tmp_path / "evil.jpg").write_bytes(jpeg_metadata.insert_app15(enc.tobytes(), evil))
    meta = {"face_type": "whole_face", "landmarks": [[1.0, 2.0]] * 5}
    jpeg_metadata.write_dfl_jpeg(tmp_path / "fivepoints.jpg", np.zeros((8, 8, 3), np.uint8), meta)
    flat = {"face_type": "whole_face", "landmarks": [[3.0, 4.0]] * 68}
    jpeg_metadata.write_dfl_jpeg(tmp_path / "flat.jpg", np.zeros((8, 8, 3), np.uint8), flat)
    (tmp_path / "subdir").mkdir()

    fs = load_faceset(tmp_path)
    names = [s.path.name for s in fs.samples]
    assert names == sorted(names)
    assert set(names) == {
        "00001_0.jpg",
        "00002_0.jpg",
        "00003_0.jpg",
        "UPPER.JPG",
        "plain.png",
        "grey.PNG",
        "plain.jpeg",
    }
    by_name = {s.path.name: s for s in fs.samples}
    assert by_name["plain.png"].face_type is None and by_name["plain.png"].landmarks is None
    assert by_name["plain.png"].shape == (40, 30)
    assert by_name["grey.PNG"].shape == (20, 24)
    assert by_name["plain.jpeg"].shape == (10, 12)
    assert by_name["UPPER.JPG"].face_type == "whole_face"
    assert fs.plain_count == 3
    assert read_image(by_name["grey.PNG"]).shape == (20, 24, 3)

    reasons = {p.name: r for p, r in fs.skipped}
    assert set(reasons) == {
        "notes.txt",
        "corrupt.jpg",
        "garbage.jpg",
        "empty.png",
        "evil.jpg",
        "fivepoints.jpg",
        "flat.jpg",
    }
    assert reasons["notes.txt"].startswith("not an image")
    assert reasons["corrupt.jpg"].startswith("unreadable image")
    assert reasons["garbage.jpg"].startswith("unreadable image")
    assert reasons["empty.png"].startswith("unreadable image")
    assert (
        reasons["evil.jpg"].startswith("metadata refused")
        and "builtins.eval" in reasons["evil.jpg"]
    )
    assert reasons["fivepoints.jpg"].startswith("bad landmarks")
    assert reasons["flat.jpg"].startswith("bad landmarks")
    assert not marker.exists()
    summary = fs.skipped_summary()
    assert summary.startswith("7 skipped: 3 unreadable images")
    assert "1 not an image" in summary and "1 with refused metadata" in summary
    assert "2 with bad landmarks" in summary


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FacesetError, match="folder not found") as info:
        load_faceset(tmp_path / "nope")
    assert "nope" in str(info.value) and "dfl demo" in str(info.value)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FacesetError, match="not a folder"):
        load_faceset(tmp_path / "file")


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(FacesetError, match="the folder is empty") as info:
        load_faceset(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_folder_without_usable_faces(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.doc").write_text("x")
    (tmp_path / "c.jpg").write_bytes(b"\x00\x01")
    with pytest.raises(FacesetError) as info:
        load_faceset(tmp_path)
    msg = str(info.value)
    assert f"no faces in {tmp_path}: 3 files skipped (2 not images, 1 unreadable image)" in msg
    assert "a.txt: not an image" in msg and "dfl demo" in msg


def test_metadata_normalisation(tmp_path: Path) -> None:
    mask = cv2.imencode(".png", np.full((16, 16), 255, np.uint8))[1]
    meta = {
        "face_type": "full_face",
        "landmarks": np.random.default_rng(0).uniform(0, 16, (68, 2)),
        "eyebrows_expand_mod": 1.5,
    }
    img = np.zeros((16, 16, 3), np.uint8)
    jpeg_metadata.write_dfl_jpeg(tmp_path / "a.jpg", img, {**meta, "xseg_mask": mask.tobytes()})
    # DFL stores the mask as a numpy uint8 buffer: write such a file with plain pickle.
    payload = pickle.dumps({**meta, "xseg_mask": mask}, 4)
    enc = cv2.imencode(".jpg", img)[1].tobytes()
    (tmp_path / "b.jpg").write_bytes(jpeg_metadata.insert_app15(enc, payload))
    # No face_type key: DFL reads it as full_face.
    jpeg_metadata.write_dfl_jpeg(tmp_path / "c.jpg", img, {"landmarks": meta["landmarks"]})
    fs = load_faceset(tmp_path)
    a, b, c = fs.samples
    for s in (a, b):
        assert s.face_type == "full_face" and s.eyebrows_expand_mod == 1.5
        assert isinstance(s.xseg_mask, bytes) and s.xseg_mask == mask.tobytes()
        decoded = cv2.imdecode(np.frombuffer(s.xseg_mask, np.uint8), cv2.IMREAD_UNCHANGED)
        assert decoded.shape == (16, 16)
    assert c.face_type == "full_face" and c.xseg_mask is None


def test_read_image_variants(tmp_path: Path) -> None:
    rgba = np.zeros((6, 7, 4), np.uint8)
    rgba[..., 2] = 255
    rgba[..., 3] = 10
    path = tmp_path / "ünïcode face.png"
    _write_png(path, rgba)
    img = read_image(path)
    assert img.shape == (6, 7, 3) and img[0, 0].tolist() == [0, 0, 255]
    grey16 = np.full((5, 5), 65535, np.uint16)
    _write_png(tmp_path / "g16.png", grey16)
    img = read_image(tmp_path / "g16.png")
    assert img.shape == (5, 5, 3) and img.dtype == np.uint8 and img.max() == 255
    bad = FaceSample(path=tmp_path / "gone.jpg", shape=(4, 4), face_type=None, landmarks=None)
    with pytest.raises(FacesetError, match=r"gone\.jpg"):
        read_image(bad)
    (tmp_path / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\njunk")
    with pytest.raises(FacesetError, match=r"junk\.png"):
        read_image(tmp_path / "junk.png")


@pytest.mark.slow  # a speed figure, not behaviour: kept out of the default suite
def test_loading_is_fast(tmp_path: Path) -> None:
    src = sorted((FACESET / "src").glob("*.jpg"))
    for i in range(400):
        shutil.copy(src[i % len(src)], tmp_path / f"{i:05d}.jpg")
    t0 = time.perf_counter()
    fs = load_faceset(tmp_path)
    elapsed = time.perf_counter() - t0
    assert len(fs) == 400
    assert elapsed < 1.0, f"loading 400 faces took {elapsed:.2f} s"


def _write_pak(folder: Path, files: list[Path], configs: list[object]) -> Path:
    """faceset.pak as DFL lays it out: u64 version 1, u64 list length, the pickled list, N+1 u64
    offsets (relative to the data start; the last one absolute), the files' bytes."""
    payload = pickle.dumps(configs, 4)
    blobs = [p.read_bytes() for p in files]
    data_start = 16 + len(payload) + 8 * (len(blobs) + 1)
    starts = np.cumsum([0, *map(len, blobs)]).tolist()
    offsets = [*starts[:-1], data_start + starts[-1]]
    table = struct.pack(f"<{len(offsets)}Q", *offsets)
    path = folder / "faceset.pak"
    path.write_bytes(struct.pack("<QQ", 1, len(payload)) + payload + table + b"".join(blobs))
    return path


def _pak_config(path: Path) -> dict[str, object]:
    meta = jpeg_metadata.read_dfl_metadata(path)
    assert meta is not None
    return {
        "sample_type": 1,
        "filename": path.name,
        "face_type": 4,  # DFL's FaceType.WHOLE_FACE
        "shape": (256, 256, 3),
        "landmarks": np.asarray(meta["landmarks"]).tolist(),
        "seg_ie_polys": {"polys": []},
        "xseg_mask": None,
        "xseg_mask_compressed": None,
        "eyebrows_expand_mod": 1.0,
        "source_filename": meta["source_filename"],
        "person_name": None,
    }


def test_faceset_pak_wins_over_loose_images(tmp_path: Path) -> None:
    files = sorted((FACESET / "dst").glob("*.jpg"))
    pak = _write_pak(tmp_path, files[:5], [_pak_config(p) for p in files[:5]])
    shutil.copy(files[7], tmp_path / files[7].name)  # DFL ignores images beside a pak
    fs = load_faceset(tmp_path)
    assert fs.pak == pak and len(fs) == 5
    assert [s.path for s in fs.samples] == [pak / p.name for p in files[:5]]
    assert all(s.face_type == "whole_face" and s.packed is not None for s in fs.samples)
    assert fs.skipped == [(tmp_path / files[7].name, "ignored beside faceset.pak")]
    assert fs.skipped_summary() == "1 skipped: 1 image ignored beside faceset.pak"
    expected = read_image(files[2])
    np.testing.assert_array_equal(read_image(fs.samples[2]), expected)
    pak.write_bytes(pak.read_bytes()[:-10])  # cut the last image short after loading
    with pytest.raises(FacesetError, match=r"faceset\.pak/00005_0\.jpg.*truncated"):
        read_image(fs.samples[4])


def test_hostile_faceset_pak_is_skipped(tmp_path: Path) -> None:
    files = sorted((FACESET / "dst").glob("*.jpg"))
    marker = tmp_path / "pwned"
    config = {**_pak_config(files[0]), "landmarks": _Hostile(marker)}
    pak = _write_pak(tmp_path, files[:1], [config])
    shutil.copy(files[1], tmp_path / files[1].name)
    fs = load_faceset(tmp_path)  # the loose image is used instead
    assert fs.pak is None and [s.path.name for s in fs.samples] == [files[1].name]
    ((path, reason),) = fs.skipped
    assert path == pak and reason.startswith("metadata refused: its sample list asks for builtins")
    assert not marker.exists()


def test_face_type_note_counts_the_narrower_faces() -> None:
    lm = np.random.default_rng(0).uniform(0, 64, (68, 2)).astype(np.float32)

    def face(name: str, face_type: str | None) -> FaceSample:
        landmarks = None if face_type is None else lm
        return FaceSample(path=Path(name), shape=(64, 64), face_type=face_type, landmarks=landmarks)

    full = [face("a/1.jpg", L.FULL_FACE), face("a/2.jpg", L.FULL_FACE), face("a/p.png", None)]
    for ok in (L.HALF_FACE, L.MIDFULL_FACE, L.FULL_FACE):
        assert face_type_note(ok, {"src": full}) is None
    for wider in (L.WHOLE_FACE, L.HEAD):
        note = face_type_note(wider, {"src": full, "dst": full[2:]})
        assert note is not None
        assert note.startswith(f"faces stored narrower than the model's '{wider}': src 2 of 3 ")
        assert "(2 'full_face')" in note and "dst" not in note
    mixed = [face("b/1.jpg", L.HALF_FACE), face("b/2.jpg", L.WHOLE_FACE), face("b/3.jpg", L.HEAD)]
    note = face_type_note(L.HEAD, {"src": full, "dst": mixed})
    assert "src 2 of 3 (2 'full_face'); dst 2 of 3 (1 'half_face', 1 'whole_face')" in note
    wide = [face("c.jpg", L.HEAD_NO_ALIGN), face("d.jpg", L.MARK_ONLY)]
    assert narrower_faces(wide, L.HEAD) == {}
    assert narrower_faces([face("e.jpg", L.FULL_FACE_NO_ALIGN)], L.FULL_FACE) == {}
    both = face_type_notes([("src", full, L.WHOLE_FACE), ("dst", mixed, L.WHOLE_FACE)])
    assert len(both) == 1 and "src 2 of 3" in both[0] and "dst 1 of 3 (1 'half_face')" in both[0]


def test_hidden_files_are_ignored_silently(tmp_path):
    import shutil

    for jpg in sorted((Path(__file__).parent / "data" / "dfl-faceset" / "src").glob("*.jpg"))[:2]:
        shutil.copy(jpg, tmp_path / jpg.name)
    (tmp_path / ".gitkeep").touch()
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x01")
    faceset = load_faceset(tmp_path)
    assert len(faceset.samples) == 2
    assert faceset.skipped == []
