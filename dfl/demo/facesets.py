"""Synthetic demo facesets: two procedural "people" as DFL whole_face aligned JPEGs.

The src person is drawn straight into aligned images; the dst person is drawn into video frames
(workspace/data_dst/00001.png ...) and its aligned faces are cut from them, so merging the dst
frames works as with a real dst video (docs/demo.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from dfl.data.faceset import FacesetError
from dfl.data.jpeg_metadata import write_dfl_jpeg
from dfl.demo.face_drawing import render_face
from dfl.demo.frames import cut_face, render_frame, render_scene
from dfl.demo.people import PERSON_DST, PERSON_SRC, PERSONS, Person

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
FRAME_EXT = ".png"
PNG_COMPRESSION = 3  # zlib level of the frames: 0 (none) .. 9 (smallest, slowest)


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


def _prepare_frames(folder: Path, overwrite: bool) -> None:
    """The dst frame folder: frames of an earlier run (or of a real video) are replaced only
    with ``overwrite``; sub-folders (aligned, merged, ...) are left alone."""
    if folder.exists() and not folder.is_dir():
        raise DemoError(f"cannot write the demo frames: {folder} is a file, not a folder")
    frames = (
        [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        if folder.is_dir()
        else []
    )
    if frames and not overwrite:
        raise DemoError(
            f"{folder} already holds {len(frames)} frame image(s); the demo will not overwrite "
            "them. Choose another workspace, or allow overwriting (`dfl demo --overwrite`)."
        )
    for p in frames:
        p.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def _write_png(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(FRAME_EXT, image, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:
        raise DemoError(f"cannot encode {path.name}")
    path.write_bytes(data.tobytes())


def _write_dst(
    workspace: Path,
    count: int,
    resolution: int,
    seed: int,
    step: Callable[[], None],
) -> None:
    """Dst frames into ``workspace/data_dst`` and their aligned faces into ``aligned``."""
    frames_dir = workspace / SIDES[1]
    aligned_dir = frames_dir / "aligned"
    scene = render_scene(seed)
    for i in range(count):
        frame = render_frame(PERSON_DST, i, seed, scene)
        _write_png(frames_dir / f"{i + 1:05d}{FRAME_EXT}", frame.image)
        face, meta = cut_face(frame, resolution, i)
        write_dfl_jpeg(aligned_dir / f"{i + 1:05d}_0.jpg", face, meta, JPEG_QUALITY)
        step()


def make_demo_facesets(
    workspace: str | Path,
    count: int = 64,
    resolution: int = 256,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Write ``count`` src and ``count`` dst synthetic faces as DFL whole_face aligned JPEGs.

    Files go to ``workspace/data_src/aligned/00001_0.jpg ...`` and ``workspace/data_dst/aligned``;
    the dst faces are cut from ``count`` dst frames ``workspace/data_dst/00001.png ...`` (a
    320x240 scene), with ``source_filename``, ``source_rect``, ``source_landmarks`` and
    ``image_to_face_mat`` as DFL's extractor writes them. The output is deterministic per
    ``seed``. A non-empty target folder is refused unless ``overwrite`` is True (then its
    images are replaced). ``progress(done, total)`` is called after each face. Returns the
    (src, dst) aligned folders.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if resolution < 64:
        raise ValueError(f"resolution must be at least 64, got {resolution}")
    workspace = Path(workspace)
    folders = tuple(workspace / side / "aligned" for side in SIDES)
    for folder in folders:
        _prepare_folder(folder, overwrite)
    _prepare_frames(workspace / SIDES[1], overwrite)
    total = 2 * count
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    for i in range(count):
        rng = np.random.default_rng([seed, 0, i])
        image, meta = render_face(PERSON_SRC, rng, resolution, index=i)
        write_dfl_jpeg(folders[0] / f"{i + 1:05d}_0.jpg", image, meta, JPEG_QUALITY)
        step()
    _write_dst(workspace, count, resolution, seed, step)
    return folders[0], folders[1]
