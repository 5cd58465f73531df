"""A kill at any moment of a save or backup never leaves the model unloadable."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from dfl.store import fsutil
from dfl.store import model_store as state
from dfl.store.losshistory import LossHistory
from dfl.store.model_store import ModelState, ModelStore

K = 2


@pytest.fixture
def fast_dir(tmp_path: Path) -> Iterator[Path]:
    """A RAM folder where there is one (the kill loops do thousands of small file operations)."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="dfl-crash-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Killed(BaseException):
    """Stands for SIGKILL at this point: no except/cleanup code of the store may catch it."""


# Every call that changes the file system (file data goes through _open_temp + fsync).
_OPS: list[tuple[object, str]] = [
    (os, "replace"),
    (os, "rename"),
    (os, "fsync"),
    (os, "unlink"),
    (os, "remove"),
    (os, "rmdir"),
    (os, "mkdir"),
    (os, "write"),
    (os, "link"),
    (os, "truncate"),
    (shutil, "rmtree"),
    (fsutil, "_open_temp"),
]


class Crasher:
    """Counts file-system operations and 'kills the process' at operation number `kill_at`.

    Once killed, every later operation raises too (a dead process does nothing more).
    """

    def __init__(self, mp: pytest.MonkeyPatch, kill_at: int | None, real_fsync: bool) -> None:
        self.count = 0
        self.kill_at = kill_at
        self.dead = False
        for module, name in _OPS:
            real = getattr(module, name)
            if name == "fsync" and not real_fsync:
                real = _no_fsync
            mp.setattr(module, name, self._wrap(real))

    def _wrap(self, real: Callable) -> Callable:
        def op(*args, **kwargs):
            if self.dead or self.count == self.kill_at:
                self.dead = True
                raise Killed
            self.count += 1
            return real(*args, **kwargs)

        return op


def _no_fsync(fd: int) -> None:
    """fsync costs milliseconds on a busy disk; a kill (not power loss) does not need it."""


def make_arrays(iteration: int) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(iteration)
    return {
        "encoder": {"w:0": rng.standard_normal((16, 8), dtype=np.float32)},
        "decoder_src": {"w:0": rng.standard_normal(8, dtype=np.float32)},
        "optimizer": {"iters": np.array(iteration, dtype=np.int64)},
        "preview_samples": {"x": rng.integers(0, 255, (2, 4, 4, 3), dtype=np.uint8)},
    }


def loss_rows(start: int, end: int) -> np.ndarray:
    """The loss rows of iterations start+1 .. end: row i holds (i, -i)."""
    it = np.arange(start + 1, end + 1, dtype=np.float32)
    return np.stack([it, -it], axis=1)


def train_and_save(store: ModelStore, history: LossHistory, start: int, end: int) -> None:
    """What the trainer does at a save: flush the loss history, then write the checkpoint."""
    history.append(loss_rows(start, end))
    rows = history.flush()
    store.save(
        ModelState("SAEHD", "me", iteration=end, options={"resolution": 64}),
        make_arrays(end),
        summary_text=f"at {end}\n",
        loss_rows=rows,
    )


def check_loadable(store: ModelStore, allowed: set[int]) -> state.Loaded:
    """Load as a fresh process would; the state must be exactly one of the allowed saves."""
    loaded = ModelStore(store.folder).load()
    assert loaded.iteration in allowed
    for key, group in make_arrays(loaded.iteration).items():
        got = loaded.arrays(key)
        for name, array in group.items():
            assert got[name].tobytes() == array.tobytes(), (key, name)
    history = LossHistory.open(store.loss_history_path, K, loaded.loss_rows)
    assert loaded.loss_rows == loaded.iteration
    np.testing.assert_array_equal(history.read(), loss_rows(0, loaded.iteration))
    return loaded


def resume_and_save(store: ModelStore, loaded: state.Loaded, end: int) -> None:
    """The next run after the crash: resume, train, save; everything must be clean again."""
    store = ModelStore(store.folder)
    history = LossHistory.open(store.loss_history_path, K, loaded.loss_rows)
    train_and_save(store, history, loaded.iteration, end)
    again = check_loadable(store, {end})
    assert again.notes == [] and again.source == "checkpoint"
    assert [p.name for p in store.checkpoints_dir.iterdir()] == [f"{end:09d}"]
    leftovers = [p.name for p in store.folder.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def count_ops(run: Callable[[], object]) -> int:
    with pytest.MonkeyPatch.context() as mp:
        crasher = Crasher(mp, kill_at=None, real_fsync=False)
        run()
    return crasher.count


def crash_at(kill_at: int, run: Callable[[], object]) -> bool:
    """Run with a kill at operation `kill_at`; True if the kill happened."""
    with pytest.MonkeyPatch.context() as mp:
        Crasher(mp, kill_at=kill_at, real_fsync=False)
        try:
            run()
        except Killed:
            return True
    return False


def _setup_saved(folder: Path, iteration: int) -> tuple[ModelStore, LossHistory]:
    store = ModelStore(folder)
    history = LossHistory.open(store.loss_history_path, K)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fsync", _no_fsync)
        train_and_save(store, history, 0, iteration)
    return store, history


@pytest.mark.parametrize("repeat_iteration", [False, True], ids=["new-iteration", "same-iteration"])
def test_kill_at_every_step_of_a_save(fast_dir: Path, repeat_iteration: bool) -> None:
    first, second = 10, (10 if repeat_iteration else 25)

    def second_save(store: ModelStore, history: LossHistory) -> Callable[[], None]:
        if repeat_iteration:  # a save without training in between: a sibling folder "-2"
            return lambda: train_and_save(store, history, first, first)
        return lambda: train_and_save(store, history, first, second)

    store, history = _setup_saved(fast_dir / "probe", first)
    total = count_ops(second_save(store, history))
    assert total > 15  # the flush, 4 arrays, state, manifest, pointer, summary, clean-up

    for kill_at in range(total + 1):
        store, history = _setup_saved(fast_dir / f"k{kill_at}", first)
        killed = crash_at(kill_at, second_save(store, history))
        assert killed == (kill_at < total)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(os, "fsync", _no_fsync)
            loaded = check_loadable(store, {first, second})
            if not killed:
                assert loaded.iteration == second and loaded.notes == []
            resume_and_save(store, loaded, second + 7)


def test_kill_at_every_step_of_a_backup(fast_dir: Path) -> None:
    def prepare(folder: Path) -> ModelStore:
        store, history = _setup_saved(folder, 10)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(os, "fsync", _no_fsync)
            store.backup(keep=2)
            train_and_save(store, history, 10, 20)
            store.backup(keep=2)
            train_and_save(store, history, 20, 30)
        return store

    store = prepare(fast_dir / "probe")
    total = count_ops(lambda: store.backup(keep=2, images={"SAEHD": b"jpg"}))
    for kill_at in range(total + 1):
        store = prepare(fast_dir / f"k{kill_at}")
        killed = crash_at(kill_at, lambda s=store: s.backup(keep=2, images={"SAEHD": b"jpg"}))
        assert killed == (kill_at < total)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(os, "fsync", _no_fsync)
            names = store.backup_names()
            iterations = []
            for name in names:  # every visible backup is whole: none was lost or half-made
                whole = state._verify_folder(store.backups_dir / name, name, checksums=True)
                iterations.append(whole.state.iteration)
            assert set(iterations) <= {10, 20, 30}
            assert {10, 20} <= set(iterations) or {20, 30} <= set(iterations)
            assert iterations == sorted(iterations, reverse=True)  # 01 newest
            if not killed:
                assert iterations == [30, 20]
            check_loadable(store, {30})
            store.backup(keep=2)  # the next backup tidies up
            assert store.backup_names() == ["01", "02"]
            assert [p.name for p in store.backups_dir.iterdir()] != []
            assert sorted(p.name for p in store.backups_dir.iterdir()) == ["01", "02"]
            shutil.rmtree(store.checkpoints_dir)  # the backups alone still give a model
            assert check_loadable(store, {30}).source == "backup 01"


def test_save_orders_its_writes_for_power_loss(tmp_path: Path) -> None:
    """Each file is fsynced before it is renamed into place; the folder is fsynced before the
    manifest and again before `current` moves; the model folder after it."""
    store, history = _setup_saved(tmp_path / "m", 10)
    log: list[tuple[str, str, str]] = []
    real_replace = os.replace

    def rec_fsync(fd):
        log.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"), ""))

    def rec_replace(src, dst):
        log.append(("replace", str(src), str(dst)))
        return real_replace(src, dst)

    if not Path("/proc/self/fd").exists():
        pytest.skip("needs /proc to map file descriptors to paths")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fsync", rec_fsync)
        mp.setattr(os, "replace", rec_replace)
        train_and_save(store, history, 10, 20)

    def index(op: str, a: str, b: str = "", after: int = -1) -> int:
        for i, entry in enumerate(log):
            if i > after and entry == (op, a, b):
                return i
        raise AssertionError(f"{op} {a} {b} not found after {after} in {log}")

    ckpt = store.checkpoints_dir / "000000020"
    replaces = [(i, src, dst) for i, (op, src, dst) in enumerate(log) if op == "replace"]
    for i, src, _dst in replaces:  # every file was fsynced under its temp name first
        assert index("fsync", src) < i
    manifest_at = next(i for i, _s, d in replaces if d == str(ckpt / state.MANIFEST_FILE))
    pointer_at = next(i for i, _s, d in replaces if d == str(store.folder / state.CURRENT_FILE))
    summary_at = next(i for i, _s, d in replaces if d == str(store.summary_path))
    last_file_at = max(i for i, _s, d in replaces if Path(d).parent == ckpt and i < manifest_at)
    dir_sync = index("fsync", str(ckpt), after=last_file_at)
    assert dir_sync < manifest_at
    assert index("fsync", str(store.checkpoints_dir)) < manifest_at  # the new folder's entry
    assert manifest_at < index("fsync", str(ckpt), after=manifest_at) < pointer_at
    assert pointer_at < index("fsync", str(store.folder), after=pointer_at)
    assert pointer_at < summary_at
    history_sync = index("fsync", str(store.loss_history_path))
    assert history_sync < manifest_at  # loss rows are durable before the manifest counts them


_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import numpy as np
    from dfl.store.losshistory import LossHistory
    from dfl.store.model_store import ModelState, ModelStore, NoUsableStateError

    store = ModelStore(Path(sys.argv[1]))
    with store.lock():
        try:
            loaded = store.load()
            it, valid = loaded.iteration, loaded.loss_rows
        except NoUsableStateError:
            it, valid = 0, 0
        history = LossHistory.open(store.loss_history_path, 2, valid)
        print("ready", flush=True)
        while True:
            it += 1
            history.append(np.array([[it, -it]], np.float32))
            rows = history.flush()
            arrays = {
                "encoder": {"w:0": np.full(60_000, it, np.float32)},
                "optimizer": {"iters": np.array(it, np.int64)},
            }
            state = ModelState("SAEHD", "me", iteration=it, options={"resolution": 64})
            store.save(state, arrays, summary_text=str(it), loss_rows=rows)
            if it % 4 == 0:
                store.backup(keep=2)
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_during_saves(tmp_path: Path) -> None:
    folder = tmp_path / "me_SAEHD"
    rng = random.Random(1234)
    seen = []
    for _ in range(4):
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(folder)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=rng.uniform(0.05, 0.3))
            assert child.poll() is None, "the saving child ended on its own"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
        store = ModelStore(folder)
        loaded = store.load()
        assert loaded.source == "checkpoint"
        it = loaded.iteration
        assert loaded.arrays("encoder")["w:0"].tolist() == [float(it)] * 60_000
        assert int(loaded.arrays("optimizer")["iters"]) == it
        history = LossHistory.open(store.loss_history_path, K, loaded.loss_rows)
        np.testing.assert_array_equal(history.read(), loss_rows(0, it))
        seen.append(it)
    assert seen == sorted(seen) and seen[-1] > seen[0]  # each run resumed and saved more
