"""The trainer lock file: one live trainer per model folder, with stale-lock detection."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dfl.store.checkpoint_state import StateError, now_iso
from dfl.store.fsutil import DiskFullError, fsync_dir, fsync_fd, is_disk_full

LOCK_FILE = "trainer.lock"
LOCK_RETRY_S = 0.05
LOCK_WAIT_S = 2.0  # how long a just-created (still empty) lock file is given to be filled in
LOCK_ATTEMPTS = 20


class ModelLockedError(StateError):
    """Another trainer holds the model's lock."""


def boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def proc_stat(pid: int) -> tuple[str, int] | None:
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


def pid_alive(pid: int) -> bool:
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
    stat = proc_stat(pid)
    return stat is None or stat[0] not in ("Z", "X")


def lock_record(token: str) -> dict[str, Any]:
    stat = proc_stat(os.getpid())
    return {
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "started_at": now_iso(),
        "boot_id": boot_id(),
        "proc_start": stat[1] if stat else None,
        "token": token,
    }


class TrainerLock:
    """The lock file of one model folder; `name` (the model's) is used in messages."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.name = name
        self.path = folder / LOCK_FILE
        self._token: str | None = None

    def acquire(self) -> str | None:
        """Take the trainer lock. Returns a note for the user if a stale lock was replaced.

        Raises ModelLockedError when a live trainer holds it. The folder must exist.
        """
        note: str | None = None
        deadline = time.monotonic() + LOCK_WAIT_S
        for _ in range(LOCK_ATTEMPTS):
            token = secrets.token_hex(8)
            record = json.dumps(lock_record(token), indent=2).encode("utf-8")
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
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
                    os.unlink(self.path)
                if is_disk_full(e):
                    raise DiskFullError(self.path, f"disk full: cannot create {self.path}") from e
                raise
            fsync_dir(self.folder)
            self._token = token
            return note
        raise ModelLockedError(
            f"could not take the lock of model {self.name}: another trainer keeps taking it; "
            f"stop the other trainer first (lock file {self.path})"
        )

    def release(self) -> None:
        """Give up the lock if this object holds it (a lock taken over by another is left)."""
        token, self._token = self._token, None
        if token is None:
            return
        _, record = self._read_lock()
        if record is not None and record.get("token") == token:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            with contextlib.suppress(OSError):
                fsync_dir(self.folder)

    @property
    def locked(self) -> bool:
        """Whether this object holds the lock."""
        return self._token is not None

    def _lock_is_old(self) -> bool:
        try:
            return time.time() - self.path.stat().st_mtime > LOCK_WAIT_S
        except FileNotFoundError:
            return False

    def _read_lock(self) -> tuple[bytes | None, dict[str, Any] | None]:
        try:
            raw = self.path.read_bytes()
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
        boot = boot_id()
        if other.get("boot_id") and boot and other["boot_id"] != boot:
            return "the computer has restarted since"
        pid = other["pid"]
        if not pid_alive(pid):
            return f"process {pid} is no longer running"
        stat = proc_stat(pid)
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
                f"(started {started}); stop that trainer first, or delete {self.path} "
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
            os.rename(self.path, aside)
        except FileNotFoundError:
            return False
        if aside.read_bytes() == raw:
            os.unlink(aside)
            return True
        # Another process replaced the stale lock with its own in the meantime: put it back.
        with contextlib.suppress(OSError):
            os.link(aside, self.path)
        with contextlib.suppress(OSError):
            os.unlink(aside)
        return False
