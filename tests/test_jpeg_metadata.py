"""Tests for dfl.data.jpeg_metadata: DFL APP15 metadata via the allow-list, written back."""

from __future__ import annotations

import builtins
import os
import pickle
import struct
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from dfl.data import jpeg_metadata
from dfl.data.jpeg_metadata import MetadataError, MetadataRefusedError, NotJpegError

FACESET = Path(__file__).parent / "data" / "dfl-faceset"
DFL_FILES = sorted(FACESET.glob("*/*.jpg"))


def _jpeg(size: int = 32) -> bytes:
    img = np.full((size, size, 3), 120, np.uint8)
    ok, enc = cv2.imencode(".jpg", img)
    assert ok
    return enc.tobytes()


def _jpeg_with_payload(path: Path, payload: bytes) -> Path:
    path.write_bytes(jpeg_metadata.insert_app15(_jpeg(), payload))
    return path


class _Hostile:
    """Pickles as a call to ``func(*args)``: what a malicious faceset would carry."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _touch_code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


def test_real_dfl_files_load() -> None:
    assert len(DFL_FILES) == 16
    for path in DFL_FILES:
        header = jpeg_metadata.read_jpeg_header(path)
        assert header.shape == (256, 256)
        meta = header.metadata
        assert meta is not None
        assert meta.keys() == jpeg_metadata.read_dfl_metadata(path).keys()
        assert meta["face_type"] == "whole_face"
        assert np.asarray(meta["landmarks"]).shape == (68, 2)
        assert isinstance(meta["source_rect"], np.ndarray)
        assert meta["source_rect"].dtype == np.int64
        assert meta["image_to_face_mat"].shape == (2, 3)
        assert meta["image_to_face_mat"].dtype == np.float64


def test_roundtrip(tmp_path: Path) -> None:
    img = np.random.default_rng(1).integers(0, 255, (64, 48, 3), dtype=np.uint8)
    meta = {
        "face_type": "whole_face",
        "landmarks": np.arange(136, dtype=np.float32).reshape(68, 2),
        "source_filename": "frame é 01.png",
        "source_rect": np.array([1, 2, 3, 4], dtype=np.int64),
        "image_to_face_mat": np.eye(2, 3),
        "eyebrows_expand_mod": np.float32(1.5),
        "xseg_mask": b"\x89PNG...",
        "nested": {"a": (1, 2.5, True), "b": None},
        "dropped": None,
    }
    path = tmp_path / "face.jpg"
    jpeg_metadata.write_dfl_jpeg(path, img, meta)
    header = jpeg_metadata.read_jpeg_header(path)
    assert header.shape == (64, 48)
    got = header.metadata
    assert got is not None and "dropped" not in got
    assert got["landmarks"] == np.arange(136, dtype=np.float32).reshape(68, 2).tolist()
    assert got["source_rect"] == [1, 2, 3, 4]
    assert got["image_to_face_mat"] == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    assert got["eyebrows_expand_mod"] == 1.5 and type(got["eyebrows_expand_mod"]) is float
    assert got["source_filename"] == "frame é 01.png"
    assert got["xseg_mask"] == b"\x89PNG..."
    assert got["nested"] == {"a": [1, 2.5, True], "b": None}
    decoded = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == img.shape
    assert [p.name for p in tmp_path.iterdir()] == ["face.jpg"]  # no temp file left


def test_written_file_is_dfl_layout(tmp_path: Path) -> None:
    path = tmp_path / "face.jpg"
    jpeg_metadata.write_dfl_jpeg(path, np.zeros((16, 16, 3), np.uint8), {"face_type": "whole_face"})
    data = path.read_bytes()
    # SOI, APP0 (JFIF), then APP15 right after the last APPn.
    assert data[:4] == b"\xff\xd8\xff\xe0" and data[6:11] == b"JFIF\x00"
    app0_len = struct.unpack(">H", data[4:6])[0]
    app15 = 4 + app0_len
    assert data[app15 : app15 + 2] == b"\xff\xef"
    n = struct.unpack(">H", data[app15 + 2 : app15 + 4])[0]
    payload = data[app15 + 4 : app15 + 2 + n]
    assert payload[:2] == b"\x80\x04"  # pickle protocol 4
    assert pickle.loads(payload) == {"face_type": "whole_face"}  # plain pickle reads it (DFL)
    # Re-inserting replaces the segment instead of adding a second one.
    again = jpeg_metadata.insert_app15(data, pickle.dumps({"x": 1}, protocol=4))
    assert again.count(b"\xff\xef") == 1
    assert jpeg_metadata.read_jpeg_header_bytes(again).metadata == {"x": 1}


def test_write_refuses_non_plain_values(tmp_path: Path) -> None:
    path = tmp_path / "bad.jpg"
    img = np.zeros((8, 8, 3), np.uint8)
    for bad in ({"x": object()}, {"x": np.array([object()])}, {"x": {1: 2}}, {"x": {1, 2}}):
        with pytest.raises(MetadataError, match=r"bad\.jpg"):
            jpeg_metadata.write_dfl_jpeg(path, img, bad)
    with pytest.raises(MetadataError, match="65533"):
        jpeg_metadata.write_dfl_jpeg(path, img, {"big": "x" * 70000})
    assert not path.exists()


def test_no_app15_returns_none(tmp_path: Path) -> None:
    path = tmp_path / "plain.jpg"
    path.write_bytes(_jpeg())
    assert jpeg_metadata.read_dfl_metadata(path) is None
    assert jpeg_metadata.read_jpeg_header(path).shape == (32, 32)


def test_other_numpy_pickles_are_allowed(tmp_path: Path) -> None:
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    value = {
        "a": arr,
        "s": np.float64(2.5),
        "i": np.int64(3),
        "set": {1, 2},
        "c": 1 + 2j,
        "raw": b"\x00\x01",
    }
    for protocol in (2, 3, 4, 5):
        path = _jpeg_with_payload(tmp_path / f"p{protocol}.jpg", pickle.dumps(value, protocol))
        got = jpeg_metadata.read_dfl_metadata(path)
        assert got is not None
        np.testing.assert_array_equal(got["a"], arr)
        assert got["s"] == 2.5 and got["i"] == 3 and got["set"] == {1, 2}
        assert got["c"] == 1 + 2j and got["raw"] == b"\x00\x01"


@pytest.mark.parametrize(
    "make",
    [
        lambda m: _Hostile(builtins.eval, _touch_code(m)),
        lambda m: _Hostile(builtins.exec, _touch_code(m)),
        lambda m: _Hostile(os.system, f"touch {m}"),
        lambda m: _Hostile(subprocess.call, ["touch", str(m)]),
        lambda m: _Hostile(Path.touch, m),
        lambda m: _Hostile(np.load, str(m), None, True),
    ],
    ids=["eval", "exec", "os.system", "subprocess", "pathlib", "numpy.load"],
)
def test_hostile_payload_is_refused_and_not_run(tmp_path: Path, make) -> None:
    marker = tmp_path / "pwned"
    path = _jpeg_with_payload(tmp_path / "evil.jpg", pickle.dumps({"face_type": make(marker)}, 4))
    with pytest.raises(MetadataRefusedError) as info:
        jpeg_metadata.read_dfl_metadata(path)
    msg = str(info.value)
    assert "evil.jpg" in msg and "not allowed" in msg and "nothing in the file was run" in msg
    assert isinstance(info.value, MetadataError)
    assert not marker.exists()


def test_hostile_payload_is_live(tmp_path: Path) -> None:
    # The same kind of payload does run under a plain unpickler: the refusal above is real.
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"x": _Hostile(builtins.eval, _touch_code(marker))}, 4)
    _jpeg_with_payload(tmp_path / "evil.jpg", payload)
    pickle.loads(payload)
    assert marker.exists()


def test_hostile_codecs_and_persistent_id_refused(tmp_path: Path) -> None:
    # _codecs.encode is admitted only for latin1 text -> bytes.
    payload = b"\x80\x02c_codecs\nencode\nq\x00X\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R."
    path = _jpeg_with_payload(tmp_path / "codec.jpg", payload)
    with pytest.raises(MetadataError, match=r"codec\.jpg"):
        jpeg_metadata.read_dfl_metadata(path)
    path = _jpeg_with_payload(tmp_path / "pid.jpg", b"\x80\x02X\x01\x00\x00\x00aQ.")
    with pytest.raises(MetadataRefusedError):
        jpeg_metadata.read_dfl_metadata(path)


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00garbage\xff" * 10,
        pickle.dumps({"face_type": "whole_face", "landmarks": [[1.0, 2.0]] * 68}, 4)[:-40],
        pickle.dumps(["not", "a", "dict"], 4),
        b"",
    ],
    ids=["garbage", "truncated", "not-dict", "empty"],
)
def test_damaged_payload(tmp_path: Path, payload: bytes) -> None:
    path = _jpeg_with_payload(tmp_path / "broken.jpg", payload)
    with pytest.raises(MetadataError, match=r"broken\.jpg") as info:
        jpeg_metadata.read_dfl_metadata(path)
    assert not isinstance(info.value, MetadataRefusedError)


def test_not_a_jpeg_and_truncated(tmp_path: Path) -> None:
    png = tmp_path / "x.jpg"
    _, enc = cv2.imencode(".png", np.zeros((4, 4), np.uint8))
    png.write_bytes(enc.tobytes())
    with pytest.raises(NotJpegError, match="not a JPEG"):
        jpeg_metadata.read_dfl_metadata(png)
    real = DFL_FILES[0].read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(real[:300])  # inside the APP15 segment
    with pytest.raises(NotJpegError, match="truncated"):
        jpeg_metadata.read_dfl_metadata(cut)
    with pytest.raises(MetadataError, match=r"missing\.jpg"):
        jpeg_metadata.read_dfl_metadata(tmp_path / "missing.jpg")
