"""Workspace paths and saved-model folders: list, name checks, rename and delete."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

MAX_NAME_LENGTH = 64
FORBIDDEN_CHARS = '<>:"/\\|?*'
RESERVED_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)
CURRENT_POINTER = "current"  # written by dfl.store.model_store; its presence marks a saved model
CHECKPOINTS_DIR = "checkpoints"
TYPE_SEPARATOR = "_"


class WorkspaceError(Exception):
    """A model folder operation was refused; the message says why."""


@dataclass(frozen=True)
class ModelEntry:
    """One saved model of a given type."""

    name: str
    folder: Path
    mtime: float


def model_folder(model_dir: Path | str, name: str, model_type: str) -> Path:
    """The folder of model `name`: `<model_dir>/<name>_<model_type>`."""
    return Path(model_dir) / f"{name}{TYPE_SEPARATOR}{model_type}"


def validate_name(name: str) -> str | None:
    """Why `name` cannot be a model name, or None when it can (decision 16)."""
    if not name:
        return "a model name cannot be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"a model name has at most {MAX_NAME_LENGTH} characters"
    if name.isdigit():
        return "a model name cannot be all digits (digits choose a model by index)"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "a model name cannot contain control characters"
    bad = sorted({ch for ch in name if ch in FORBIDDEN_CHARS or ch in (os.sep, os.altsep or "")})
    if bad:
        return f"a model name cannot contain {' '.join(bad)}"
    if name[-1] in ". ":
        return "a model name cannot end with a dot or a space"
    if name.split(".", 1)[0].rstrip().upper() in RESERVED_NAMES:
        return f"{name!r} is a device name reserved by Windows"
    return None


def _is_saved_model(folder: Path) -> bool:
    return (folder / CURRENT_POINTER).exists() or (folder / CHECKPOINTS_DIR).is_dir()


def _mtime(folder: Path) -> float:
    try:
        return (folder / CURRENT_POINTER).stat().st_mtime
    except OSError:
        return folder.stat().st_mtime


def list_models(model_dir: Path | str, model_type: str) -> list[ModelEntry]:
    """Saved models of `model_type` in `model_dir`, newest first; none when the folder is missing.

    The type is the text after the last `_` of a folder name; everything before it is the name.
    """
    root = Path(model_dir)
    if not root.is_dir():
        return []
    entries = []
    for folder in root.iterdir():
        name, sep, suffix = folder.name.rpartition(TYPE_SEPARATOR)
        if not sep or not name or suffix != model_type or not folder.is_dir():
            continue
        if _is_saved_model(folder):
            entries.append(ModelEntry(name=name, folder=folder, mtime=_mtime(folder)))
    entries.sort(key=lambda entry: (-entry.mtime, entry.name))
    return entries


def _existing_folder(model_dir: Path | str, model_type: str, name: str) -> Path:
    reason = validate_name(name)
    if reason:
        raise WorkspaceError(reason)
    folder = model_folder(model_dir, name, model_type)
    if folder.is_symlink() or not folder.is_dir():
        raise WorkspaceError(f"no {model_type} model named {name!r} in {model_dir}")
    return folder


def rename_model(model_dir: Path | str, model_type: str, old: str, new: str) -> Path:
    """Rename model `old` to `new` (one atomic folder rename); returns the new folder."""
    source = _existing_folder(model_dir, model_type, old)
    reason = validate_name(new)
    if reason:
        raise WorkspaceError(reason)
    target = model_folder(model_dir, new, model_type)
    # A case-only rename on a case-insensitive file system finds the source itself.
    if target.exists() and not (old.lower() == new.lower() and target.samefile(source)):
        raise WorkspaceError(f"a {model_type} model named {new!r} already exists")
    try:
        os.rename(source, target)
    except OSError as error:
        raise WorkspaceError(f"cannot rename {old!r} to {new!r}: {error.strerror}") from error
    return target


def delete_model(model_dir: Path | str, model_type: str, name: str) -> None:
    """Remove model `name`'s whole folder (checkpoints, backups, history)."""
    folder = _existing_folder(model_dir, model_type, name)
    try:
        shutil.rmtree(folder)
    except OSError as error:
        raise WorkspaceError(f"cannot delete {name!r}: {error}") from error


@dataclass(frozen=True)
class Workspace:
    """The folders of one workspace; each may be given explicitly instead of under `root`."""

    root: Path
    src_dir: Path | None = None
    dst_dir: Path | None = None
    models_dir: Path | None = None

    @property
    def data_src(self) -> Path:
        return self.src_dir or Path(self.root) / "data_src" / "aligned"

    @property
    def data_dst(self) -> Path:
        return self.dst_dir or Path(self.root) / "data_dst" / "aligned"

    @property
    def model_dir(self) -> Path:
        return self.models_dir or Path(self.root) / "model"

    def ensure(self) -> list[Path]:
        """Create missing folders (parents included); returns those created, outermost first.

        When one cannot be created (read-only, no permission) the ones this call made are
        removed again and the OSError propagates.
        """
        created: list[Path] = []
        try:
            for target in (Path(self.root), self.data_src, self.data_dst, self.model_dir):
                for folder in (*reversed(target.parents), target):
                    if folder.is_dir():
                        continue
                    try:
                        folder.mkdir()
                    except FileExistsError:
                        continue
                    created.append(folder)
        except OSError:
            for folder in reversed(created):  # innermost first; all empty, as just made
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise
        return created
