"""Backups: copying a whole checkpoint into autobackups/01 and rotating the older ones."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from dfl.store.checkpoint_state import StateError
from dfl.store.fsutil import (
    TRASH_PREFIX,
    DiskFullError,
    copy_file_durable,
    fsync_dir,
    is_disk_full,
    remove_tree,
    write_bytes_durable,
)
from dfl.store.manifest import MANIFEST_FILE, Whole, read_manifest

PREVIEW_IMAGE_TEMPLATE = "preview_{}.jpg"
BACKUP_DIGITS = 2
DEFAULT_BACKUPS_KEPT = 8
MAX_BACKUPS_KEPT = 10**BACKUP_DIGITS - 1
BACKUP_TEMP_PREFIX = ".tmp-backup-"

_BACKUP_NAME = re.compile(rf"^\d{{{BACKUP_DIGITS}}}$")
_UNSAFE_IMAGE_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f]')

ProgressFn = Callable[[int, int, str], None]  # (files done, files in all, file name)


def list_backups(backups_dir: Path) -> list[str]:
    """Backup folder names, newest ('01') first."""
    try:
        return sorted(
            p.name for p in backups_dir.iterdir() if p.is_dir() and _BACKUP_NAME.match(p.name)
        )
    except FileNotFoundError:
        return []


class ProgressCounter:
    """Counts the files written and tells `progress` (when given) after each one."""

    def __init__(self, total: int, progress: ProgressFn | None) -> None:
        self.total = total
        self.done = 0
        self._progress = progress

    def step(self, file_name: str) -> None:
        self.done += 1
        if self._progress is not None:
            self._progress(self.done, self.total, file_name)


def write_backup(
    backups_dir: Path,
    source: Whole,
    keep: int,
    *,
    summary_path: Path,
    images: Mapping[str, bytes] | None = None,
    progress: ProgressFn | None = None,
) -> Path:
    """Copy the whole checkpoint `source` into backups_dir/01, rotating the rest.

    `backups_dir` must exist; `summary_path` is copied along when it exists. Backups past
    `keep` are removed afterwards. Returns the new backup folder.
    """
    _remove_leftovers(backups_dir)
    tmp = backups_dir / f"{BACKUP_TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    try:
        tmp.mkdir()
        _fill_backup(tmp, source, summary_path, images or {}, progress)
    except Exception as e:
        with contextlib.suppress(OSError):
            remove_tree(tmp)
        if is_disk_full(e):
            raise DiskFullError(
                backups_dir,
                f"disk full while backing up to {backups_dir}: free some space; the "
                "saved model and the previous backups are intact",
            ) from e
        raise
    return _install_backup(backups_dir, tmp, keep)


def _remove_leftovers(backups_dir: Path) -> None:
    """Best effort: drop trash and temp folders of interrupted backups."""
    for path in backups_dir.iterdir():
        if path.name.startswith((TRASH_PREFIX, BACKUP_TEMP_PREFIX)):
            with contextlib.suppress(OSError):
                remove_leftover(path)


def _fill_backup(
    tmp: Path,
    source: Whole,
    summary_path: Path,
    images: Mapping[str, bytes],
    progress: ProgressFn | None,
) -> None:
    """Copy the checkpoint's files (checked against its manifest), the summary and the preview
    images into `tmp`; the manifest last, after the folder is synced."""
    extra = [summary_path.name] if summary_path.exists() else []
    names = [n for n in source.sizes if n != MANIFEST_FILE]
    counter = ProgressCounter(len(names) + len(extra) + len(images) + 1, progress)
    expected = {e["name"]: e["sha256"] for e in read_manifest(source.path)["files"]}
    for name in names:
        _, digest = copy_file_durable(source.path / name, tmp / name, sync_dir=False)
        if digest != expected[name]:
            raise StateError(f"{source.path / name} changed while it was backed up")
        counter.step(name)
    if extra:
        copy_file_durable(summary_path, tmp / summary_path.name, sync_dir=False)
        counter.step(summary_path.name)
    for page, data in images.items():
        image_name = PREVIEW_IMAGE_TEMPLATE.format(_UNSAFE_IMAGE_CHARS.sub("_", page))
        write_bytes_durable(tmp / image_name, data, sync_dir=False)
        counter.step(image_name)
    fsync_dir(tmp)
    copy_file_durable(source.path / MANIFEST_FILE, tmp / MANIFEST_FILE)
    counter.step(MANIFEST_FILE)


def _install_backup(backups_dir: Path, tmp: Path, keep: int) -> Path:
    """Make the filled `tmp` backup 01 (the others shift by one), then drop those past `keep`."""
    _shift_backups(backups_dir)
    newest = backups_dir / _backup_name(1)
    os.rename(tmp, newest)
    fsync_dir(backups_dir)
    for index, name in enumerate(list_backups(backups_dir), start=1):
        if int(name) != index:  # close gaps left by an interrupted rotation
            os.rename(backups_dir / name, backups_dir / _backup_name(index))
            fsync_dir(backups_dir)
    for name in list_backups(backups_dir):
        if int(name) > keep:
            with contextlib.suppress(OSError):
                remove_tree(backups_dir / name)
    return newest


def remove_leftover(path: Path) -> None:
    """Remove a leftover (trash or temp) file, or folder with whatever of it can be removed."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink()


def _backup_name(number: int) -> str:
    return f"{number:0{BACKUP_DIGITS}d}"


def _shift_backups(backups_dir: Path) -> None:
    """Rename NN -> NN+1, oldest first, one durable rename at a time.

    Nothing is deleted before the new backup is in place (the caller removes those past
    `keep` afterwards), so a crash part-way loses no backup.
    """
    for number in sorted((int(n) for n in list_backups(backups_dir)), reverse=True):
        old = backups_dir / _backup_name(number)
        if number >= MAX_BACKUPS_KEPT:  # no two-digit name left for it
            remove_tree(old)
            continue
        os.rename(old, backups_dir / _backup_name(number + 1))
        fsync_dir(backups_dir)
