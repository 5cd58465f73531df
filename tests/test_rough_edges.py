"""Rough edges a careful user hits (issue 11, items 13-14): each failure ends in a clear message."""

from __future__ import annotations

import builtins
import errno
import json
import os
import pickle
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

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
    from dfl.ui.startup import SKIPPED_LOG, load_side_faceset

    _refused_faceset(tmp_path / "src", 5)
    (tmp_path / "src" / "notes.txt").write_text("x")
    fs = load_faceset(tmp_path / "src")
    assert fs.refused_names() == [f"evil{i}.jpg" for i in range(5)]
    models = tmp_path / "model"
    models.mkdir()
    samples = load_side_faceset(tmp_path / "src", "src", models)
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
    load_side_faceset(tmp_path / "src", "src", models)
    assert not log.exists()


def _refuse_writes_under(monkeypatch, root: Path, err: int = errno.EROFS) -> None:
    """Simulate a read-only file system below `root` (tests run as root: chmod cannot)."""
    real_mkdir, real_open = os.mkdir, os.open

    def check(path) -> None:
        if str(path).startswith(str(root)):
            raise OSError(err, os.strerror(err), str(path))

    def mkdir(path, *args, **kwargs):
        check(path)
        return real_mkdir(path, *args, **kwargs)

    def open_(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            check(path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("err", [errno.EROFS, errno.EACCES])
def test_read_only_workspace_train(tmp_path: Path, monkeypatch, capsys, err: int) -> None:
    from dfl.cli import EXIT_USAGE, main

    ws = tmp_path / "ws"
    _refuse_writes_under(monkeypatch, ws, err)
    args = ["train", "--workspace", str(ws), "--model", "Quick96", "--name", "m"]
    assert main([*args, "--cpu-only", "--no-preview"]) == EXIT_USAGE
    message = capsys.readouterr().err
    assert f"cannot create {ws}" in message and "--workspace" in message
    assert "Traceback" not in message
    assert not ws.exists()


def test_read_only_workspace_partly_made_is_removed(tmp_path: Path, monkeypatch) -> None:
    from dfl.store.workspace import Workspace

    ws = tmp_path / "ws"
    _refuse_writes_under(monkeypatch, ws / "model")
    with pytest.raises(OSError):
        Workspace(ws).ensure()
    assert not ws.exists()


def test_read_only_model_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    from dfl.cli import EXIT_USAGE, main
    from dfl.store.workspace import Workspace

    ws = tmp_path / "ws"
    Workspace(ws).ensure()
    before = _tree(tmp_path)
    _refuse_writes_under(monkeypatch, ws / "model" / "m_Quick96" / "trainer.lock")
    args = ["train", "--workspace", str(ws), "--model", "Quick96", "--name", "m"]
    assert main([*args, "--cpu-only", "--no-preview"]) == EXIT_USAGE
    message = capsys.readouterr().err
    assert "trainer.lock" in message and str(ws / "model" / "m_Quick96") in message
    assert _tree(tmp_path) == before  # the new model's folder is gone again


def test_read_only_workspace_demo(tmp_path: Path, monkeypatch, capsys) -> None:
    from dfl.cli import EXIT_USAGE, main

    ws = tmp_path / "ws"
    _refuse_writes_under(monkeypatch, ws)
    assert main(["demo", "--workspace", str(ws), "--count", "1"]) == EXIT_USAGE
    message = capsys.readouterr().err
    assert "read-only file system" in message and str(tmp_path) in message
    assert not ws.exists()


def _without(monkeypatch, missing: str) -> None:
    """Pretend framework `missing` is not installed and Keras is not imported yet."""
    import importlib.util

    import dfl.backend

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a)
    )
    monkeypatch.setattr(dfl.backend, "_imported_backend", lambda: None)
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")  # restored after the test


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["train", "--backend", "jax"], None),
        (["train"], "jax"),
        (["bench", "--quick", "--backend", "jax"], None),
        (["bench", "--quick"], "jax"),
    ],
)
def test_backend_not_installed(tmp_path: Path, monkeypatch, capsys, args, env) -> None:
    from dfl.cli import EXIT_USAGE, build_parser, main

    _without(monkeypatch, "jax")
    if env:
        monkeypatch.setenv("KERAS_BACKEND", env)
    if args[0] == "train":
        args = [*args, "--workspace", str(tmp_path / "ws"), "--model", "Quick96", "--name", "m"]
    build_parser()  # bench's --backend default is read from $KERAS_BACKEND when built
    assert main(args) == EXIT_USAGE
    message = capsys.readouterr().err
    assert "the jax backend is not installed" in message
    assert "pip install 'dfl[jax]'" in message and "Traceback" not in message
    assert not (tmp_path / "ws").exists()


def test_bench_refuses_a_gpu_that_is_not_there(monkeypatch, capsys) -> None:
    import dfl.backend
    from dfl.cli import EXIT_USAGE, main

    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setattr(dfl.backend, "list_devices", lambda: [])
    assert main(["bench", "--quick", "--backend", "tensorflow", "--device", "7"]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert "no GPU with index 7: this machine has no GPU, only cpu" in captured.err
    assert captured.out == ""  # no result line labelled "device": "7"
    gpu = dfl.backend.Device(index=0, name="GPU", memory_bytes=None)
    monkeypatch.setattr(dfl.backend, "list_devices", lambda: [gpu])
    assert main(["bench", "--quick", "--device", "7"]) == EXIT_USAGE
    assert "no GPU with index 7; choose from 0 or cpu" in capsys.readouterr().err


def test_train_device_without_gpus(tmp_path: Path, monkeypatch, capsys) -> None:
    import dfl.backend
    from dfl.cli import EXIT_USAGE, main
    from dfl.store.workspace import Workspace

    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setattr(dfl.backend, "list_devices", lambda: [])
    ws = tmp_path / "ws"
    Workspace(ws).ensure()
    args = ["train", "--workspace", str(ws), "--model", "Quick96", "--name", "m"]
    assert main([*args, "--device", "3", "--no-preview"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "this machine has no GPU, only cpu" in err and "choose from  or" not in err
    assert list((ws / "model").iterdir()) == []


def _saved_model(tmp_path: Path, iterations: list[int]):
    from dfl.store.checkpoint_state import ModelState
    from dfl.store.model_store import ModelStore

    store = ModelStore(tmp_path / "me_Quick96")
    paths = []
    for it in iterations:
        options = {"target_iter": 1000, "batch_size": 4}
        state = ModelState(model_type="Quick96", name="me", iteration=it, options=options)
        weights = {"encoder": {"w": np.full(3, it, np.float32)}}
        paths.append(store.save(state, weights, summary_text="", loss_rows=0))
        if it != iterations[-1]:
            store.backup()
    return store, paths[-1]


def _edit_state(folder: Path, **options) -> None:
    path = folder / "state.json"
    data = json.loads(path.read_text())
    data["options"].update(options)
    path.write_text(json.dumps(data, indent=2))


def test_state_edited_by_hand_says_what_differs(tmp_path: Path) -> None:
    store, current = _saved_model(tmp_path, [10, 20])
    _edit_state(current, target_iter=5000)
    loaded = store.load()
    assert loaded.state.iteration == 10  # the backup: the edited state is not trusted
    notes = "\n".join(loaded.notes)
    assert "state.json was edited after saving: its checksum differs from the manifest" in notes
    assert "target_iter 1000 -> 5000" in notes and "batch_size" not in notes
    assert "--override" in notes and "--opt name=value" in notes


def test_state_edited_without_a_whole_state(tmp_path: Path) -> None:
    from dfl.store.model_store import NoUsableStateError

    store, current = _saved_model(tmp_path, [10])
    _edit_state(current, batch_size=8)
    with pytest.raises(NoUsableStateError) as info:
        store.load()
    message = str(info.value)
    assert "was edited after saving" in message and "no other saved state is whole" in message
    assert "Put the file back" in message and "--override" in message


@pytest.mark.parametrize("payload", [b"garbage, not a model", b"PK\x03\x04zipped"])
def test_garbage_dfl_file_is_not_called_cut_short(tmp_path: Path, payload: bytes) -> None:
    from dfl.interop.deepfacelab.reader import DflModelError, read_pickle_file

    path = tmp_path / "me_SAEHD_data.dat"
    path.write_bytes(payload)
    with pytest.raises(DflModelError) as info:
        read_pickle_file(path)
    assert "is not a DFL model file" in str(info.value)
    assert "cut short" not in str(info.value)
    path.write_bytes(pickle.dumps({"iter": 5}, 4)[:-9])  # a real one, truncated
    with pytest.raises(DflModelError, match="cut short"):
        read_pickle_file(path)


def _full_after(monkeypatch, nth: int) -> None:
    """The nth durable write (a temp file) finds the disk full."""
    from dfl.store import fsutil

    real, count = fsutil._open_temp, {"n": 0}

    def open_temp(path):
        count["n"] += 1
        if count["n"] == nth:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path)

    monkeypatch.setattr(fsutil, "_open_temp", open_temp)


@pytest.mark.parametrize("nth", [1, 2, 3])  # weights, state.json, manifest
def test_disk_full_on_first_save_says_nothing_was_saved(
    tmp_path: Path, monkeypatch, nth: int
) -> None:
    from dfl.store.checkpoint_state import ModelState
    from dfl.store.fsutil import DiskFullError
    from dfl.store.model_store import ModelStore

    store = ModelStore(tmp_path / "me_Quick96")
    state = ModelState(model_type="Quick96", name="me", iteration=1)
    weights = {"encoder": {"w": np.zeros(3, np.float32)}}
    _full_after(monkeypatch, nth)
    with pytest.raises(DiskFullError) as info:
        store.save(state, weights, summary_text="", loss_rows=0)
    assert "nothing was saved yet" in str(info.value)
    assert "previous save is intact" not in str(info.value)
    monkeypatch.undo()
    store.save(state, weights, summary_text="", loss_rows=0)
    _full_after(monkeypatch, 1)
    with pytest.raises(DiskFullError, match="the previous save is intact"):
        later = ModelState(model_type="Quick96", name="me", iteration=2)
        store.save(later, weights, summary_text="", loss_rows=0)


def test_disk_full_on_first_loss_history_save(tmp_path: Path, monkeypatch) -> None:
    from dfl.store.fsutil import DiskFullError
    from dfl.store.losshistory import LossHistory

    history = LossHistory.open(tmp_path / "loss_history.bin", 2)
    history.append(np.ones((3, 2), np.float32))
    _full_after(monkeypatch, 1)
    with pytest.raises(DiskFullError, match="nothing was saved yet"):
        history.flush()


def test_bad_opt_is_refused_before_any_question(tmp_path: Path, monkeypatch, capsys) -> None:
    from dfl.cli import EXIT_USAGE, main

    def no_prompt(*args, **kwargs):
        raise AssertionError("a question was asked")

    monkeypatch.setattr(builtins, "input", no_prompt)
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    ws = tmp_path / "ws"
    assert main(["train", "--workspace", str(ws), "--opt", "target_iter"]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert "expected name=value, got 'target_iter'" in captured.err
    assert captured.out == "" and not ws.exists()


def test_tiny_faces_are_skipped_with_a_warning() -> None:
    from dfl.data import landmarks as L
    from dfl.data.augment import AugmentConfig
    from dfl.data.batcher import BatchProducer
    from dfl.data.faceset import FaceSample, FacesetError
    from dfl.data.sample_checks import min_face_side

    def face(name: str, side: int) -> FaceSample:
        return FaceSample(path=Path(name), shape=(side, side), face_type=None, landmarks=None)

    image = np.zeros((64, 64, 3), np.uint8)
    cfg = AugmentConfig(64, L.FULL_FACE)
    assert min_face_side(64) == 32 and min_face_side(256) == 64
    src = [face("ok.png", 64), face("dot.png", 1), face("small.png", 31)]
    dst = [face("d.png", 32)]
    with BatchProducer(src, dst, cfg, cfg, 1, 0, workers=0, reader=lambda s: image) as producer:
        assert [s.path.name for s in producer.src_samples] == ["ok.png"]
        assert len(producer.dst_samples) == 1
        assert producer.notes == [
            "src: 2 faces are smaller than 32 px on a side and skipped (dot.png, small.png); "
            "a 64 px model needs faces at least that big"
        ]
        producer.get()
    with pytest.raises(FacesetError, match="every dst face is smaller than 32 px"):
        BatchProducer(src, [face("x.png", 1)], cfg, cfg, 1, 0, workers=0)


def test_question_mark_at_the_model_menu_shows_help(tmp_path: Path) -> None:
    from dfl.ui.menu import MENU_HELP, NEW_NAME_HELP, choose_model

    answers = iter(["?", "mine"])
    printed: list[str] = []
    name = choose_model(tmp_path, "Quick96", lambda prompt: next(answers), printed.append)
    assert name == "mine" and printed == [NEW_NAME_HELP]
    assert "cannot contain" not in " ".join(printed)
    (tmp_path / "old_Quick96" / "checkpoints").mkdir(parents=True)
    answers = iter(["?", ""])
    printed.clear()
    assert choose_model(tmp_path, "Quick96", lambda prompt: next(answers), printed.append) == "old"
    assert MENU_HELP in printed


def test_every_common_option_has_help() -> None:
    from dfl.common_options import COMMON_OPTIONS

    assert [o.name for o in COMMON_OPTIONS if not (o.help or "").strip()] == []


def test_progress_to_a_file_is_plain_lines(tmp_path: Path, capsys) -> None:
    import io

    from dfl.ui.progress import PLAIN_QUIET_S, PLAIN_STEPS, Progress

    def run(seconds_per_file: float) -> list[str]:
        now = [0.0]

        def clock() -> float:
            return now[0]

        out = io.StringIO()
        with Progress("Loading src samples", "files", stream=out, clock=clock) as bar:
            for done in range(1, 1001):
                now[0] += seconds_per_file
                bar.update(done, 1000)
        assert "\r" not in out.getvalue()
        return out.getvalue().splitlines()

    slow = run(PLAIN_QUIET_S / 10)  # quiet for its first 10 files, then a line per tenth
    assert len(slow) == PLAIN_STEPS + 1  # 0%, 10%, ... 100%
    assert slow[-1] == "Loading src samples: 1000/1000 files (100%)"
    assert run(PLAIN_QUIET_S / 2000) == [slow[-1]]  # done within the quiet time: the last line
    # dfl train's faceset loading, written to a pipe (capsys is not a terminal)
    from dfl.ui.startup import load_side_faceset

    _refused_faceset(tmp_path / "src", 0)
    load_side_faceset(tmp_path / "src", "src", tmp_path)
    err = capsys.readouterr().err
    assert "\r" not in err and "Loading src samples: 1/1 files (100%)" in err
