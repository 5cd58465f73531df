"""The model folder: atomic checkpoints with the `current` pointer, loading, and backups.

The state.json schema lives in dfl.store.checkpoint_state, manifests in dfl.store.manifest,
writing one checkpoint folder in dfl.store.checkpoint_writer, the trainer lock in dfl.store.lock
and backup rotation in dfl.store.backups; the names other code uses are re-exported here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dfl.store.backups import BACKUP_DIGITS as BACKUP_DIGITS
from dfl.store.backups import BACKUP_TEMP_PREFIX as BACKUP_TEMP_PREFIX
from dfl.store.backups import (
    DEFAULT_BACKUPS_KEPT,
    MAX_BACKUPS_KEPT,
    ProgressFn,
    list_backups,
    write_backup,
)
from dfl.store.backups import PREVIEW_IMAGE_TEMPLATE as PREVIEW_IMAGE_TEMPLATE
from dfl.store.checkpoint_state import STATE_FILE as STATE_FILE
from dfl.store.checkpoint_state import ModelState, StateError, now_iso
from dfl.store.checkpoint_writer import ARRAYS_SUFFIX as ARRAYS_SUFFIX
from dfl.store.checkpoint_writer import (
    CHECKPOINT_NAME,
    check_groups,
    new_checkpoint_name,
    remove_old_checkpoints,
    write_checkpoint,
)
from dfl.store.checkpoint_writer import ITERATION_DIGITS as ITERATION_DIGITS
from dfl.store.fsutil import (
    DiskFullError,
    disk_full_first_save,
    fsync_dir,
    is_disk_full,
    load_npz,
    remove_tree,
    write_bytes_durable,
)
from dfl.store.lock import LOCK_ATTEMPTS as LOCK_ATTEMPTS
from dfl.store.lock import LOCK_FILE, TrainerLock, boot_id, proc_stat
from dfl.store.lock import LOCK_RETRY_S as LOCK_RETRY_S
from dfl.store.lock import LOCK_WAIT_S as LOCK_WAIT_S
from dfl.store.lock import ModelLockedError as ModelLockedError
from dfl.store.losshistory import FILE_NAME as LOSS_HISTORY_FILE
from dfl.store.losshistory import LossHistory
from dfl.store.manifest import MANIFEST_FILE as MANIFEST_FILE
from dfl.store.manifest import MANIFEST_FORMAT as MANIFEST_FORMAT
from dfl.store.manifest import MANIFEST_VERSION as MANIFEST_VERSION
from dfl.store.manifest import (
    Rejected,
    Whole,
    describe_edit,
    is_count,
    verify_folder,
)

CHECKPOINTS_DIR = "checkpoints"
BACKUPS_DIR = "autobackups"
HISTORY_DIR = "history"
CURRENT_FILE = "current"
SUMMARY_FILE = "summary.txt"

# Helpers the tests reach through dfl.store.model_store under their old private names.
_verify_folder = verify_folder
_boot_id = boot_id
_proc_stat = proc_stat


class NoUsableStateError(StateError):
    """Neither a whole checkpoint nor a whole backup exists."""


# --------------------------------------------------------------------------- loaded state


@dataclass
class Loaded:
    """A verified checkpoint or backup; arrays are read only when asked for."""

    state: ModelState
    path: Path
    source: str  # "checkpoint" or "backup NN"
    loss_rows: int  # rows of the loss history that belong to this state
    notes: list[str]  # for the user: what was skipped and why
    _sizes: dict[str, int] = field(repr=False)

    @property
    def iteration(self) -> int:
        return self.state.iteration

    @property
    def keys(self) -> tuple[str, ...]:
        """Names of the stored array groups (encoder, optimizer, preview_samples, ...)."""
        return tuple(
            sorted(n[: -len(ARRAYS_SUFFIX)] for n in self._sizes if n.endswith(ARRAYS_SUFFIX))
        )

    def has(self, key: str) -> bool:
        return key + ARRAYS_SUFFIX in self._sizes

    def arrays(self, key: str) -> dict[str, np.ndarray]:
        """Load one group of arrays (pickle refused)."""
        name = key + ARRAYS_SUFFIX
        if name not in self._sizes:
            raise KeyError(f"{self.path} has no {name} (it has: {', '.join(self.keys) or 'none'})")
        path = self.path / name
        try:
            if path.stat().st_size != self._sizes[name]:
                raise StateError(f"{path} changed after it was verified")
            return load_npz(path)
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise StateError(f"cannot read {path}: {e}") from e


# --------------------------------------------------------------------------- the store


class ModelStore:
    """One model folder `workspace/model/<name>_<MODEL>/` and everything saved in it."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self._trainer_lock = TrainerLock(self.folder, self.name)

    # ---- paths
    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def checkpoints_dir(self) -> Path:
        return self.folder / CHECKPOINTS_DIR

    @property
    def backups_dir(self) -> Path:
        return self.folder / BACKUPS_DIR

    @property
    def history_dir(self) -> Path:
        """Folder for the preview history (not created here)."""
        return self.folder / HISTORY_DIR

    @property
    def summary_path(self) -> Path:
        return self.folder / SUMMARY_FILE

    @property
    def lock_path(self) -> Path:
        return self.folder / LOCK_FILE

    @property
    def loss_history_path(self) -> Path:
        return self.folder / LOSS_HISTORY_FILE

    def open_loss_history(self, k: int, valid_rows: int = 0) -> LossHistory:
        """The model's loss history; pass `Loaded.loss_rows` as valid_rows when resuming."""
        return LossHistory.open(self.loss_history_path, k, valid_rows)

    # ---- lock
    def acquire(self) -> str | None:
        """Take the trainer lock. Returns a note for the user if a stale lock was replaced.

        Raises ModelLockedError when a live trainer holds it.
        """
        self._ensure_folder(self.folder)
        return self._trainer_lock.acquire()

    def release(self) -> None:
        """Give up the lock if this store holds it (a lock taken over by another is left)."""
        self._trainer_lock.release()

    @contextlib.contextmanager
    def lock(self) -> Iterator[str | None]:
        """`with store.lock() as note:` holds the trainer lock; released even on errors."""
        note = self.acquire()
        try:
            yield note
        finally:
            self.release()

    @property
    def locked(self) -> bool:
        """Whether this store holds the lock."""
        return self._trainer_lock.locked

    # ---- listing
    def _checkpoint_names(self) -> list[str]:
        """Checkpoint folder names, newest first."""
        try:
            names = [p.name for p in self.checkpoints_dir.iterdir() if p.is_dir()]
        except FileNotFoundError:
            return []
        found = [(m, n) for n in names if (m := CHECKPOINT_NAME.match(n))]
        found.sort(key=lambda mn: (int(mn[0][1]), int(mn[0][2] or 1)), reverse=True)
        return [n for _, n in found]

    def backup_names(self) -> list[str]:
        """Backup folder names, newest ('01') first."""
        return list_backups(self.backups_dir)

    def has_state(self) -> bool:
        """Whether any checkpoint or backup folder exists (whole or not)."""
        return bool(self._checkpoint_names() or self.backup_names())

    def _read_pointer(self) -> str | None:
        try:
            name = (self.folder / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return name if CHECKPOINT_NAME.match(name) else None

    # ---- load
    def load(self, *, verify_checksums: bool = True) -> Loaded:
        """The newest whole saved state: `current`, other checkpoints, then backups.

        Raises NoUsableStateError (listing each rejected folder and why) when none is whole.
        """
        notes: list[str] = []
        rejected: list[str] = []
        names = self._checkpoint_names()
        pointer = self._read_pointer()
        if pointer is None and names and (self.folder / CURRENT_FILE).exists():
            notes.append(f"the {CURRENT_FILE} pointer is unreadable; looking at every checkpoint")
        candidates: list[tuple[Path, str, str]] = []
        if pointer is not None:
            candidates.append(
                (self.checkpoints_dir / pointer, f"checkpoint {pointer}", "checkpoint")
            )
        candidates += [
            (self.checkpoints_dir / n, f"checkpoint {n}", "checkpoint")
            for n in names
            if n != pointer
        ]
        candidates += [
            (self.backups_dir / n, f"backup {n}", f"backup {n}") for n in self.backup_names()
        ]
        edited: tuple[str, ModelState] | None = None  # the newest hand-edited state.json
        for path, label, source in candidates:
            try:
                whole = verify_folder(path, label, checksums=verify_checksums)
            except Rejected as r:
                notes.append(f"{label} is {r.kind} ({r.reason}) and was skipped")
                rejected.append(f"{label}: {r.reason}")
                if r.edited is not None and edited is None:
                    edited = (label, r.edited)
                continue
            if rejected:
                notes.append(f"using {label} (iteration {whole.state.iteration})")
            if edited is not None:
                notes.append(describe_edit(*edited, whole))
            return Loaded(
                state=whole.state,
                path=whole.path,
                source=source,
                loss_rows=whole.loss_rows,
                notes=notes,
                _sizes=whole.sizes,
            )
        if not rejected:
            raise NoUsableStateError(f"model {self.name} has no saved state in {self.folder}")
        advice = f"\n{describe_edit(*edited, None)}" if edited is not None else ""
        raise NoUsableStateError(
            f"model {self.name} has no usable saved state; every checkpoint and backup in "
            f"{self.folder} is incomplete, damaged or edited (nothing was changed):\n  "
            + "\n  ".join(rejected)
            + advice
        )

    # ---- save
    def save(
        self,
        state: ModelState,
        arrays: Mapping[str, Mapping[str, np.ndarray]],
        *,
        summary_text: str,
        loss_rows: int,
        progress: ProgressFn | None = None,
    ) -> Path:
        """Write a new whole checkpoint, point `current` at it, then drop the older ones.

        `arrays` maps a group name (encoder, optimizer, preview_samples, ...) to named arrays;
        `loss_rows` is what LossHistory.flush() returned just before. Returns the new folder.
        A failure (disk full) leaves the previous checkpoint current and intact.
        """
        if not isinstance(state, ModelState):
            raise TypeError(f"state must be a ModelState, got {type(state).__name__}")
        if not is_count(loss_rows):
            raise ValueError(f"loss_rows must be an integer >= 0, got {loss_rows!r}")
        groups = check_groups(arrays)
        state = dataclasses.replace(state, saved_at=now_iso())
        state_bytes = state.to_json().encode("utf-8")
        self._ensure_folder(self.checkpoints_dir)
        name = new_checkpoint_name(self.checkpoints_dir, state.iteration, self._read_pointer())
        folder = self.checkpoints_dir / name
        try:
            write_checkpoint(folder, groups, state_bytes, state.iteration, loss_rows, progress)
            write_bytes_durable(self.folder / CURRENT_FILE, (name + "\n").encode("ascii"))
        except Exception as e:
            failure = self._failed_save(folder, name, e)
            if failure is None:
                raise
            raise failure from e
        try:
            write_bytes_durable(self.summary_path, summary_text.encode("utf-8"))
        finally:
            remove_old_checkpoints(self.checkpoints_dir, self.folder, keep=name)
        return folder

    def _failed_save(self, folder: Path, name: str, error: Exception) -> Exception | None:
        """Clean up after a save that failed; the error to raise instead (disk full, said for
        the user), or None to raise `error` itself."""
        previous = self._read_pointer()
        if previous != name:
            with contextlib.suppress(OSError):
                remove_tree(folder)
        if is_disk_full(error) and previous is None:  # the model's first save
            return DiskFullError(folder, disk_full_first_save(folder))
        if is_disk_full(error) and not isinstance(error, DiskFullError):
            return DiskFullError(folder)
        return None

    def _ensure_folder(self, folder: Path) -> None:
        """Create a folder (and parents) durably."""
        missing = []
        path = folder
        while not path.exists():
            missing.append(path)
            path = path.parent
        for path in reversed(missing):
            with contextlib.suppress(FileExistsError):
                path.mkdir()
            fsync_dir(path.parent)

    # ---- backups
    def backup(
        self,
        keep: int = DEFAULT_BACKUPS_KEPT,
        *,
        images: Mapping[str, bytes] | None = None,
        progress: ProgressFn | None = None,
    ) -> Path:
        """Copy the newest whole checkpoint (save first) into autobackups/01, rotating the rest.

        `images` maps preview page names to encoded JPEG bytes, stored as preview_<name>.jpg.
        Returns the new backup folder.
        """
        if not 1 <= keep <= MAX_BACKUPS_KEPT:
            raise ValueError(f"backups kept must be 1..{MAX_BACKUPS_KEPT}, got {keep}")
        source = self._newest_whole_checkpoint()
        self._ensure_folder(self.backups_dir)
        return write_backup(
            self.backups_dir,
            source,
            keep,
            summary_path=self.summary_path,
            images=images,
            progress=progress,
        )

    def _newest_whole_checkpoint(self) -> Whole:
        pointer = self._read_pointer()
        names = self._checkpoint_names()
        ordered = ([pointer] if pointer in names else []) + [n for n in names if n != pointer]
        reasons = []
        for name in ordered:
            label = f"checkpoint {name}"
            try:
                return verify_folder(self.checkpoints_dir / name, label, checksums=False)
            except Rejected as r:
                reasons.append(f"{label}: {r.reason}")
        raise NoUsableStateError(
            f"model {self.name} has no whole checkpoint to back up (save first)"
            + ("".join(f"\n  {r}" for r in reasons))
        )
