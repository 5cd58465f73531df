"""Writing one checkpoint folder of a model (docs/design.md, "State"): the array groups, then
state.json, then the manifest that makes the folder whole; naming new folders and dropping the
older ones. dfl.store.model_store points `current` at the folder once it is whole."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dfl.store.backups import ProgressCounter, ProgressFn, remove_leftover
from dfl.store.checkpoint_state import STATE_FILE
from dfl.store.fsutil import (
    TRASH_PREFIX,
    check_arrays,
    fsync_dir,
    is_temp_name,
    remove_tree,
    save_npz_durable,
    sha256_file,
    write_bytes_durable,
    write_json_durable,
)
from dfl.store.manifest import MANIFEST_FILE, SAFE_NAME, make_manifest

ARRAYS_SUFFIX = ".npz"
ITERATION_DIGITS = 9
CHECKPOINT_NAME = re.compile(rf"^(\d{{{ITERATION_DIGITS},}})(?:-(\d+))?$")


def check_groups(
    arrays: Mapping[str, Mapping[str, np.ndarray]],
) -> dict[str, dict[str, np.ndarray]]:
    """The array groups as plain dicts; ValueError or TypeError for a name or value that cannot
    be stored."""
    groups: dict[str, dict[str, np.ndarray]] = {}
    seen: set[str] = set()
    for key, group in arrays.items():
        if not isinstance(key, str) or not SAFE_NAME.match(key + ARRAYS_SUFFIX):
            raise ValueError(f"array group name {key!r} must be letters, digits, '_', '-' or '.'")
        if key.lower() in seen:  # case-insensitive file systems (Windows, macOS)
            raise ValueError(f"array group names {key!r} differ only by case")
        seen.add(key.lower())
        if not isinstance(group, Mapping):
            raise TypeError(f"array group {key!r} must be a dict of arrays")
        groups[key] = check_arrays(group, key)
    return groups


def write_checkpoint(
    folder: Path,
    groups: Mapping[str, Mapping[str, np.ndarray]],
    state_bytes: bytes,
    iteration: int,
    loss_rows: int,
    progress: ProgressFn | None,
) -> None:
    """Create `folder` and write every group, state.json and, once their entries are durable,
    manifest.json (what makes the folder whole)."""
    counter = ProgressCounter(len(groups) + 2, progress)  # + state.json + manifest.json
    folder.mkdir()
    fsync_dir(folder.parent)
    files: list[dict[str, Any]] = []
    for key, group in groups.items():
        path = folder / (key + ARRAYS_SUFFIX)
        save_npz_durable(path, group, sync_dir=False)
        files.append({"name": path.name, "size": path.stat().st_size, "sha256": sha256_file(path)})
        counter.step(path.name)
    write_bytes_durable(folder / STATE_FILE, state_bytes, sync_dir=False)
    digest = hashlib.sha256(state_bytes).hexdigest()
    files.append({"name": STATE_FILE, "size": len(state_bytes), "sha256": digest})
    counter.step(STATE_FILE)
    fsync_dir(folder)  # every file's entry is durable before the manifest exists
    write_json_durable(folder / MANIFEST_FILE, make_manifest(iteration, loss_rows, files))
    counter.step(MANIFEST_FILE)


def new_checkpoint_name(checkpoints_dir: Path, iteration: int, current: str | None) -> str:
    """A free folder name for this iteration (`000000123`, then `000000123-2`, ...); a folder
    left by a crashed save (no manifest, not current) is removed and its name reused."""
    base = f"{iteration:0{ITERATION_DIGITS}d}"
    for seq in itertools.count(1):
        name = base if seq == 1 else f"{base}-{seq}"
        path = checkpoints_dir / name
        if not path.exists():
            return name
        if name == current or (path / MANIFEST_FILE).exists():
            continue  # keep anything that may be whole
        remove_tree(path)  # left by a crashed save
        return name
    raise AssertionError("unreachable")


def remove_old_checkpoints(checkpoints_dir: Path, model_folder: Path, keep: str) -> None:
    """Best effort: drop every other entry of checkpoints/ and stray temp files."""
    for path in list(checkpoints_dir.iterdir()):
        if path.name == keep:
            continue
        with contextlib.suppress(OSError):
            if path.name.startswith(TRASH_PREFIX):
                remove_leftover(path)
            elif path.is_dir():
                remove_tree(path)
            else:
                path.unlink()
    for path in model_folder.iterdir():
        if path.is_file() and is_temp_name(path.name):
            with contextlib.suppress(OSError):
                path.unlink()
