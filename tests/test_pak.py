"""Tests for dfl.data.pak and faceset.pak loading: DFL's packed faceset, read without running it."""

from __future__ import annotations

import builtins
import enum
import os
import pickle
import struct
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from dfl.data import jpeg_metadata
from dfl.data import landmarks as L
from dfl.data.augment import AugmentConfig
from dfl.data.batcher import BatchProducer
from dfl.data.face_image import read_image
from dfl.data.faceset import FacesetError, load_faceset
from dfl.data.pak import PAK_FILENAME, PakError, PakRefusedError, read_pak

FACESET = Path(__file__).parent / "data" / "dfl-faceset"
SRC_FILES = sorted((FACESET / "src").glob("*.jpg"))


@pytest.fixture(scope="module")
def dfl_enums() -> Iterator[tuple[Any, Any]]:
    """DFL's IntEnums under their real module names, so pickles name them exactly as DFL's do."""
    sample_type = enum.IntEnum(
        "SampleType", {"IMAGE": 0, "FACE": 1}, module="samplelib.Sample", qualname="SampleType"
    )
    face_type = enum.IntEnum(
        "FaceType",
        {name.upper(): code for name, code in L.FACE_TYPE_RANK.items()},
        module="facelib.FaceType",
        qualname="FaceType",
    )
    modules = {
        "samplelib": types.ModuleType("samplelib"),
        "samplelib.Sample": types.ModuleType("samplelib.Sample"),
        "facelib": types.ModuleType("facelib"),
        "facelib.FaceType": types.ModuleType("facelib.FaceType"),
    }
    modules["samplelib.Sample"].SampleType = sample_type  # type: ignore[attr-defined]
    modules["facelib.FaceType"].FaceType = face_type  # type: ignore[attr-defined]
    assert not set(modules) & set(sys.modules)
    sys.modules.update(modules)
    try:
        yield sample_type, face_type
    finally:
        for name in modules:
            del sys.modules[name]


def dfl_config(path: Path, enums: tuple[Any, Any], **overrides: Any) -> dict[str, Any]:
    """A sample config as DFL's Sample.get_config() writes it for an aligned JPEG."""
    sample_type, face_type = enums
    meta = jpeg_metadata.read_dfl_metadata(path)
    assert meta is not None
    config = {
        "sample_type": sample_type.FACE,
        "filename": path.name,
        "face_type": face_type[meta["face_type"].upper()],
        "shape": (256, 256, 3),
        "landmarks": np.asarray(meta["landmarks"]).tolist(),
        "seg_ie_polys": {"polys": []},
        "xseg_mask": None,
        "xseg_mask_compressed": None,
        "eyebrows_expand_mod": 1.0,
        "source_filename": meta.get("source_filename"),
        "person_name": None,
    }
    config.update(overrides)
    return config


def write_pak(
    path: Path,
    blobs: list[bytes],
    payload: bytes,
    *,
    version: int = 1,
    absolute_end: bool = True,
) -> Path:
    """faceset.pak by hand: u64 version, u64 len(payload), payload, N+1 u64 offsets (the first N
    relative to the data start, the last absolute as DFL writes it), then the files' bytes."""
    head = struct.pack("<QQ", version, len(payload)) + payload
    data_start = len(head) + 8 * (len(blobs) + 1)
    offsets, pos = [], 0
    for blob in blobs:
        offsets.append(pos)
        pos += len(blob)
    offsets.append(data_start + pos if absolute_end else pos)
    path.write_bytes(head + struct.pack(f"<{len(offsets)}Q", *offsets) + b"".join(blobs))
    return path


def pack(folder: Path, configs: list[Any], blobs: list[bytes], **kw: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_pak(folder / PAK_FILENAME, blobs, pickle.dumps(configs, 4), **kw)


def pack_src(folder: Path, enums: tuple[Any, Any], files: list[Path] = SRC_FILES) -> Path:
    return pack(folder, [dfl_config(p, enums) for p in files], [p.read_bytes() for p in files])


class _Hostile:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",)


def test_read_pak_layout(tmp_path: Path, dfl_enums: tuple[Any, Any]) -> None:
    pak = read_pak(pack_src(tmp_path, dfl_enums))
    assert pak.version == 1 and len(pak.entries) == len(SRC_FILES) == 8
    for entry, path in zip(pak.entries, SRC_FILES, strict=True):
        assert entry.name == path.name and entry.image_problem == ""
        assert entry.config["sample_type"] == 1  # DFL's IntEnum members read as plain ints
        assert type(entry.config["face_type"]) is int and entry.config["face_type"] == 4
        assert entry.image is not None and entry.image.read() == path.read_bytes()


def test_relative_last_offset_is_accepted(tmp_path: Path, dfl_enums: tuple[Any, Any]) -> None:
    files = SRC_FILES[:2]
    configs = [dfl_config(p, dfl_enums) for p in files]
    path = pack(tmp_path, configs, [p.read_bytes() for p in files], absolute_end=False)
    entries = read_pak(path).entries
    assert [e.image.read() for e in entries if e.image] == [p.read_bytes() for p in files]


def test_packed_faceset_loads_like_the_jpegs(tmp_path: Path, dfl_enums: tuple[Any, Any]) -> None:
    pak_path = pack_src(tmp_path / "aligned", dfl_enums)
    calls: list[tuple[int, int]] = []
    fs = load_faceset(tmp_path / "aligned", progress=lambda d, t: calls.append((d, t)))
    loose = load_faceset(FACESET / "src")
    assert fs.pak == pak_path and fs.skipped == [] and calls[-1] == (8, 8)
    assert [s.path for s in fs.samples] == [pak_path / p.name for p in SRC_FILES]
    for packed, plain in zip(fs.samples, loose.samples, strict=True):
        assert packed.face_type == plain.face_type == "whole_face"
        assert packed.shape == plain.shape == (256, 256)
        np.testing.assert_allclose(packed.landmarks, plain.landmarks)
        assert packed.packed is not None and plain.packed is None
        np.testing.assert_array_equal(read_image(packed), read_image(plain))


def test_hostile_pak_is_refused_without_running(tmp_path: Path, dfl_enums: tuple[Any, Any]) -> None:
    marker = tmp_path / "pwned"
    config = dfl_config(SRC_FILES[0], dfl_enums, landmarks=_Hostile(marker))
    path = pack(tmp_path / "evil", [config], [SRC_FILES[0].read_bytes()])
    with pytest.raises(PakRefusedError) as info:
        read_pak(path)
    assert "builtins.exec" in str(info.value) and str(path) in str(info.value)
    assert "nothing in the file was run" in str(info.value)
    with pytest.raises(FacesetError) as fs_info:
        load_faceset(tmp_path / "evil")
    msg = str(fs_info.value)
    assert "faceset.pak: metadata refused" in msg and "builtins.exec" in msg
    assert not marker.exists()


class _Call:
    """Pickles as ``func(*args)``."""

    def __init__(self, func: Any, *args: Any):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def test_other_globals_are_refused(tmp_path: Path, dfl_enums: tuple[Any, Any]) -> None:
    payload = pickle.dumps([{"a": _Call(os.system, "echo pwned")}], 4)
    path = write_pak(tmp_path / PAK_FILENAME, [b"x"], payload)
    with pytest.raises(PakRefusedError, match=r"asks for (posix|nt)\.system"):
        read_pak(path)
    # DFL's enum classes are admitted only as "the int value": anything else is damage.
    payload = pickle.dumps([{"face_type": _Call(dfl_enums[1], "whole_face")}], 4)
    path = write_pak(tmp_path / PAK_FILENAME, [b"x"], payload)
    with pytest.raises(PakError, match="damaged sample list"):
        read_pak(path)
    # Outside a pak (JPEG metadata) DFL's enums are not admitted at all.
    with pytest.raises(jpeg_metadata.MetadataRefusedError, match=r"facelib\.FaceType\.FaceType"):
        jpeg_metadata.unpickle_metadata(pickle.dumps({"face_type": dfl_enums[1](4)}, 4))


def test_whole_pak_problems(tmp_path: Path, dfl_enums: tuple[Any, Any]) -> None:
    blob = SRC_FILES[0].read_bytes()
    payload = pickle.dumps([dfl_config(SRC_FILES[0], dfl_enums)], 4)
    full = write_pak(tmp_path / "full.pak", [blob], payload).read_bytes()
    (tmp_path / "cut.pak").write_bytes(full[: 16 + len(payload) // 2])
    (tmp_path / "no_table.pak").write_bytes(full[: 16 + len(payload) + 4])
    (tmp_path / "tiny.pak").write_bytes(b"\x01\x00")
    cases = [
        ("unknown pak version 2", write_pak(tmp_path / "v2.pak", [blob], payload, version=2)),
        ("damaged sample list", write_pak(tmp_path / "garbage.pak", [blob], b"\x80\x04garbage")),
        ("not a list", write_pak(tmp_path / "dict.pak", [blob], pickle.dumps({"a": 1}, 4))),
        ("ends inside its sample list", tmp_path / "cut.pak"),
        ("ends inside its offset table", tmp_path / "no_table.pak"),
        ("ends inside its header", tmp_path / "tiny.pak"),
    ]
    for words, path in cases:
        with pytest.raises(PakError, match=words) as info:
            read_pak(path)
        assert path.name in str(info.value)
    with pytest.raises(PakError, match="cannot read"):
        read_pak(tmp_path / "missing.pak")


def test_unusable_pak_falls_back_to_the_loose_images(
    tmp_path: Path, dfl_enums: tuple[Any, Any]
) -> None:
    folder = tmp_path / "aligned"
    pack_src(folder, dfl_enums)
    data = bytearray((folder / PAK_FILENAME).read_bytes())
    data[0] = 9  # version 9
    (folder / PAK_FILENAME).write_bytes(bytes(data))
    for path in SRC_FILES[:3]:
        (folder / path.name).write_bytes(path.read_bytes())
    fs = load_faceset(folder)
    assert fs.pak is None and len(fs) == 3
    assert fs.skipped == [
        (folder / PAK_FILENAME, "unusable packed faceset: unknown pak version 9 (expected 1)")
    ]
    assert fs.skipped_summary() == "1 skipped: 1 unusable faceset.pak"


def test_entries_are_skipped_with_reasons(tmp_path: Path, dfl_enums: tuple[Any, Any]) -> None:
    good = [dfl_config(p, dfl_enums) for p in SRC_FILES[:3]]
    blobs = [p.read_bytes() for p in SRC_FILES[:3]]
    mask = cv2.imencode(".png", np.full((16, 16), 255, np.uint8))[1]  # as DFL keeps it
    good[1]["xseg_mask_compressed"] = mask
    good[2]["shape"] = None  # read from the JPEG header instead
    configs = [
        *good,
        "not a dict",
        dfl_config(SRC_FILES[3], dfl_enums),  # with no bytes
        dfl_config(SRC_FILES[4], dfl_enums, landmarks=[[1.0, 2.0]] * 5),
        dfl_config(SRC_FILES[5], dfl_enums, filename="../../escape.jpg"),
        dfl_config(SRC_FILES[6], dfl_enums, person_name="alice"),
        dfl_config(SRC_FILES[6], dfl_enums, filename=SRC_FILES[0].name),  # a duplicate name
        dfl_config(SRC_FILES[7], dfl_enums),  # its bytes are cut off
    ]
    blobs += [
        SRC_FILES[0].read_bytes(),
        b"",
        *(p.read_bytes() for p in SRC_FILES[4:7]),
        SRC_FILES[6].read_bytes(),
        SRC_FILES[7].read_bytes(),
    ]
    folder = tmp_path / "aligned"
    pak_path = pack(folder, configs, blobs)
    data = pak_path.read_bytes()
    pak_path.write_bytes(data[:-100])  # truncate the last image
    (folder / "beside.jpg").write_bytes(SRC_FILES[0].read_bytes())
    (folder / "notes.txt").write_text("hello")

    fs = load_faceset(folder)
    names = [s.path.relative_to(pak_path).as_posix() for s in fs.samples]
    assert names == [
        *(p.name for p in SRC_FILES[:3]),
        "escape.jpg",
        f"alice/{SRC_FILES[6].name}",
        f"{SRC_FILES[0].name}#8",
    ]
    assert fs.samples[1].xseg_mask == mask.tobytes()
    assert fs.samples[2].shape == (256, 256)
    reasons = {p.name: r for p, r in fs.skipped}
    assert reasons["entry 3"].startswith("damaged metadata: its sample config is a str")
    assert reasons[SRC_FILES[3].name].startswith("unreadable image: its image is empty")
    assert reasons[SRC_FILES[4].name].startswith("bad landmarks")
    assert reasons[SRC_FILES[7].name].startswith("unreadable image: its bytes lie outside")
    assert reasons["beside.jpg"] == "ignored beside faceset.pak"
    assert reasons["notes.txt"] == "not an image: .txt"
    assert "1 image ignored beside faceset.pak" in fs.skipped_summary()


def test_unknown_face_type_code(tmp_path: Path, dfl_enums: tuple[Any, Any]) -> None:
    configs = [dfl_config(p, dfl_enums) for p in SRC_FILES[:2]]
    configs[1]["face_type"] = 7
    pack(tmp_path, configs, [p.read_bytes() for p in SRC_FILES[:2]])
    fs = load_faceset(tmp_path)
    assert len(fs) == 1
    assert fs.skipped[0][1] == "damaged metadata: unknown face_type code 7"


def test_batches_from_a_packed_faceset(tmp_path: Path, dfl_enums: tuple[Any, Any]) -> None:
    pack_src(tmp_path / "src", dfl_enums, SRC_FILES[:4])
    src = load_faceset(tmp_path / "src").samples
    dst = load_faceset(FACESET / "dst").samples[:4]
    cfg = AugmentConfig(64, L.FULL_FACE)
    with BatchProducer(src, dst, cfg, cfg, 2, 0, workers=0) as producer:
        batch = producer.get()
    assert batch.src.target.shape == (2, 64, 64, 3)
    assert (batch.src.mask.mean(axis=(1, 2, 3)) > 0.3).all()
