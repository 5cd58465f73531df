"""Model store: state.json, checkpoints and manifests, loading fallbacks, backups, lock."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dfl.store import checkpoint_state as modelstate
from dfl.store import fsutil
from dfl.store import model_store as state
from dfl.store.fsutil import DiskFullError
from dfl.store.model_store import (
    ModelLockedError,
    ModelState,
    ModelStore,
    NoUsableStateError,
    StateError,
)

K_LOSSES = 2


def make_state(iteration: int = 100, **kw) -> ModelState:
    options = {"resolution": 128, "archi": "liae-ud", "lr_dropout": False, "ct_mode": None}
    return ModelState(
        model_type="SAEHD", name="me", iteration=iteration, options=options, device="0", **kw
    )


def make_arrays(seed: int) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {
        "encoder": {
            "down1/conv1/weight:0": rng.standard_normal((3, 3, 3, 8), dtype=np.float32),
            "down1/conv1/bias:0": rng.standard_normal(8, dtype=np.float32),
        },
        "decoder_src": {"out/weight:0": rng.standard_normal((4, 4), dtype=np.float32)},
        "optimizer": {
            "iters": np.array(seed, dtype=np.int64),
            "ms_down1/conv1/weight_0": rng.standard_normal((3, 3, 3, 8)).astype(np.float16),
        },
        "preview_samples": {"warped_src": rng.integers(0, 255, (2, 8, 8, 3), dtype=np.uint8)},
    }


def assert_same_arrays(loaded: state.Loaded, arrays: dict[str, dict[str, np.ndarray]]) -> None:
    assert set(loaded.keys) == set(arrays)
    for key, group in arrays.items():
        got = loaded.arrays(key)
        assert set(got) == set(group)
        for name, array in group.items():
            assert got[name].dtype == array.dtype
            assert got[name].shape == array.shape
            assert got[name].tobytes() == array.tobytes()


def save(store: ModelStore, iteration: int, seed: int | None = None, **kw) -> Path:
    return store.save(
        make_state(iteration),
        make_arrays(iteration if seed is None else seed),
        summary_text=f"summary at {iteration}\n",
        loss_rows=iteration,
        **kw,
    )


@pytest.fixture(autouse=True)
def _cheap_fsync(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """fsync costs milliseconds on a busy disk; tests that need it ask for `real_fsync`."""
    if "real_fsync" not in request.fixturenames:
        monkeypatch.setattr(os, "fsync", lambda fd: None)


@pytest.fixture
def real_fsync() -> None:
    """Keep the real os.fsync for this test."""


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "model" / "me_SAEHD")


# ------------------------------------------------------------------ ModelState


def test_state_json_round_trip() -> None:
    s = make_state(1234, backend="jax", saved_at="2024-01-02T03:04:05+00:00")
    again = ModelState.from_json(s.to_json())
    assert again == s
    assert list(again.options) == list(s.options)  # option order kept (summary box order)
    assert json.loads(s.to_json())["schema_version"] == modelstate.SCHEMA_VERSION


@pytest.mark.parametrize("missing", ["model_type", "iteration", "options", "device", "created_at"])
def test_state_missing_field(missing: str) -> None:
    data = make_state().to_dict()
    del data[missing]
    with pytest.raises(StateError, match=f"missing field.*{missing}"):
        ModelState.from_json(json.dumps(data))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("iteration", "7", "iteration"),
        ("iteration", True, "iteration"),
        ("iteration", -1, "iteration"),
        ("options", [], "options"),
        ("device", "gpu0", "device"),
        ("model_type", "", "model_type"),
        ("created_at", "yesterday", "created_at"),
    ],
)
def test_state_wrong_field(field: str, value: object, message: str) -> None:
    data = make_state().to_dict()
    data[field] = value
    with pytest.raises(StateError, match=message):
        ModelState.from_json(json.dumps(data))


@pytest.mark.parametrize("bad", [(1, 2), float("nan"), object(), {1: "x"}])
def test_state_options_must_be_plain(bad: object) -> None:
    with pytest.raises(StateError, match="options"):
        ModelState("SAEHD", "me", options={"x": bad})


def test_state_not_json() -> None:
    with pytest.raises(StateError, match="not valid JSON"):
        ModelState.from_json(b"\x80{")
    with pytest.raises(StateError, match="JSON object"):
        ModelState.from_json("[1]")


def test_state_newer_schema_refused() -> None:
    data = make_state().to_dict()
    data["schema_version"] = modelstate.SCHEMA_VERSION + 1
    with pytest.raises(StateError, match="made by a newer dfl"):
        ModelState.from_json(json.dumps(data))


def test_state_migration(monkeypatch: pytest.MonkeyPatch) -> None:
    old = make_state().to_dict()
    old["iter"] = old.pop("iteration")  # pretend the current schema called it "iter"

    def one_to_two(d: dict) -> dict:
        d["iteration"] = d.pop("iter")
        return d

    current = modelstate.SCHEMA_VERSION
    old["schema_version"] = current
    monkeypatch.setattr(modelstate, "SCHEMA_VERSION", current + 1)
    monkeypatch.setattr(modelstate, "MIGRATIONS", {current: one_to_two})
    migrated = ModelState.from_json(json.dumps(old))
    assert migrated.iteration == 100
    assert migrated.schema_version == current + 1

    monkeypatch.setattr(modelstate, "MIGRATIONS", {})
    with pytest.raises(StateError, match=f"no migration from state schema {current}"):
        ModelState.from_json(json.dumps(old))


def test_schema_1_states_load_without_faceset_records():
    old = make_state().to_dict()
    old["schema_version"] = 1
    del old["facesets"]
    state = ModelState.from_json(json.dumps(old))
    assert state.facesets == {} and state.schema_version == modelstate.SCHEMA_VERSION


# ------------------------------------------------------------------ save / load


def test_save_load_round_trip(store: ModelStore, real_fsync: None) -> None:
    assert not store.has_state()
    calls: list[tuple[int, int, str]] = []
    arrays = make_arrays(7)
    path = store.save(
        make_state(100),
        arrays,
        summary_text="box\n",
        loss_rows=42,
        progress=lambda *a: calls.append(a),
    )
    assert path == store.checkpoints_dir / "000000100"
    assert store.has_state()
    assert (store.folder / state.CURRENT_FILE).read_text().strip() == "000000100"
    assert store.summary_path.read_text() == "box\n"
    assert calls[-1][:2] == (len(arrays) + 2, len(arrays) + 2)
    assert calls[-1][2] == state.MANIFEST_FILE
    assert [c[0] for c in calls] == list(range(1, len(arrays) + 3))

    loaded = store.load()
    assert loaded.source == "checkpoint"
    assert loaded.notes == []
    assert loaded.loss_rows == 42
    assert loaded.iteration == 100
    assert loaded.path == path
    assert loaded.state.saved_at is not None
    expected = make_state(100)
    assert loaded.state.options == expected.options
    assert (loaded.state.model_type, loaded.state.device) == ("SAEHD", "0")
    assert_same_arrays(loaded, arrays)
    with pytest.raises(KeyError, match=r"no decoder_dst\.npz"):
        loaded.arrays("decoder_dst")


def test_npz_files_are_plain_numpy(store: ModelStore) -> None:
    path = save(store, 5)
    with np.load(path / "encoder.npz", allow_pickle=False) as npz:
        assert "down1/conv1/weight:0" in npz.files
    manifest = json.loads((path / state.MANIFEST_FILE).read_text())
    assert manifest["iteration"] == 5 and manifest["loss_rows"] == 5
    listed = {e["name"]: e for e in manifest["files"]}
    assert set(listed) == {"encoder.npz", "decoder_src.npz", "optimizer.npz",
                           "preview_samples.npz", "state.json"}  # fmt: skip
    for name, entry in listed.items():
        assert entry["size"] == (path / name).stat().st_size
        assert entry["sha256"] == fsutil.sha256_file(path / name)


def test_object_arrays_and_bad_names_refused(store: ModelStore) -> None:
    with pytest.raises(TypeError, match="object dtype"):
        store.save(make_state(), {"encoder": {"w": np.array([{}], dtype=object)}},
                   summary_text="", loss_rows=0)  # fmt: skip
    for bad in ["../evil", "a/b", "", ".hidden"]:
        with pytest.raises(ValueError, match="array group name"):
            store.save(make_state(), {bad: {}}, summary_text="", loss_rows=0)
    with pytest.raises(ValueError, match="differ only by case"):
        store.save(make_state(), {"enc": {}, "ENC": {}}, summary_text="", loss_rows=0)
    assert not store.has_state()


def test_new_save_replaces_old_checkpoint(store: ModelStore) -> None:
    save(store, 100)
    save(store, 200)
    assert [p.name for p in store.checkpoints_dir.iterdir()] == ["000000200"]
    loaded = store.load()
    assert loaded.iteration == 200
    assert_same_arrays(loaded, make_arrays(200))


def test_save_twice_at_same_iteration(store: ModelStore) -> None:
    save(store, 100, seed=1)
    path = save(store, 100, seed=2)
    assert path.name == "000000100-2"
    assert_same_arrays(store.load(), make_arrays(2))
    path = save(store, 100, seed=3)
    assert path.name == "000000100"  # the old folder was removed, so the plain name is free
    assert_same_arrays(store.load(), make_arrays(3))
    assert [p.name for p in store.checkpoints_dir.iterdir()] == ["000000100"]


def test_crashed_attempt_folder_is_cleared(store: ModelStore) -> None:
    save(store, 100)
    leftover = store.checkpoints_dir / "000000200"
    leftover.mkdir()
    (leftover / "encoder.npz").write_bytes(b"half")
    save(store, 200)
    loaded = store.load()
    assert loaded.path == leftover and loaded.notes == []
    assert_same_arrays(loaded, make_arrays(200))


def _damage(folder: Path, how: str) -> None:
    target = folder / "encoder.npz"
    if how == "truncated":
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    elif how == "flipped byte":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
    elif how == "missing file":
        target.unlink()
    elif how == "missing manifest":
        (folder / state.MANIFEST_FILE).unlink()
    elif how == "edited manifest":
        manifest = json.loads((folder / state.MANIFEST_FILE).read_text())
        manifest["loss_rows"] += 1
        (folder / state.MANIFEST_FILE).write_text(json.dumps(manifest))
    elif how == "garbage manifest":
        (folder / state.MANIFEST_FILE).write_bytes(b"\x00\x01")
    elif how == "bad state.json":
        (folder / state.STATE_FILE).write_text("{}")  # sizes and checksums fail first
    else:
        raise AssertionError(how)


DAMAGES = ["truncated", "flipped byte", "missing file", "missing manifest", "edited manifest",
           "garbage manifest", "bad state.json"]  # fmt: skip


@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_current_falls_back_to_backup(store: ModelStore, how: str) -> None:
    save(store, 100)
    store.backup()
    path = save(store, 200)
    _damage(path, how)
    loaded = store.load()
    assert loaded.source == "backup 01"
    assert loaded.iteration == 100 and loaded.loss_rows == 100
    assert_same_arrays(loaded, make_arrays(100))
    assert loaded.notes[0].startswith("checkpoint 000000200 is ")
    assert loaded.notes[0].endswith("and was skipped")
    assert loaded.notes[-1] == "using backup 01 (iteration 100)"


@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_current_falls_back_to_other_whole_checkpoint(
    store: ModelStore, tmp_path: Path, how: str
) -> None:
    first = save(store, 100)
    keep = tmp_path / "keep"
    shutil.copytree(first, keep)
    path = save(store, 200)
    shutil.copytree(keep, first)  # as if the clean-up after the second save never ran
    _damage(path, how)
    loaded = store.load()
    assert loaded.source == "checkpoint" and loaded.path == first
    assert_same_arrays(loaded, make_arrays(100))
    assert loaded.notes[0].startswith("checkpoint 000000200 is ")
    assert loaded.notes[-1] == "using checkpoint 000000100 (iteration 100)"


def test_missing_manifest_note_wording(store: ModelStore) -> None:
    save(store, 100)
    store.backup()
    _damage(save(store, 200), "missing manifest")
    assert store.load().notes[0] == (
        "checkpoint 000000200 is incomplete (manifest missing) and was skipped"
    )


def test_current_pointing_at_missing_folder(store: ModelStore) -> None:
    save(store, 100)
    store.backup()
    shutil.rmtree(save(store, 200))
    loaded = store.load()
    assert loaded.source == "backup 01"
    assert "folder missing" in loaded.notes[0]


def test_unreadable_pointer_uses_newest_whole_checkpoint(store: ModelStore) -> None:
    save(store, 100)
    (store.folder / state.CURRENT_FILE).write_text("../../etc\n")
    loaded = store.load()
    assert loaded.iteration == 100
    assert "pointer is unreadable" in loaded.notes[0]


def test_uncommitted_newer_checkpoint_is_ignored_while_current_is_whole(
    store: ModelStore, tmp_path: Path
) -> None:
    first = save(store, 100)
    shutil.copytree(first, tmp_path / "keep")
    pointer = (store.folder / state.CURRENT_FILE).read_bytes()
    save(store, 200)
    shutil.copytree(tmp_path / "keep", first)
    (store.folder / state.CURRENT_FILE).write_bytes(pointer)  # killed before the pointer moved
    loaded = store.load()
    assert loaded.iteration == 100 and loaded.notes == []
    save(store, 101)  # the next save clears both
    assert [p.name for p in store.checkpoints_dir.iterdir()] == ["000000101"]


def test_all_bad_without_backup(store: ModelStore) -> None:
    _damage(save(store, 100), "flipped byte")
    with pytest.raises(NoUsableStateError) as info:
        store.load()
    message = str(info.value)
    assert "no usable saved state" in message
    assert "checkpoint 000000100: encoder.npz checksum mismatch" in message


def test_all_checkpoints_and_backups_bad(store: ModelStore) -> None:
    save(store, 100)
    store.backup()
    _damage(store.backups_dir / "01", "missing file")
    _damage(save(store, 200), "truncated")
    with pytest.raises(NoUsableStateError) as info:
        store.load()
    assert "backup 01: encoder.npz missing" in str(info.value)
    assert "checkpoint 000000200: encoder.npz has" in str(info.value)


def test_empty_folder(store: ModelStore) -> None:
    with pytest.raises(NoUsableStateError, match="no saved state"):
        store.load()


def test_load_from_backup_when_every_checkpoint_is_bad(store: ModelStore) -> None:
    for it in (100, 200, 300):
        save(store, it)
        store.backup(keep=3)
    for name in ("01", "02"):
        _damage(store.backups_dir / name, "flipped byte")
    _damage(store.checkpoints_dir / "000000300", "missing manifest")
    loaded = store.load()
    assert loaded.source == "backup 03" and loaded.iteration == 100
    assert_same_arrays(loaded, make_arrays(100))
    assert len(loaded.notes) == 4  # checkpoint, 01, 02, then "using backup 03"


# ------------------------------------------------------------------ backups


def test_backup_rotation(store: ModelStore, real_fsync: None) -> None:
    for it in range(1, 6):
        save(store, it)
        path = store.backup(keep=3, images={"SAEHD masked": b"jpeg1", "a/b:c": b"jpeg2"})
        assert path == store.backups_dir / "01"
    assert store.backup_names() == ["01", "02", "03"]
    assert sorted(p.name for p in store.backups_dir.iterdir()) == ["01", "02", "03"]
    for name, it in zip(["01", "02", "03"], [5, 4, 3], strict=True):
        folder = store.backups_dir / name
        assert json.loads((folder / "state.json").read_text())["iteration"] == it
        assert (folder / "summary.txt").read_text() == f"summary at {it}\n"
        assert (folder / "preview_SAEHD masked.jpg").read_bytes() == b"jpeg1"
        assert (folder / "preview_a_b_c.jpg").read_bytes() == b"jpeg2"
        state._verify_folder(folder, name, checksums=True)


def test_backup_keep_bounds_and_needs_a_save(store: ModelStore) -> None:
    with pytest.raises(ValueError, match="backups kept"):
        store.backup(keep=0)
    with pytest.raises(NoUsableStateError, match="save first"):
        store.backup()


def test_backup_refuses_a_checkpoint_that_changed(store: ModelStore) -> None:
    path = save(store, 100)
    _damage(path, "flipped byte")
    with pytest.raises(StateError, match="changed while it was backed up"):
        store.backup()
    assert store.backup_names() == []
    assert list(store.backups_dir.iterdir()) == []


def test_backup_is_a_separate_copy(store: ModelStore) -> None:
    save(store, 100)
    store.backup()
    save(store, 200)  # removes checkpoint 100; the backup must not depend on it
    shutil.rmtree(store.checkpoints_dir)
    loaded = store.load()
    assert loaded.source == "backup 01" and loaded.iteration == 100
    assert "checkpoint 000000200 is incomplete (folder missing)" in loaded.notes[0]


# ------------------------------------------------------------------ disk full


class _FullDisk:
    """A temp file whose write fails with ENOSPC after `room` bytes."""

    def __init__(self, f, room: int) -> None:
        self._f = f
        self._room = room

    def write(self, data) -> int:
        data = bytes(data)
        if len(data) > self._room:
            self._f.write(data[: self._room])
            self._room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)


def _fill_disk_at(monkeypatch: pytest.MonkeyPatch, nth: int, room: int = 4) -> None:
    real = fsutil._open_temp
    count = {"n": 0}

    def open_temp(path):
        count["n"] += 1
        f = real(path)
        return _FullDisk(f, room) if count["n"] == nth else f

    monkeypatch.setattr(fsutil, "_open_temp", open_temp)


@pytest.mark.parametrize("nth", range(1, 8))  # 4 arrays, state, manifest, current pointer
def test_disk_full_keeps_previous_save(
    store: ModelStore, monkeypatch: pytest.MonkeyPatch, nth: int
) -> None:
    save(store, 100)
    before = sorted(p.relative_to(store.folder) for p in store.folder.rglob("*"))
    _fill_disk_at(monkeypatch, nth)
    with pytest.raises(DiskFullError) as info:
        save(store, 200)
    assert "free some space; the previous save is intact" in str(info.value)
    assert str(info.value).startswith("disk full while saving ")
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    after = sorted(p.relative_to(store.folder) for p in store.folder.rglob("*"))
    assert after == before  # the half-made checkpoint and temp files were removed
    loaded = store.load()
    assert loaded.iteration == 100 and loaded.notes == []
    assert_same_arrays(loaded, make_arrays(100))
    save(store, 300)
    assert store.load().iteration == 300


def test_disk_full_writing_summary_after_commit(
    store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    save(store, 100)
    _fill_disk_at(monkeypatch, 8)  # the summary comes after the pointer
    with pytest.raises(DiskFullError, match=r"summary\.txt"):
        save(store, 200)
    monkeypatch.undo()
    assert store.load().iteration == 200
    assert [p.name for p in store.checkpoints_dir.iterdir()] == ["000000200"]


def test_disk_full_during_backup(store: ModelStore, monkeypatch: pytest.MonkeyPatch) -> None:
    save(store, 100)
    store.backup()
    save(store, 200)
    _fill_disk_at(monkeypatch, 2)
    with pytest.raises(DiskFullError, match="previous backups are intact"):
        store.backup()
    monkeypatch.undo()
    assert store.backup_names() == ["01"]
    assert [p.name for p in store.backups_dir.iterdir()] == ["01"]
    state._verify_folder(store.backups_dir / "01", "01", checksums=True)


def test_disk_full_at_fsync(
    store: ModelStore, monkeypatch: pytest.MonkeyPatch, real_fsync: None
) -> None:
    save(store, 100)
    real = os.fsync

    def fsync(fd):
        if os.fstat(fd).st_size > 1000:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(DiskFullError):
        save(store, 200)
    monkeypatch.undo()
    assert store.load().iteration == 100


# ------------------------------------------------------------------ lock


def test_lock_refuses_second_trainer(store: ModelStore) -> None:
    other = ModelStore(store.folder)
    with store.lock() as note:
        assert note is None
        record = json.loads(store.lock_path.read_text())
        assert record["pid"] == os.getpid()
        assert record["hostname"] == socket.gethostname()
        with pytest.raises(ModelLockedError) as info:
            other.acquire()
        message = str(info.value)
        assert message.startswith(
            f"model me_SAEHD is already being trained by process {os.getpid()}"
        )
        assert record["started_at"] in message
        assert message.endswith("stop that trainer first")
        assert not other.locked
    assert not store.lock_path.exists()
    with other.lock():
        assert other.locked


def test_lock_released_when_training_raises(store: ModelStore) -> None:
    with pytest.raises(KeyboardInterrupt), store.lock():
        raise KeyboardInterrupt
    assert not store.lock_path.exists()
    assert not store.locked


def _write_lock(store: ModelStore, **fields) -> None:
    store.folder.mkdir(parents=True, exist_ok=True)
    record = {"pid": 1, "hostname": socket.gethostname(), "started_at": "2024-01-01T00:00:00",
              "boot_id": state._boot_id(), "proc_start": None, "token": "x"} | fields  # fmt: skip
    store.lock_path.write_text(json.dumps(record))


def test_stale_lock_of_finished_process_is_taken_over(store: ModelStore) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    pid = int(finished.stdout)
    _write_lock(store, pid=pid)
    with store.lock() as note:
        assert note is not None
        assert f"stale trainer lock of process {pid}" in note
        assert "no longer running" in note
        assert json.loads(store.lock_path.read_text())["pid"] == os.getpid()
    assert not store.lock_path.exists()


def test_lock_of_live_process_is_kept(store: ModelStore) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stat = state._proc_stat(child.pid)
        _write_lock(store, pid=child.pid, proc_start=stat[1] if stat else None)
        with pytest.raises(ModelLockedError, match=f"by process {child.pid} "):
            store.acquire()
    finally:
        child.kill()
        child.wait()
    assert store.acquire() is not None  # now it is stale
    store.release()


def test_lock_with_reused_pid_or_other_boot_is_stale(store: ModelStore) -> None:
    if state._proc_stat(os.getpid()) is None:
        pytest.skip("needs /proc")
    _write_lock(store, pid=os.getpid(), proc_start=-5)  # our pid, but another process start
    assert "id was reused" in store.acquire()
    store.release()
    _write_lock(store, pid=os.getpid(), boot_id="another-boot")
    assert "restarted" in store.acquire()
    store.release()


def test_lock_of_other_host_is_refused_with_hint(store: ModelStore) -> None:
    _write_lock(store, hostname="elsewhere", pid=99999)
    with pytest.raises(ModelLockedError, match=r"on elsewhere .*delete .*trainer\.lock"):
        store.acquire()


def test_old_unreadable_lock_is_replaced(store: ModelStore) -> None:
    store.folder.mkdir(parents=True)
    store.lock_path.write_bytes(b"")
    old = store.lock_path.stat().st_mtime - 3600
    os.utime(store.lock_path, (old, old))
    with store.lock() as note:
        assert "empty or unreadable" in note


def test_release_leaves_a_lock_that_is_not_ours(store: ModelStore) -> None:
    store.acquire()
    _write_lock(store, pid=12345, token="someone else")
    store.release()
    assert store.lock_path.exists()


def test_arrays_read_after_load_checks_the_file(store: ModelStore) -> None:
    path = save(store, 100)
    loaded = store.load()
    (path / "encoder.npz").write_bytes(b"not a zip")
    with pytest.raises(StateError, match="changed after it was verified"):
        loaded.arrays("encoder")
    (path / "decoder_src.npz").write_bytes(b"x" * (path / "decoder_src.npz").stat().st_size)
    with pytest.raises(StateError, match="cannot read"):
        loaded.arrays("decoder_src")
