"""Producer threads that turn face samples into a bounded queue of fixed-shape training batches."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from dfl.data.augment import AugmentConfig, process_sample
from dfl.data.face_image import read_image
from dfl.data.faceset import FaceSample
from dfl.data.imagecache import ImageCache
from dfl.data.sample_checks import face_type_notes, usable_samples
from dfl.data.sample_masks import base_masks
from dfl.data.sampling import EpochSampler, YawSampler, distinct_indices, yaw_bins

MIB = 1 << 20
DEFAULT_IMAGE_CACHE_BYTES = 512 * MIB
DEFAULT_WORKERS = 2
MAX_WORKERS = 16
CORES_LEFT_FOR_THE_STEP = 2  # on bigger machines, cores the training step keeps to itself
DEFAULT_QUEUE_SIZE = 4  # ready batches
POLL_S = 0.05  # how often blocked threads look at the stop flag
CLOSE_JOIN_S = 2.0  # longest close() waits for each thread

# Spawn keys under the seed: every random stream derives from (seed, key...).
_SRC_ORDER_KEY = 0
_DST_ORDER_KEY = 1
_BATCH_KEY = 2  # batch k augments with (seed, 2, k)
_PREVIEW_KEY = 3
_SRC_CT_KEY = 4  # colour-transfer references for src (drawn from dst)
_DST_CT_KEY = 5  # ... for dst (drawn from src), if a dst config asks for colour transfer


Reader = Callable[[FaceSample], np.ndarray]


@dataclass(frozen=True)
class SideBatch:
    warped: np.ndarray  # (B, R, R, 3) float32, network input
    target: np.ndarray  # (B, R, R, 3) float32, unwarped target
    mask: np.ndarray  # (B, R, R, 1) float32, full-face mask
    em_mask: np.ndarray | None = None  # (B, R, R, 1) eyes/mouth mask when the config asks for it


@dataclass(frozen=True)
class Batch:
    src: SideBatch
    dst: SideBatch

    def as_inputs(self) -> dict[str, np.ndarray]:
        """The arrays by input name: warped_src, target_src, mask_src, (em_src), then _dst."""
        inputs: dict[str, np.ndarray] = {}
        for name, side in (("src", self.src), ("dst", self.dst)):
            inputs[f"warped_{name}"] = side.warped
            inputs[f"target_{name}"] = side.target
            inputs[f"mask_{name}"] = side.mask
            if side.em_mask is not None:
                inputs[f"em_{name}"] = side.em_mask
        return inputs


class BatchError(RuntimeError):
    """A batch could not be made (e.g. an unreadable image); the message names the file."""


def default_workers(cpu_count: int | None = None) -> int:
    """Sample threads sized to the cores: all of them on small machines (where the step and the
    threads share the cores anyway), all but two on bigger ones, at most MAX_WORKERS."""
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or DEFAULT_WORKERS)
    if cores <= 2 * CORES_LEFT_FOR_THE_STEP:
        return max(1, cores)
    return min(MAX_WORKERS, cores - CORES_LEFT_FOR_THE_STEP)


def _sample_error(sample: FaceSample, exc: BaseException) -> BatchError:
    reason = str(exc) or type(exc).__name__
    # Readers already name the file; do not say it twice.
    if str(sample.path) in reason:
        return BatchError(f"cannot make a training sample: {reason}")
    return BatchError(f"cannot make a training sample from {sample.path}: {reason}")


class _Stopped(Exception):
    """The producer was closed while a batch was being made."""


class _References(NamedTuple):
    """Colour-transfer references for one side: the other side's samples, indices and config."""

    samples: list[FaceSample]
    indices: list[int]
    cfg: AugmentConfig


class _Claim(NamedTuple):
    """Batch k's sample indices, and its colour-transfer references' (None: no transfer)."""

    k: int
    src: list[int]
    dst: list[int]
    src_ct: list[int] | None
    dst_ct: list[int] | None


class BatchProducer:
    """Makes (src, dst) batches in ``workers`` threads and queues up to ``queue_size`` of them.

    Deterministic for a given seed whatever the thread timing: batch k takes the next indices of
    each side's epoch sampler (drawn in order k = 0, 1, 2, ... under one lock) and augments with
    its own generator seeded from (seed, k); finished batches enter the queue in order of k.
    ``workers=0`` makes each batch in the calling thread inside get() (same sequence; no
    timeout applies). At most ``queue_size + workers`` finished batches exist at once.
    Call close() (or use ``with``) to stop the threads.

    A side whose config has ``ct_mode`` is recoloured toward faces of the other side, drawn by
    their own epoch sampler. A side whose config has ``uniform_yaw`` draws its faces with a
    YawSampler (both: docs/training.md §8). Faces stored as a narrower face type than the config's
    are cropped to it as DFL does, with one note counting them (docs/facesets.md §2). ``notes``
    lists what the user should be told (e.g. uniform_yaw unavailable for plain images).
    """

    def __init__(
        self,
        src_samples: Sequence[FaceSample],
        dst_samples: Sequence[FaceSample],
        src_cfg: AugmentConfig,
        dst_cfg: AugmentConfig,
        batch_size: int,
        seed: int | None,
        workers: int = DEFAULT_WORKERS,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        image_cache_bytes: int = DEFAULT_IMAGE_CACHE_BYTES,
        *,
        reader: Reader = read_image,
    ) -> None:
        if not src_samples or not dst_samples:
            side = "src" if not src_samples else "dst"
            raise ValueError(f"no {side} samples to make batches from")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if workers < 0 or queue_size < 1:
            raise ValueError(f"need workers >= 0 and queue_size >= 1, got {workers}, {queue_size}")
        self.notes: list[str] = []
        self.src_samples, src_notes = usable_samples(src_samples, src_cfg.resolution, "src")
        self.dst_samples, dst_notes = usable_samples(dst_samples, dst_cfg.resolution, "dst")
        sides = [("src", self.src_samples, src_cfg.face_type)]
        sides.append(("dst", self.dst_samples, dst_cfg.face_type))
        self.notes.extend(src_notes + dst_notes + face_type_notes(sides))
        self.src_cfg = src_cfg
        self.dst_cfg = dst_cfg
        self.batch_size = batch_size
        self.seed = int(np.random.SeedSequence(seed).entropy) if seed is None else int(seed)
        self.cache = ImageCache(image_cache_bytes)
        self._reader = reader
        self._src_order = self._sampler(self.src_samples, src_cfg, _SRC_ORDER_KEY, "src")
        self._dst_order = self._sampler(self.dst_samples, dst_cfg, _DST_ORDER_KEY, "dst")
        self._src_ct_order = (
            EpochSampler(len(self.dst_samples), self._rng(_SRC_CT_KEY)) if src_cfg.ct_mode else None
        )
        self._dst_ct_order = (
            EpochSampler(len(self.src_samples), self._rng(_DST_CT_KEY)) if dst_cfg.ct_mode else None
        )

        self._claim_lock = threading.Lock()
        self._next_claim = 0
        self._turn = threading.Condition()
        self._next_put = 0
        self._queue: queue.Queue[Batch] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._error: tuple[str, BaseException] | None = None
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"dfl-batcher-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------------ public
    def get(self, timeout: float | None = None) -> Batch:
        """The next batch. Raises BatchError if a producer failed, TimeoutError if none arrives
        within ``timeout`` seconds, RuntimeError once closed."""
        if self._closed:
            raise RuntimeError("the batch producer is closed")
        if not self._threads:
            return self._make(self._claim())
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._raise_error()
            wait = POLL_S if deadline is None else min(POLL_S, deadline - time.monotonic())
            try:
                return self._queue.get(timeout=max(0.0, wait))
            except queue.Empty:
                if self._closed:
                    raise RuntimeError("the batch producer is closed") from None
                if not any(thread.is_alive() for thread in self._threads):
                    self._raise_error()
                    raise BatchError("the batch producer threads stopped unexpectedly") from None
                if deadline is not None and time.monotonic() >= deadline:
                    self._raise_error()
                    raise TimeoutError(f"no training batch ready within {timeout} s") from None

    def preview_batch(self, seed: int | None = None) -> Batch:
        """One batch made now in the calling thread from its own random stream (distinct faces
        where the sets are large enough); the training sequence is not disturbed."""
        key = (_PREVIEW_KEY,) if seed is None else (_PREVIEW_KEY, int(seed))
        rng = self._rng(*key)
        src_idx = distinct_indices(len(self.src_samples), self.batch_size, rng)
        dst_idx = distinct_indices(len(self.dst_samples), self.batch_size, rng)
        src_ct = dst_ct = None
        if self.src_cfg.ct_mode is not None:
            src_ct = distinct_indices(len(self.dst_samples), self.batch_size, rng)
        if self.dst_cfg.ct_mode is not None:
            dst_ct = distinct_indices(len(self.src_samples), self.batch_size, rng)
        return self._make_batch(rng, _Claim(-1, src_idx, dst_idx, src_ct, dst_ct))

    def close(self) -> None:
        """Stop the producer threads and wait (briefly) for them; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        with self._turn:
            self._turn.notify_all()
        self._drain()
        deadline = time.monotonic() + CLOSE_JOIN_S
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._drain()

    def __enter__(self) -> BatchProducer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------- workers
    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=key))

    def _sampler(
        self, samples: list[FaceSample], cfg: AugmentConfig, key: int, side: str
    ) -> EpochSampler | YawSampler:
        rng = self._rng(key)
        if not cfg.uniform_yaw:
            return EpochSampler(len(samples), rng)
        bins, plain = yaw_bins(samples)
        if not bins:
            self.notes.append(
                f"uniform_yaw is unavailable for {side}: its faces are plain images without "
                "landmarks, so their yaw is unknown; they are sampled evenly instead"
            )
            return EpochSampler(len(samples), rng)
        if plain:
            self.notes.append(
                f"uniform_yaw: {len(plain)} {side} faces are plain images without landmarks "
                "(yaw unknown); they share one extra yaw bin"
            )
            bins.append(plain)
        return YawSampler(bins, rng)

    def _claim(self) -> _Claim:
        with self._claim_lock:
            k = self._next_claim
            self._next_claim += 1
            n = self.batch_size
            return _Claim(
                k,
                self._src_order.take(n),
                self._dst_order.take(n),
                self._src_ct_order.take(n) if self._src_ct_order is not None else None,
                self._dst_ct_order.take(n) if self._dst_ct_order is not None else None,
            )

    def _make(self, claim: _Claim, stop: threading.Event | None = None) -> Batch:
        return self._make_batch(self._rng(_BATCH_KEY, claim.k), claim, stop)

    def _make_batch(
        self, rng: np.random.Generator, claim: _Claim, stop: threading.Event | None = None
    ) -> Batch:
        src_refs = dst_refs = None
        if claim.src_ct is not None:
            src_refs = _References(self.dst_samples, claim.src_ct, self.dst_cfg)
        if claim.dst_ct is not None:
            dst_refs = _References(self.src_samples, claim.dst_ct, self.src_cfg)
        src = self._make_side(self.src_samples, claim.src, self.src_cfg, rng, stop, src_refs)
        dst = self._make_side(self.dst_samples, claim.dst, self.dst_cfg, rng, stop, dst_refs)
        return Batch(src=src, dst=dst)

    def _cached(self, sample: FaceSample, cfg: AugmentConfig) -> tuple[np.ndarray, np.ndarray]:
        """The sample's image and stored-size masks for ``cfg`` (decoded once, then cached)."""
        return self.cache.get(
            (sample.path, cfg.eyes_mouth), lambda: self._load(sample, cfg.eyes_mouth)
        )

    def _make_side(
        self,
        samples: list[FaceSample],
        indices: list[int],
        cfg: AugmentConfig,
        rng: np.random.Generator,
        stop: threading.Event | None,
        refs: _References | None = None,
    ) -> SideBatch:
        n, r = len(indices), cfg.resolution
        warped = np.empty((n, r, r, 3), np.float32)
        target = np.empty((n, r, r, 3), np.float32)
        mask = np.empty((n, r, r, 1), np.float32)
        em = np.empty((n, r, r, 1), np.float32) if cfg.eyes_mouth else None
        for i, index in enumerate(indices):
            if stop is not None and stop.is_set():
                raise _Stopped
            sample = samples[index]
            reference = None
            if refs is not None:
                ref_sample = refs.samples[refs.indices[i]]
                try:  # cached under the other side's config, shared with its own use
                    reference = self._cached(ref_sample, refs.cfg)[0]
                except Exception as exc:
                    raise _sample_error(ref_sample, exc) from exc
            try:
                image, masks = self._cached(sample, cfg)
                out = process_sample(image, sample, cfg, rng, masks=masks, ct_reference=reference)
            except Exception as exc:
                raise _sample_error(sample, exc) from exc
            warped[i], target[i], mask[i] = out[0], out[1], out[2]
            if em is not None:
                em[i] = out[3]
        return SideBatch(warped=warped, target=target, mask=mask, em_mask=em)

    def _load(self, sample: FaceSample, eyes_mouth: bool) -> tuple[np.ndarray, np.ndarray]:
        image = self._reader(sample)
        if image is None:
            raise BatchError(f"cannot read the face image {sample.path}")
        return image, base_masks(sample, image.shape[:2], eyes_mouth)

    def _work(self) -> None:
        try:
            while not self._stop.is_set():
                claim = self._claim()
                k = claim.k
                batch = self._make(claim, self._stop)
                with self._turn:
                    while self._next_put != k and not self._stop.is_set():
                        self._turn.wait(POLL_S)
                if self._stop.is_set():
                    return
                # Only the thread holding turn k puts, so the queue stays in order of k.
                while True:
                    try:
                        self._queue.put(batch, timeout=POLL_S)
                        break
                    except queue.Full:
                        if self._stop.is_set():
                            return
                with self._turn:
                    self._next_put += 1
                    self._turn.notify_all()
        except _Stopped:
            return
        except Exception as exc:  # noqa: BLE001 - handed to the consumer by get()
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, BatchError) else f"batch producer failed: {exc!r}"
        with self._turn:
            if self._error is None:
                self._error = (message, exc.__cause__ or exc)
            self._stop.set()
            self._turn.notify_all()

    def _raise_error(self) -> None:
        if self._error is not None:
            message, cause = self._error
            raise BatchError(message) from cause

    def _drain(self) -> None:
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
