"""Merging single frames on demand for the interactive merger, without a window.

The crop and the network's answer do not depend on the settings (docs/merge.md "Crop and
predictor"), so each frame is read, cut and predicted once and kept in a small cache; a settings
key then only re-runs the paste (dfl.merge.masked.merge_frame). Frames are predicted a batch at a
time (the frames ahead of the current one come with it), so the network sees full batches.
Outputs are the non-interactive run's files (`<output-dir>/<stem>.png`, `<mask-dir>/<stem>.png`),
written atomically.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dfl.merge.frames import FrameFaces, Motion
from dfl.merge.masked import crop_face, merge_frame
from dfl.merge.resume import RECORD_NAME, fingerprint
from dfl.merge.run import (
    OUTPUT_SUFFIX,
    U8_MAX,
    FacePredictor,
    FrameError,
    read_frame,
    to_u8,
    write_png,
)
from dfl.merge.settings import MergeSettings

CACHED_FRAMES = 24  # frames kept read, cut and predicted (a few MB each at most)


@dataclass
class _Ready:
    image: np.ndarray  # (H, W, 3) float32 [0, 1]
    faces: list[tuple[Any, Any, Motion | None]]  # (crop, prediction, motion) per face


@dataclass(frozen=True)
class MergedFrame:
    image: np.ndarray  # (H, W, 3) uint8 BGR, as written
    mask: np.ndarray  # (H, W) uint8, as written


class FrameMerger:
    """Merges frame i with given settings and writes its two PNGs."""

    def __init__(
        self,
        frames: Sequence[FrameFaces],
        predictor: FacePredictor,
        output_dir: Path,
        mask_dir: Path,
    ) -> None:
        self.frames = list(frames)
        self.predictor = predictor
        self.output_dir, self.mask_dir = Path(output_dir), Path(mask_dir)
        self._cache: OrderedDict[int, _Ready] = OrderedDict()
        self._record_dropped = False
        self._lock = threading.Lock()

    def outputs(self, i: int) -> tuple[Path, Path]:
        name = self.frames[i].path.stem + OUTPUT_SUFFIX
        return self.output_dir / name, self.mask_dir / name

    def outputs_exist(self, i: int) -> bool:
        return all(path.is_file() for path in self.outputs(i))

    def fingerprints(self) -> list[str]:
        return [fingerprint(frame) for frame in self.frames]

    def _read(self, i: int) -> tuple[np.ndarray, list[Any]]:
        frame = self.frames[i]
        image = read_frame(frame.path).astype(np.float32) / U8_MAX
        model = self.predictor.model_face
        try:
            crops = [crop_face(image, face.landmarks, model) for face in frame.faces]
        except (ValueError, cv2.error) as exc:
            raise FrameError(f"a face cannot be cut out: {exc}") from None
        return image, crops

    def prepare(self, indices: Sequence[int]) -> dict[int, str]:
        """Read, cut and predict the frames not cached yet, in one network call; returns the
        frames that failed with the reason."""
        todo = [i for i in indices if i not in self._cache]
        failed: dict[int, str] = {}
        read: list[tuple[int, np.ndarray, list[Any]]] = []
        for i in todo:
            try:
                read.append((i, *self._read(i)))
            except FrameError as exc:
                failed[i] = str(exc)
        crops = [crop for _, _, frame_crops in read for crop in frame_crops]
        predictions = self.predictor.predict(np.stack([c.face for c in crops])) if crops else []
        start = 0
        for i, image, frame_crops in read:
            mine = predictions[start : start + len(frame_crops)]
            start += len(frame_crops)
            motions = list(self.frames[i].motion) or [None] * len(frame_crops)
            self._keep(i, _Ready(image, list(zip(frame_crops, mine, motions, strict=True))))
        return failed

    def _keep(self, i: int, ready: _Ready) -> None:
        self._cache[i] = ready
        while len(self._cache) > CACHED_FRAMES:
            self._cache.popitem(last=False)

    def merge(self, i: int, settings: MergeSettings) -> MergedFrame:
        """Merge frame i and write its PNGs (FrameError, or MergeWriteError for the folder)."""
        with self._lock:  # process-remaining merges from several threads
            failed = self.prepare([i])
            if i in failed:
                raise FrameError(failed[i])
            ready = self._cache[i]
            self._cache.move_to_end(i)
            self._drop_progress_record()
        resolution = int(self.predictor.model_face.resolution)
        try:
            image, mask = merge_frame(ready.image, ready.faces, settings, resolution=resolution)
        except (ValueError, cv2.error) as exc:
            raise FrameError(f"cannot be merged: {exc}") from None
        mask = np.asarray(mask)
        merged = MergedFrame(to_u8(image), to_u8(mask[..., 0] if mask.ndim == 3 else mask))
        out, out_mask = self.outputs(i)
        write_png(out, merged.image)
        write_png(out_mask, merged.mask)
        return merged

    def merge_many(
        self, jobs: Sequence[tuple[int, MergeSettings]], workers: int
    ) -> dict[int, MergedFrame | str]:
        """Merge several frames (process-remaining): one network call, the pastes in parallel
        threads; per frame its result or why it failed."""
        if len(jobs) > CACHED_FRAMES:
            raise ValueError(f"at most {CACHED_FRAMES} frames at a time")
        failed: dict[int, MergedFrame | str] = dict(self.prepare([i for i, _ in jobs]))
        todo = [(i, s) for i, s in jobs if i not in failed]

        def one(job: tuple[int, MergeSettings]) -> MergedFrame | str:
            try:
                return self.merge(*job)
            except FrameError as exc:
                return str(exc)

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = dict(zip([i for i, _ in todo], pool.map(one, todo), strict=True))
        return {**failed, **results}

    def read_output(self, i: int) -> MergedFrame | None:
        """The merged frame and its mask written earlier, or None when the frame cannot be read
        (a missing or unreadable mask reads as all face)."""
        path, mask_path = self.outputs(i)
        image = _read_png(path, cv2.IMREAD_COLOR)
        if image is None:
            return None
        mask = _read_png(mask_path, cv2.IMREAD_GRAYSCALE)
        if mask is None or mask.shape != image.shape[:2]:
            mask = np.full(image.shape[:2], 255, np.uint8)
        return MergedFrame(image, mask)

    def _drop_progress_record(self) -> None:
        """The non-interactive run's resume record no longer describes the output folder once
        frames are written here with per-frame settings: remove it (the next non-interactive
        run merges every frame)."""
        if self._record_dropped:
            return
        (self.output_dir / RECORD_NAME).unlink(missing_ok=True)
        self._record_dropped = True


def _read_png(path: Path, flags: int) -> np.ndarray | None:
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    return cv2.imdecode(data, flags) if data.size else None
