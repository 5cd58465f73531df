"""Shared pieces of the video helpers: errors, input look-up, image listing, atomic output."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

from dfl.errors import UserError
from dfl.store.fsutil import TEMP_MARK, fsync_dir, fsync_fd, replace_file

# The image files a frame folder may hold (DFL's image-path helper accepts the same suffixes).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
ANY_EXTENSION = ".*"  # `data_dst.*` means "the first file whose stem is data_dst"
_DIGITS = re.compile(r"(\d+)")

ProgressFn = Callable[[int, int | None], None]  # (done, total or None when unknown)


class VideoError(UserError):
    """A video cannot be read or written; the message says which file and why."""


def resolve_video_path(path: Path | str) -> Path:
    """The video file `path` names, resolving DFL's `<folder>/<stem>.*` form.

    `<stem>.*` picks the first file of the folder, sorted by name, whose stem equals `stem`
    (case-insensitive), as DFL's launchers use it (`workspace/data_dst.*`).
    """
    path = Path(path).expanduser()
    if path.name.endswith(ANY_EXTENSION):
        stem = path.name[: -len(ANY_EXTENSION)].lower()
        folder = path.parent
        matches = (
            sorted(p for p in folder.iterdir() if p.is_file() and p.stem.lower() == stem)
            if folder.is_dir()
            else []
        )
        if not matches:
            raise VideoError(f"no video named {path.name} in {folder}")
        return matches[0]
    if not path.exists():
        raise VideoError(f"video not found: {path}")
    if not path.is_file():
        raise VideoError(f"{path} is not a file")
    return path


def natural_key(path: Path) -> tuple:
    """Sort key that orders `2.png` before `10.png` (numbers compared as numbers)."""
    parts = _DIGITS.split(path.name.lower())
    return tuple((0, int(p), p) if p.isdigit() else (1, 0, p) for p in parts)


def list_images(folder: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    """Image files directly in `folder` (hidden files excluded), in natural order."""
    found = [
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes
    ]
    return sorted(found, key=natural_key)


def temp_output_path(path: Path) -> Path:
    """A hidden temp name beside `path` that keeps its extension (FFmpeg picks the container
    from it)."""
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    return path.with_name(f".{path.stem}{TEMP_MARK}{token}{path.suffix}")


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temp path to write; on success it replaces `path` (then the folder is fsynced),
    on any error it is removed and `path` is left as it was."""
    tmp = temp_output_path(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            fsync_fd(f.fileno())
        replace_file(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)
