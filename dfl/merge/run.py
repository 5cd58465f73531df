"""The non-interactive merge: frames in, merged frames and masks out, as fast as the machine allows.

Frames go through in chunks. Worker threads read each frame and cut its faces (OpenCV releases
the GIL); the main thread runs the chunk's faces through the network in batches on the device;
worker threads then merge each frame and write its two PNGs, while the main thread already
prepares the next chunk. Outputs keep the frame's name with `.png` (DFL's InteractiveMerger
naming) and are written atomically, so a frame's file is either whole or absent. A progress
record (dfl.merge.resume) lets an interrupted merge continue where it stopped (docs/merge-run.md).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from dfl.errors import UserError
from dfl.merge.frames import FrameFaces, Motion, natural_key
from dfl.merge.resume import ProgressRecord
from dfl.store.fsutil import DiskFullError, is_temp_name, write_bytes_durable

OUTPUT_SUFFIX = ".png"
MAX_DEFAULT_WORKERS = 8  # DFL offered max(8, cores); more than the cores only adds memory
CHUNK_BATCHES = 2  # faces per chunk: this many network batches
MAX_CHUNK_FRAMES = 64
U8_MAX = 255.0
U16_TO_U8 = 257.0  # 65535 / 255


class MergeWriteError(UserError):
    """The output cannot be written (folder not writable, disk full); the merge stops."""


class FrameError(Exception):
    """One frame cannot be merged; the others go on."""


class FacePredictor(Protocol):
    model_face: Any  # dfl.merge.masked.ModelFace
    batch_size: int  # faces per network call

    def predict(self, faces: np.ndarray) -> list[Any]: ...


@dataclass(frozen=True)
class Engine:
    """The image functions of the merge (dfl.merge.masked's by default)."""

    crop: Callable[..., Any]  # (frame, landmarks, model_face, settings) -> FaceCrop
    merge: Callable[..., tuple[np.ndarray, np.ndarray]]  # (frame, faces, settings) -> image, mask


def default_engine() -> Engine:
    from dfl.merge import masked

    return Engine(crop=masked.crop_face, merge=masked.merge_frame)


def default_workers() -> int:
    return max(1, min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1))


@dataclass(frozen=True)
class MergeJob:
    frames: Sequence[FrameFaces]
    output_dir: Path
    mask_dir: Path
    settings: Any  # dfl.merge.settings.MergeSettings
    model_key: Mapping[str, Any]  # the model state: frames are resumed only for the same state
    workers: int = field(default_factory=default_workers)


@dataclass
class MergeProgress:
    done: int  # frames finished, resumed ones included
    total: int
    resumed: int
    failed: int
    elapsed_s: float
    merged_now: int = 0  # frames merged in this run

    @property
    def frames_per_s(self) -> float:
        return self.merged_now / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass
class MergeReport:
    merged: int = 0  # frames with faces merged in this run
    copied: int = 0  # frames without faces written unchanged
    resumed: int = 0  # frames an earlier run had finished
    failed: list[tuple[str, str]] = field(default_factory=list)  # (frame name, reason)
    sizes: Counter[tuple[int, int]] = field(default_factory=Counter)  # (w, h) of the frames read
    restarted: bool = False  # an earlier progress record for other settings/model was found
    elapsed_s: float = 0.0

    @property
    def written(self) -> int:
        return self.merged + self.copied

    @property
    def frames_per_s(self) -> float:
        return self.written / self.elapsed_s if self.elapsed_s > 0 else 0.0


def output_paths(frame: FrameFaces, job: MergeJob) -> tuple[Path, Path]:
    name = frame.path.stem + OUTPUT_SUFFIX
    return job.output_dir / name, job.mask_dir / name


def prepare_output(folder: Path, what: str) -> None:
    """Create the folder if needed and check that files can be written into it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_bytes_durable(folder / ".dfl-write-check", b"", sync_dir=False)
        (folder / ".dfl-write-check").unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise MergeWriteError(f"cannot write to the {what} {folder}: {reason}") from None


def stale_outputs(job: MergeJob) -> list[Path]:
    """Images in the output folder that no frame of this job writes (from other runs)."""
    expected = {output_paths(frame, job)[0].name for frame in job.frames}
    try:
        found = [p for p in job.output_dir.iterdir() if p.suffix.lower() == OUTPUT_SUFFIX]
    except OSError:
        return []
    stale = [p for p in found if p.name not in expected and not is_temp_name(p.name)]
    return sorted(stale, key=lambda p: natural_key(p.name))


def read_frame(path: Path) -> np.ndarray:
    """A frame as (H, W, 3) uint8 BGR: grey repeated, alpha dropped, 16 bit scaled to 8 bit."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)  # also for non-ASCII paths on Windows
    except OSError as exc:
        raise FrameError(f"cannot be read: {exc.strerror or exc}") from None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise FrameError("is not a readable image (damaged or unsupported file)")
    if image.dtype == np.uint16:
        image = np.round(image / U16_TO_U8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise FrameError(f"has unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        image = image[..., None]
    channels = image.shape[2]
    if channels == 1:
        return np.repeat(image, 3, axis=2)
    if channels == 4:
        return np.ascontiguousarray(image[..., :3])
    if channels != 3:
        raise FrameError(f"has {channels} channels")
    return image


def to_u8(image: np.ndarray) -> np.ndarray:
    """[0, 1] float -> uint8, rounded (DFL truncated: a half-step darker on average)."""
    return np.rint(np.clip(image, 0.0, 1.0) * U8_MAX).astype(np.uint8)


def write_png(path: Path, image: np.ndarray) -> None:
    ok, encoded = cv2.imencode(OUTPUT_SUFFIX, image)
    if not ok:
        raise FrameError(f"cannot be encoded as PNG ({image.shape})")
    try:
        write_bytes_durable(path, encoded.tobytes(), sync_dir=False)
    except (DiskFullError, PermissionError) as exc:
        raise MergeWriteError(f"cannot write {path}: {exc}") from None
    except OSError as exc:
        if not path.parent.is_dir():
            raise MergeWriteError(f"the output folder {path.parent} disappeared") from None
        raise FrameError(f"cannot be written to {path}: {exc.strerror or exc}") from None


@dataclass
class _Prepared:
    frame: FrameFaces
    image: np.ndarray | None = None  # (H, W, 3) float32 [0, 1]
    crops: list[Any] = field(default_factory=list)
    error: str | None = None


def _prepare(frame: FrameFaces, job: MergeJob, engine: Engine, model_face: Any) -> _Prepared:
    """Read the frame and cut its faces (a worker thread)."""
    try:
        image = read_frame(frame.path).astype(np.float32) / U8_MAX
    except FrameError as exc:
        return _Prepared(frame, error=str(exc))
    try:
        crops = [engine.crop(image, f.landmarks, model_face, job.settings) for f in frame.faces]
    except (ValueError, cv2.error) as exc:
        return _Prepared(frame, error=f"a face cannot be cut out: {exc}")
    return _Prepared(frame, image, crops)


def _finish(
    prepared: _Prepared, predictions: list[Any], job: MergeJob, engine: Engine, model_face: Any
) -> None:
    """Merge one frame and write its two PNGs (a worker thread)."""
    frame, image = prepared.frame, prepared.image
    assert image is not None
    if not frame.faces:
        merged, mask = _faceless(image, job, model_face)
    else:
        motions: list[Motion | None] = list(frame.motion) or [None] * len(frame.faces)
        faces = list(zip(prepared.crops, predictions, motions, strict=True))
        try:
            merged, mask = engine.merge(image, faces, job.settings)
        except (ValueError, cv2.error) as exc:
            raise FrameError(f"cannot be merged: {exc}") from None
    out, out_mask = output_paths(frame, job)
    mask = np.asarray(mask)
    write_png(out, to_u8(merged))
    write_png(out_mask, to_u8(mask[..., 0] if mask.ndim == 3 else mask))


def _faceless(image: np.ndarray, job: MergeJob, model_face: Any) -> tuple[np.ndarray, np.ndarray]:
    """A frame without faces: itself and an empty mask; raw-predict: black at the model's size
    (DFL InteractiveMergerSubprocessor)."""
    if job.settings.mode == "raw-predict":
        r = int(model_face.resolution)
        return np.zeros((r, r, 3), np.float32), np.zeros((r, r), np.float32)
    return image, np.zeros(image.shape[:2], np.float32)


def _chunks(frames: list[FrameFaces], faces_per_chunk: int) -> list[list[FrameFaces]]:
    chunks: list[list[FrameFaces]] = [[]]
    faces = 0
    for frame in frames:
        if chunks[-1] and (faces >= faces_per_chunk or len(chunks[-1]) >= MAX_CHUNK_FRAMES):
            chunks.append([])
            faces = 0
        chunks[-1].append(frame)
        faces += len(frame.faces)
    return [chunk for chunk in chunks if chunk]


class _Runner:
    """One merge run: the pool, the pending merges, the report and the progress record."""

    def __init__(
        self,
        job: MergeJob,
        predictor: FacePredictor,
        engine: Engine,
        progress: Callable[[MergeProgress], None] | None,
    ) -> None:
        self.job, self.predictor, self.engine, self.progress = job, predictor, engine, progress
        self.report = MergeReport()
        key = {"model": dict(job.model_key), "settings": job.settings.to_json()}
        self.record = ProgressRecord(job.output_dir, key)
        self.pending: list[tuple[FrameFaces, Future[None]]] = []
        self.started = time.perf_counter()

    def _tell(self) -> None:
        if self.progress is None:
            return
        r = self.report
        self.progress(
            MergeProgress(
                done=r.written + r.resumed + len(r.failed),
                total=len(self.job.frames),
                resumed=r.resumed,
                failed=len(r.failed),
                elapsed_s=time.perf_counter() - self.started,
                merged_now=r.written,
            )
        )

    def _fail(self, frame: FrameFaces, reason: str) -> None:
        self.report.failed.append((frame.name, reason))
        self._tell()

    def _harvest(self, wait_until: int) -> None:
        """Collect finished merges in order, waiting while more than `wait_until` are pending."""
        while self.pending and (len(self.pending) > wait_until or self.pending[0][1].done()):
            frame, future = self.pending.pop(0)
            try:
                future.result()
            except FrameError as exc:
                self._fail(frame, str(exc))
                continue
            if frame.faces:
                self.report.merged += 1
            else:
                self.report.copied += 1
            self.record.mark(frame)
            self.record.save()
            self._tell()

    def _todo(self) -> list[FrameFaces]:
        """The frames still to merge; frames an earlier run finished are counted as resumed."""
        self.record.load()
        self.report.restarted = self.record.restarted
        todo = []
        for frame in self.job.frames:
            if self.record.was_done(frame, output_paths(frame, self.job)):
                self.record.mark(frame, self.record.previous[frame.name])
                self.report.resumed += 1
            else:
                todo.append(frame)
        return todo

    def _chunk(self, pool: ThreadPoolExecutor, chunk: list[FrameFaces]) -> None:
        model_face = self.predictor.model_face
        prepared = list(pool.map(lambda f: _prepare(f, self.job, self.engine, model_face), chunk))
        usable = []
        for item in prepared:
            if item.error is not None:
                self._fail(item.frame, item.error)
            else:
                self.report.sizes[(item.image.shape[1], item.image.shape[0])] += 1
                usable.append(item)
        crops = [crop for item in usable for crop in item.crops]
        predictions = self.predictor.predict(np.stack([c.face for c in crops])) if crops else []
        start = 0
        for item in usable:
            mine = predictions[start : start + len(item.crops)]
            start += len(item.crops)
            future = pool.submit(_finish, item, mine, self.job, self.engine, model_face)
            self.pending.append((item.frame, future))
        self._harvest(wait_until=2 * len(chunk) + self.job.workers)

    def run(self) -> MergeReport:
        todo = self._todo()
        self._tell()
        faces_per_chunk = CHUNK_BATCHES * max(1, int(self.predictor.batch_size))
        pool = ThreadPoolExecutor(max_workers=max(1, self.job.workers), thread_name_prefix="merge")
        try:
            for chunk in _chunks(todo, faces_per_chunk):
                self._chunk(pool, chunk)
            self._harvest(wait_until=0)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            self._harvest_quietly()
            raise
        finally:
            pool.shutdown(wait=True)
            self.report.elapsed_s = time.perf_counter() - self.started
            self.record.save(force=True)
        return self.report

    def _harvest_quietly(self) -> None:
        """After an interruption: keep the frames that did finish, drop the rest."""
        for frame, future in self.pending:
            if future.done() and not future.cancelled() and future.exception() is None:
                self.record.mark(frame)
        self.pending.clear()


def run_merge(
    job: MergeJob,
    predictor: FacePredictor,
    *,
    engine: Engine | None = None,
    progress: Callable[[MergeProgress], None] | None = None,
) -> MergeReport:
    """Merge every frame of `job` not already done for the same model state and settings.

    Frames that fail are reported in MergeReport.failed and the others merged. MergeWriteError
    stops the run (the outputs cannot be written). On KeyboardInterrupt the finished frames are
    recorded (the next run resumes after them) and the interrupt is raised again."""
    prepare_output(job.output_dir, "output folder")
    prepare_output(job.mask_dir, "mask output folder")
    return _Runner(job, predictor, engine or default_engine(), progress).run()
