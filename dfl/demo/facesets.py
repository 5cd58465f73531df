"""Synthetic demo facesets: two procedural "people" as DFL whole_face aligned JPEGs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from dfl.data.faceset import FacesetError
from dfl.data.jpeg_metadata import write_dfl_jpeg
from dfl.demo.face_drawing import PERSON_DST, PERSON_SRC, PERSONS, Person, render_face

__all__ = [
    "PERSONS",
    "PERSON_DST",
    "PERSON_SRC",
    "DemoError",
    "Person",
    "make_demo_facesets",
    "render_face",
]

JPEG_QUALITY = 95
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
SIDES = ("data_src", "data_dst")


class DemoError(FacesetError):
    """The demo facesets cannot be written (e.g. the target folder already holds files)."""


# --- facesets ---------------------------------------------------------------------------------


def _prepare_folder(folder: Path, overwrite: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise DemoError(f"cannot write the demo faceset: {folder} is a file, not a folder")
    if folder.is_dir():
        # Hidden files (such as the repository's .gitkeep) are not faces and stay.
        existing = [p for p in folder.iterdir() if not p.name.startswith(".")]
        if existing and not overwrite:
            raise DemoError(
                f"{folder} already holds {len(existing)} file(s); the demo will not overwrite "
                "them. Choose another workspace, or allow overwriting (`dfl demo --overwrite`), "
                "which replaces the images in that folder."
            )
        for p in existing:
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
                p.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def make_demo_facesets(
    workspace: str | Path,
    count: int = 64,
    resolution: int = 256,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Write ``count`` src and ``count`` dst synthetic faces as DFL whole_face aligned JPEGs.

    Files go to ``workspace/data_src/aligned/00001_0.jpg ...`` and ``workspace/data_dst/aligned``.
    The output is deterministic per ``seed``. A non-empty target folder is refused unless
    ``overwrite`` is True (then its images are replaced). ``progress(done, total)`` is called
    after each image. Returns the (src, dst) folders.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if resolution < 64:
        raise ValueError(f"resolution must be at least 64, got {resolution}")
    workspace = Path(workspace)
    folders = tuple(workspace / side / "aligned" for side in SIDES)
    for folder in folders:
        _prepare_folder(folder, overwrite)
    total = 2 * count
    done = 0
    for side_index, (person, folder) in enumerate(zip(PERSONS, folders, strict=True)):
        for i in range(count):
            rng = np.random.default_rng([seed, side_index, i])
            image, meta = render_face(person, rng, resolution, index=i)
            write_dfl_jpeg(folder / f"{i + 1:05d}_0.jpg", image, meta, JPEG_QUALITY)
            done += 1
            if progress is not None:
                progress(done, total)
    return folders[0], folders[1]
