"""The model folder: schema-versioned state, atomic checkpoints, backups and the trainer lock."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import os
import re
import secrets
import shutil
import socket
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from dfl import __version__
from dfl.fsutil import (
    TRASH_PREFIX,
    DiskFullError,
    check_arrays,
    copy_file_durable,
    fsync_dir,
    fsync_fd,
    is_disk_full,
    is_temp_name,
    load_npz,
    remove_tree,
    save_npz_durable,
    sha256_file,
    write_bytes_durable,
    write_json_durable,
)
from dfl.losshistory import FILE_NAME as LOSS_HISTORY_FILE
from dfl.losshistory import LossHistory

SCHEMA_VERSION = 1
MANIFEST_VERSION = 1
MANIFEST_FORMAT = "dfl-checkpoint"

CHECKPOINTS_DIR = "checkpoints"
BACKUPS_DIR = "autobackups"
HISTORY_DIR = "history"
CURRENT_FILE = "current"
LOCK_FILE = "trainer.lock"
SUMMARY_FILE = "summary.txt"
STATE_FILE = "state.json"
MANIFEST_FILE = "manifest.json"
ARRAYS_SUFFIX = ".npz"
PREVIEW_IMAGE_TEMPLATE = "preview_{}.jpg"

ITERATION_DIGITS = 9
BACKUP_DIGITS = 2
DEFAULT_BACKUPS_KEPT = 8
MAX_BACKUPS_KEPT = 10**BACKUP_DIGITS - 1
BACKUP_TEMP_PREFIX = ".tmp-backup-"

LOCK_RETRY_S = 0.05
LOCK_WAIT_S = 2.0  # how long a just-created (still empty) lock file is given to be filled in
LOCK_ATTEMPTS = 20

_CHECKPOINT_NAME = re.compile(rf"^(\d{{{ITERATION_DIGITS},}})(?:-(\d+))?$")
_BACKUP_NAME = re.compile(rf"^\d{{{BACKUP_DIGITS}}}$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_DEVICE = re.compile(r"^(cpu|\d+(,\d+)*)$")
_UNSAFE_IMAGE_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f]')

ProgressFn = Callable[[int, int, str], None]  # (files done, files in all, file name)


class StateError(Exception):
    """A model folder or its state cannot be used; the message says why and what to do."""


class ModelLockedError(StateError):
    """Another trainer holds the model's lock."""


class NoUsableStateError(StateError):
    """Neither a whole checkpoint nor a whole backup exists."""


def now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


# --------------------------------------------------------------------------- state.json

# MIGRATIONS[n] turns a schema-n state dict into a schema-(n + 1) one.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _check_plain(value: Any, where: str) -> None:
    """Options must be JSON-plain so they round-trip exactly."""
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise StateError(f"{where} is {value}, which cannot be stored")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise StateError(f"{where} has a non-string key {key!r}")
            _check_plain(item, f"{where}.{key}")
        return
    raise StateError(f"{where} is a {type(value).__name__}; only JSON values can be stored")


def _check_iso(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise StateError(f"{where} must be an ISO date string, got {value!r}")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise StateError(f"{where} is not an ISO date: {value!r}") from None


@dataclass
class ModelState:
    """What state.json holds: everything except arrays needed to resume a model."""

    model_type: str
    name: str
    iteration: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    device: str | None = None  # "cpu", "0" or "0,1"; None = not chosen yet
    backend: str = "tensorflow"
    created_with: str = __version__
    created_at: str = field(default_factory=now_iso)
    saved_at: str | None = None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for key in ("model_type", "name", "backend", "created_with"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value:
                raise StateError(f"state field {key!r} must be a non-empty string, got {value!r}")
        if isinstance(self.iteration, bool) or not isinstance(self.iteration, int):
            raise StateError(f"state field 'iteration' must be an integer, got {self.iteration!r}")
        if self.iteration < 0:
            raise StateError(f"state field 'iteration' must be >= 0, got {self.iteration}")
        if not isinstance(self.options, dict):
            raise StateError(f"state field 'options' must be a dict, got {self.options!r}")
        _check_plain(self.options, "options")
        if self.device is not None and (
            not isinstance(self.device, str) or not _DEVICE.match(self.device)
        ):
            raise StateError(
                f"state field 'device' must be 'cpu', GPU indexes like '0,1', or null; "
                f"got {self.device!r}"
            )
        _check_iso(self.created_at, "state field 'created_at'")
        if self.saved_at is not None:
            _check_iso(self.saved_at, "state field 'saved_at'")
        if self.schema_version != SCHEMA_VERSION:
            raise StateError(
                f"state schema_version must be {SCHEMA_VERSION}, got {self.schema_version!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {"schema_version": data.pop("schema_version"), **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any, source: str = STATE_FILE) -> ModelState:
        if not isinstance(data, dict):
            raise StateError(f"{source}: expected a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise StateError(f"{source}: missing or invalid schema_version {version!r}")
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{source} was made by a newer dfl (state schema {version}; this dfl reads up "
                f"to {SCHEMA_VERSION}); update dfl to use this model"
            )
        data = dict(data)
        while version < SCHEMA_VERSION:
            migrate = MIGRATIONS.get(version)
            if migrate is None:
                raise StateError(f"{source}: no migration from state schema {version}")
            data = dict(migrate(data))
            version += 1
            data["schema_version"] = version
        names = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(names - data.keys())
        if missing:
            raise StateError(f"{source}: missing field(s) {', '.join(missing)}")
        try:
            return cls(**{k: v for k, v in data.items() if k in names})  # unknown keys ignored
        except StateError as e:
            raise StateError(f"{source}: {e}") from None

    @classmethod
    def from_json(cls, text: str | bytes, source: str = STATE_FILE) -> ModelState:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as e:
            raise StateError(f"{source} is not valid JSON: {e}") from None
        return cls.from_dict(data, source)


# --------------------------------------------------------------------------- manifests


class _Rejected(Exception):
    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind  # "incomplete" or "damaged"
        self.reason = reason


@dataclass(frozen=True)
class _Whole:
    """A verified checkpoint or backup folder."""

    path: Path
    label: str
    state: ModelState
    loss_rows: int
    sizes: dict[str, int]  # file name -> size, as the manifest lists them


def _manifest_checksum(body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _make_manifest(iteration: int, loss_rows: int, files: list[dict[str, Any]]) -> dict[str, Any]:
    body = {
        "format": MANIFEST_FORMAT,
        "manifest_version": MANIFEST_VERSION,
        "iteration": iteration,
        "loss_rows": loss_rows,
        "written_at": now_iso(),
        "files": files,
    }
    return {**body, "checksum": _manifest_checksum(body)}


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        raw = (folder / MANIFEST_FILE).read_bytes()
    except FileNotFoundError:
        raise _Rejected("incomplete", "manifest missing") from None
    except OSError as e:
        raise _Rejected("damaged", f"manifest unreadable: {e.strerror or e}") from None
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _Rejected("damaged", "manifest is not valid JSON") from None
    if not isinstance(manifest, dict):
        raise _Rejected("damaged", "manifest is not a JSON object")
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    if manifest.get("checksum") != _manifest_checksum(body):
        raise _Rejected("damaged", "manifest checksum mismatch")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise _Rejected("damaged", "not a dfl checkpoint manifest")
    if manifest.get("manifest_version") != MANIFEST_VERSION:
        raise _Rejected(
            "damaged",
            f"manifest version {manifest.get('manifest_version')!r}, this dfl reads "
            f"{MANIFEST_VERSION} (made by a newer dfl?)",
        )
    files = manifest.get("files")
    if not (_is_count(manifest.get("iteration")) and _is_count(manifest.get("loss_rows"))):
        raise _Rejected("damaged", "manifest has no valid iteration or loss_rows")
    if not isinstance(files, list) or not all(
        isinstance(e, dict)
        and isinstance(e.get("name"), str)
        and _SAFE_NAME.match(e["name"])
        and e["name"] != MANIFEST_FILE
        and _is_count(e.get("size"))
        and isinstance(e.get("sha256"), str)
        for e in files
    ):
        raise _Rejected("damaged", "manifest file list is malformed")
    return manifest


def _verify_folder(folder: Path, label: str, *, checksums: bool) -> _Whole:
    """Check a checkpoint or backup folder against its manifest, or raise _Rejected."""
    if not folder.is_dir():
        raise _Rejected("incomplete", "folder missing")
    manifest = _read_manifest(folder)
    entries = manifest["files"]
    for entry in entries:  # sizes first: cheap, and catches most truncations
        path = folder / entry["name"]
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise _Rejected("incomplete", f"{entry['name']} missing") from None
        if size != entry["size"]:
            raise _Rejected(
                "incomplete" if size < entry["size"] else "damaged",
                f"{entry['name']} has {size} bytes, the manifest says {entry['size']}",
            )
    if checksums:
        for entry in entries:
            if sha256_file(folder / entry["name"]) != entry["sha256"]:
                raise _Rejected("damaged", f"{entry['name']} checksum mismatch")
    names = {entry["name"] for entry in entries}
    if STATE_FILE not in names:
        raise _Rejected("damaged", f"manifest lists no {STATE_FILE}")
    try:
        state = ModelState.from_json((folder / STATE_FILE).read_bytes())
    except StateError as e:
        raise _Rejected("damaged", str(e)) from None
    if state.iteration != manifest["iteration"]:
        raise _Rejected("damaged", f"{STATE_FILE} iteration differs from the manifest")
    return _Whole(
        path=folder,
        label=label,
        state=state,
        loss_rows=manifest["loss_rows"],
        sizes={entry["name"]: entry["size"] for entry in entries},
    )


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


# --------------------------------------------------------------------------- lock helpers


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a Linux process, None where unknown."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would send Ctrl+C on Windows
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return kernel32.GetLastError() == 5  # ERROR_ACCESS_DENIED: exists, not ours
        try:
            code = ctypes.c_ulong()
            kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = _proc_stat(pid)
    return stat is None or stat[0] not in ("Z", "X")


def _lock_record(token: str) -> dict[str, Any]:
    stat = _proc_stat(os.getpid())
    return {
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "started_at": now_iso(),
        "boot_id": _boot_id(),
        "proc_start": stat[1] if stat else None,
        "token": token,
    }


# --------------------------------------------------------------------------- the store


class ModelStore:
    """One model folder `workspace/model/<name>_<MODEL>/` and everything saved in it."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self._lock_token: str | None = None

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
        note: str | None = None
        deadline = time.monotonic() + LOCK_WAIT_S
        for _ in range(LOCK_ATTEMPTS):
            token = secrets.token_hex(8)
            record = json.dumps(_lock_record(token), indent=2).encode("utf-8")
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                raw, other = self._read_lock()
                if raw is None:  # vanished between our open and read: try again
                    continue
                reason = self._stale_reason(other)
                if reason is None and other is None:  # maybe being written right now: wait
                    if time.monotonic() < deadline and not self._lock_is_old():
                        time.sleep(LOCK_RETRY_S)
                        continue
                    reason = "the lock file is empty or unreadable"
                if reason is None:
                    raise ModelLockedError(self._locked_message(other or {})) from None
                if self._break_lock(raw):
                    note = self._stale_note(other, reason)
                continue
            try:
                try:
                    os.write(fd, record)
                    fsync_fd(fd)
                finally:
                    os.close(fd)
            except OSError as e:
                with contextlib.suppress(OSError):
                    os.unlink(self.lock_path)
                if is_disk_full(e):
                    raise DiskFullError(
                        self.lock_path, f"disk full: cannot create {self.lock_path}"
                    ) from e
                raise
            fsync_dir(self.folder)
            self._lock_token = token
            return note
        raise ModelLockedError(
            f"could not take the lock of model {self.name}: another trainer keeps taking it; "
            f"stop the other trainer first (lock file {self.lock_path})"
        )

    def release(self) -> None:
        """Give up the lock if this store holds it (a lock taken over by another is left)."""
        token, self._lock_token = self._lock_token, None
        if token is None:
            return
        _, record = self._read_lock()
        if record is not None and record.get("token") == token:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.lock_path)
            with contextlib.suppress(OSError):
                fsync_dir(self.folder)

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
        return self._lock_token is not None

    def _lock_is_old(self) -> bool:
        try:
            return time.time() - self.lock_path.stat().st_mtime > LOCK_WAIT_S
        except FileNotFoundError:
            return False

    def _read_lock(self) -> tuple[bytes | None, dict[str, Any] | None]:
        try:
            raw = self.lock_path.read_bytes()
        except FileNotFoundError:
            return None, None
        try:
            record = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return raw, None
        if not isinstance(record, dict) or not isinstance(record.get("pid"), int):
            return raw, None
        return raw, record

    def _stale_reason(self, other: dict[str, Any] | None) -> str | None:
        """Why the lock is stale, or None if its owner may still be running."""
        if other is None:
            return None
        if other.get("hostname") != socket.gethostname():
            return None  # cannot check a process on another machine
        boot = _boot_id()
        if other.get("boot_id") and boot and other["boot_id"] != boot:
            return "the computer has restarted since"
        pid = other["pid"]
        if not _pid_alive(pid):
            return f"process {pid} is no longer running"
        stat = _proc_stat(pid)
        if other.get("proc_start") is not None and stat and stat[1] != other["proc_start"]:
            return f"process {pid} is no longer running (its id was reused)"
        return None

    def _locked_message(self, other: Mapping[str, Any]) -> str:
        pid = other.get("pid", "?")
        started = other.get("started_at", "at an unknown time")
        host = other.get("hostname")
        if host and host != socket.gethostname():
            return (
                f"model {self.name} is already being trained by process {pid} on {host} "
                f"(started {started}); stop that trainer first, or delete {self.lock_path} "
                "if it is no longer running"
            )
        return (
            f"model {self.name} is already being trained by process {pid} (started {started}); "
            "stop that trainer first"
        )

    @staticmethod
    def _stale_note(other: Mapping[str, Any] | None, reason: str) -> str:
        if other is None:
            return f"replaced a stale trainer lock ({reason})"
        return (
            f"replaced a stale trainer lock of process {other.get('pid')} "
            f"(started {other.get('started_at')}): {reason}"
        )

    def _break_lock(self, raw: bytes) -> bool:
        """Remove the lock file if it still holds `raw` (rename first, so only one wins)."""
        aside = self.folder / f".{LOCK_FILE}.stale-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            os.rename(self.lock_path, aside)
        except FileNotFoundError:
            return False
        if aside.read_bytes() == raw:
            os.unlink(aside)
            return True
        # Another process replaced the stale lock with its own in the meantime: put it back.
        with contextlib.suppress(OSError):
            os.link(aside, self.lock_path)
        with contextlib.suppress(OSError):
            os.unlink(aside)
        return False

    # ---- listing
    def _checkpoint_names(self) -> list[str]:
        """Checkpoint folder names, newest first."""
        try:
            names = [p.name for p in self.checkpoints_dir.iterdir() if p.is_dir()]
        except FileNotFoundError:
            return []
        found = [(m, n) for n in names if (m := _CHECKPOINT_NAME.match(n))]
        found.sort(key=lambda mn: (int(mn[0][1]), int(mn[0][2] or 1)), reverse=True)
        return [n for _, n in found]

    def backup_names(self) -> list[str]:
        """Backup folder names, newest ('01') first."""
        try:
            return sorted(
                p.name
                for p in self.backups_dir.iterdir()
                if p.is_dir() and _BACKUP_NAME.match(p.name)
            )
        except FileNotFoundError:
            return []

    def has_state(self) -> bool:
        """Whether any checkpoint or backup folder exists (whole or not)."""
        return bool(self._checkpoint_names() or self.backup_names())

    def _read_pointer(self) -> str | None:
        try:
            name = (self.folder / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return name if _CHECKPOINT_NAME.match(name) else None

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
        for path, label, source in candidates:
            try:
                whole = _verify_folder(path, label, checksums=verify_checksums)
            except _Rejected as r:
                notes.append(f"{label} is {r.kind} ({r.reason}) and was skipped")
                rejected.append(f"{label}: {r.reason}")
                continue
            if rejected:
                notes.append(f"using {label} (iteration {whole.state.iteration})")
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
        raise NoUsableStateError(
            f"model {self.name} has no usable saved state; every checkpoint and backup in "
            f"{self.folder} is incomplete or damaged (nothing was changed):\n  "
            + "\n  ".join(rejected)
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
        if not _is_count(loss_rows):
            raise ValueError(f"loss_rows must be an integer >= 0, got {loss_rows!r}")
        groups = self._check_groups(arrays)
        state = dataclasses.replace(state, saved_at=now_iso())
        state_bytes = state.to_json().encode("utf-8")
        self._ensure_folder(self.checkpoints_dir)
        name = self._new_checkpoint_name(state.iteration)
        folder = self.checkpoints_dir / name
        total = len(groups) + 2  # + state.json + manifest.json
        done = 0

        def step(file_name: str) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total, file_name)

        try:
            folder.mkdir()
            fsync_dir(self.checkpoints_dir)
            files: list[dict[str, Any]] = []
            for key, group in groups.items():
                path = folder / (key + ARRAYS_SUFFIX)
                save_npz_durable(path, group, sync_dir=False)
                files.append(
                    {"name": path.name, "size": path.stat().st_size, "sha256": sha256_file(path)}
                )
                step(path.name)
            write_bytes_durable(folder / STATE_FILE, state_bytes, sync_dir=False)
            files.append(
                {
                    "name": STATE_FILE,
                    "size": len(state_bytes),
                    "sha256": hashlib.sha256(state_bytes).hexdigest(),
                }
            )
            step(STATE_FILE)
            fsync_dir(folder)  # every file's entry is durable before the manifest exists
            write_json_durable(
                folder / MANIFEST_FILE, _make_manifest(state.iteration, loss_rows, files)
            )
            step(MANIFEST_FILE)
            write_bytes_durable(self.folder / CURRENT_FILE, (name + "\n").encode("ascii"))
        except Exception as e:
            if self._read_pointer() != name:
                with contextlib.suppress(OSError):
                    remove_tree(folder)
            if is_disk_full(e) and not isinstance(e, DiskFullError):
                raise DiskFullError(folder) from e
            raise
        try:
            write_bytes_durable(self.summary_path, summary_text.encode("utf-8"))
        finally:
            self._remove_old_checkpoints(keep=name)
        return folder

    def _check_groups(
        self, arrays: Mapping[str, Mapping[str, np.ndarray]]
    ) -> dict[str, dict[str, np.ndarray]]:
        groups: dict[str, dict[str, np.ndarray]] = {}
        seen: set[str] = set()
        for key, group in arrays.items():
            if not isinstance(key, str) or not _SAFE_NAME.match(key + ARRAYS_SUFFIX):
                raise ValueError(
                    f"array group name {key!r} must be letters, digits, '_', '-' or '.'"
                )
            if key.lower() in seen:  # case-insensitive file systems (Windows, macOS)
                raise ValueError(f"array group names {key!r} differ only by case")
            seen.add(key.lower())
            if not isinstance(group, Mapping):
                raise TypeError(f"array group {key!r} must be a dict of arrays")
            groups[key] = check_arrays(group, key)
        return groups

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

    def _new_checkpoint_name(self, iteration: int) -> str:
        base = f"{iteration:0{ITERATION_DIGITS}d}"
        current = self._read_pointer()
        for seq in itertools.count(1):
            name = base if seq == 1 else f"{base}-{seq}"
            path = self.checkpoints_dir / name
            if not path.exists():
                return name
            if name == current or (path / MANIFEST_FILE).exists():
                continue  # keep anything that may be whole
            remove_tree(path)  # left by a crashed save
            return name
        raise AssertionError("unreachable")

    def _remove_old_checkpoints(self, keep: str) -> None:
        """Best effort: drop every other entry of checkpoints/ and stray temp files."""
        for path in list(self.checkpoints_dir.iterdir()):
            if path.name == keep:
                continue
            with contextlib.suppress(OSError):
                if path.name.startswith(TRASH_PREFIX):
                    _rmtree(path)
                elif path.is_dir():
                    remove_tree(path)
                else:
                    path.unlink()
        for path in self.folder.iterdir():
            if path.is_file() and is_temp_name(path.name):
                with contextlib.suppress(OSError):
                    path.unlink()

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
        for path in self.backups_dir.iterdir():
            if path.name.startswith((TRASH_PREFIX, BACKUP_TEMP_PREFIX)):
                with contextlib.suppress(OSError):
                    _rmtree(path)
        tmp = self.backups_dir / f"{BACKUP_TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        extra = [SUMMARY_FILE] if self.summary_path.exists() else []
        names = [n for n in source.sizes if n != MANIFEST_FILE]
        total = len(names) + len(extra) + len(images or {}) + 1
        done = 0

        def step(file_name: str) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total, file_name)

        manifest = _read_manifest(source.path)
        expected = {e["name"]: e["sha256"] for e in manifest["files"]}
        try:
            tmp.mkdir()
            for name in names:
                _, digest = copy_file_durable(source.path / name, tmp / name, sync_dir=False)
                if digest != expected[name]:
                    raise StateError(f"{source.path / name} changed while it was backed up")
                step(name)
            if extra:
                copy_file_durable(self.summary_path, tmp / SUMMARY_FILE, sync_dir=False)
                step(SUMMARY_FILE)
            for page, data in (images or {}).items():
                image_name = PREVIEW_IMAGE_TEMPLATE.format(_UNSAFE_IMAGE_CHARS.sub("_", page))
                write_bytes_durable(tmp / image_name, data, sync_dir=False)
                step(image_name)
            fsync_dir(tmp)
            copy_file_durable(source.path / MANIFEST_FILE, tmp / MANIFEST_FILE)
            step(MANIFEST_FILE)
        except Exception as e:
            with contextlib.suppress(OSError):
                remove_tree(tmp)
            if is_disk_full(e):
                raise DiskFullError(
                    self.backups_dir,
                    f"disk full while backing up to {self.backups_dir}: free some space; the "
                    "saved model and the previous backups are intact",
                ) from e
            raise
        self._shift_backups()
        newest = self.backups_dir / self._backup_name(1)
        os.rename(tmp, newest)
        fsync_dir(self.backups_dir)
        for index, name in enumerate(self.backup_names(), start=1):
            if int(name) != index:  # close gaps left by an interrupted rotation
                os.rename(self.backups_dir / name, self.backups_dir / self._backup_name(index))
                fsync_dir(self.backups_dir)
        for name in self.backup_names():
            if int(name) > keep:
                with contextlib.suppress(OSError):
                    remove_tree(self.backups_dir / name)
        return newest

    @staticmethod
    def _backup_name(number: int) -> str:
        return f"{number:0{BACKUP_DIGITS}d}"

    def _shift_backups(self) -> None:
        """Rename NN -> NN+1, oldest first, one durable rename at a time.

        Nothing is deleted before the new backup is in place (the caller removes those past
        `keep` afterwards), so a crash part-way loses no backup.
        """
        for number in sorted((int(n) for n in self.backup_names()), reverse=True):
            old = self.backups_dir / self._backup_name(number)
            if number >= MAX_BACKUPS_KEPT:  # no two-digit name left for it
                remove_tree(old)
                continue
            os.rename(old, self.backups_dir / self._backup_name(number + 1))
            fsync_dir(self.backups_dir)

    def _newest_whole_checkpoint(self) -> _Whole:
        pointer = self._read_pointer()
        names = self._checkpoint_names()
        ordered = ([pointer] if pointer in names else []) + [n for n in names if n != pointer]
        reasons = []
        for name in ordered:
            label = f"checkpoint {name}"
            try:
                return _verify_folder(self.checkpoints_dir / name, label, checksums=False)
            except _Rejected as r:
                reasons.append(f"{label}: {r.reason}")
        raise NoUsableStateError(
            f"model {self.name} has no whole checkpoint to back up (save first)"
            + ("".join(f"\n  {r}" for r in reasons))
        )


def _rmtree(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink()
