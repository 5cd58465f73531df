"""Tests for dfl.batcher: batch shapes, determinism, epoch sampling, caching, close and errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from dfl import landmarks as L
from dfl.augment import AugmentConfig
from dfl.batcher import Batch, BatchError, BatchProducer, EpochSampler, ImageCache
from dfl.faceset import FaceSample, FacesetError, load_faceset

FACESET = Path(__file__).parent / "data" / "dfl-faceset"
RES = 64
SIZE = 48  # stored size of the synthetic plain images
CFG = AugmentConfig(RES, L.FULL_FACE)
BATCH = 3


def _images(prefix: str, count: int, seed: int) -> dict[Path, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        Path(f"mem/{prefix}{i}.png"): rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        for i in range(count)
    }


IMAGES = {**_images("src", 5, 0), **_images("dst", 4, 1)}


def _samples(prefix: str) -> list[FaceSample]:
    return [
        FaceSample(path=p, shape=(SIZE, SIZE), face_type=None, landmarks=None)
        for p in IMAGES
        if p.name.startswith(prefix)
    ]


def _reader(sample: FaceSample) -> np.ndarray:
    return IMAGES[sample.path]


def _producer(seed: int = 7, **kw: object) -> BatchProducer:
    args: dict[str, object] = {"workers": 2, "reader": _reader}
    args.update(kw)
    return BatchProducer(_samples("src"), _samples("dst"), CFG, CFG, BATCH, seed, **args)  # type: ignore[arg-type]


def _arrays(batch: Batch) -> list[np.ndarray]:
    return list(batch.as_inputs().values())


def _same(a: Batch, b: Batch) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(_arrays(a), _arrays(b), strict=True))


def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_batch_shapes_and_input_names() -> None:
    em_cfg = AugmentConfig(RES, L.FULL_FACE, eyes_mouth=True)
    with BatchProducer(
        _samples("src"), _samples("dst"), em_cfg, CFG, BATCH, 0, workers=1, reader=_reader
    ) as producer:
        batch = producer.get(timeout=10)
    assert batch.src.warped.shape == batch.src.target.shape == (BATCH, RES, RES, 3)
    assert batch.src.mask.shape == (BATCH, RES, RES, 1)
    assert batch.src.em_mask is not None and batch.src.em_mask.shape == (BATCH, RES, RES, 1)
    assert batch.dst.em_mask is None
    inputs = batch.as_inputs()
    assert list(inputs) == [
        "warped_src",
        "target_src",
        "mask_src",
        "em_src",
        "warped_dst",
        "target_dst",
        "mask_dst",
    ]
    for value in inputs.values():
        assert value.dtype == np.float32
        assert value.min() >= 0.0 and value.max() <= 1.0


def test_same_seed_same_batches_whatever_the_threads() -> None:
    runs = []
    for workers, queue_size in ((0, 1), (1, 4), (3, 2)):
        with _producer(7, workers=workers, queue_size=queue_size) as producer:
            runs.append([producer.get(timeout=10) for _ in range(6)])
    for other in runs[1:]:
        assert all(_same(a, b) for a, b in zip(runs[0], other, strict=True))
    with _producer(8, workers=0) as producer:
        different = [producer.get() for _ in range(2)]
    assert not _same(runs[0][0], different[0])
    # Consecutive batches differ too.
    assert not _same(runs[0][0], runs[0][1])


def test_epoch_sampler_visits_every_index_once_per_epoch() -> None:
    sampler = EpochSampler(5, np.random.default_rng(0))
    first, second = sampler.take(5), sampler.take(5)
    assert sorted(first) == sorted(second) == list(range(5))
    assert first != second or sampler.take(5) != first
    counts = np.bincount(sampler.take(50), minlength=5)
    assert counts.tolist() == [10] * 5
    with pytest.raises(ValueError):
        EpochSampler(0, np.random.default_rng(0))


def test_close_with_a_full_queue_returns_promptly() -> None:
    producer = _producer(workers=2, queue_size=1)
    _wait_until(lambda: producer._queue.full())
    time.sleep(0.1)  # let both workers block: one on put, one waiting for its turn
    started = time.monotonic()
    producer.close()
    assert time.monotonic() - started < 1.0
    assert not any(t.is_alive() for t in producer._threads)
    producer.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        producer.get(timeout=1)


def test_producer_error_names_the_file() -> None:
    bad = Path("mem/dst2.png")

    def reader(sample: FaceSample) -> np.ndarray:
        if sample.path == bad:
            raise FacesetError(f"cannot read the face image {sample.path}: truncated")
        return _reader(sample)

    for workers in (2, 0):
        with _producer(workers=workers, reader=reader) as producer:
            started = time.monotonic()
            with pytest.raises(BatchError, match=r"dst2\.png") as info:
                for _ in range(10):  # the bad face is met within the first two epochs
                    producer.get(timeout=10)
            assert time.monotonic() - started < 5.0
            assert isinstance(info.value.__cause__, FacesetError)


def test_unreadable_file_on_disk(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    sample = FaceSample(path=broken, shape=(64, 64), face_type=None, landmarks=None)
    with (
        BatchProducer([sample], [sample], CFG, CFG, 1, 0, workers=1) as producer,
        pytest.raises(BatchError, match=r"broken\.jpg"),
    ):
        producer.get(timeout=10)


def test_get_times_out_when_nothing_arrives() -> None:
    release = threading.Event()

    def slow_reader(sample: FaceSample) -> np.ndarray:
        release.wait(5.0)
        return _reader(sample)

    producer = _producer(workers=1, reader=slow_reader)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            producer.get(timeout=0.2)
        assert time.monotonic() - started < 1.0
        release.set()
        assert isinstance(producer.get(timeout=10), Batch)
    finally:
        release.set()
        producer.close()


def test_images_are_decoded_once_and_cached() -> None:
    calls: list[Path] = []

    def counting_reader(sample: FaceSample) -> np.ndarray:
        calls.append(sample.path)
        return _reader(sample)

    with _producer(workers=0, reader=counting_reader) as producer:
        for _ in range(6):
            producer.get()
        assert sorted(calls) == sorted(IMAGES)  # 18 samples per side drawn, 9 files decoded
        assert producer.cache.hits == 2 * 6 * BATCH - len(IMAGES)
    calls.clear()
    with _producer(workers=0, reader=counting_reader, image_cache_bytes=0) as producer:
        producer.get()
        assert len(calls) == 2 * BATCH and len(producer.cache) == 0


def test_image_cache_evicts_least_recently_used() -> None:
    def entry(n: int) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(n, np.uint8), np.zeros(0, np.uint8)

    cache = ImageCache(250)
    cache.get("a", lambda: entry(100))
    cache.get("b", lambda: entry(100))
    cache.get("a", lambda: entry(100))  # a is now the most recent
    cache.get("c", lambda: entry(100))  # evicts b
    assert cache.bytes == 200 and len(cache) == 2
    assert (cache.hits, cache.misses) == (1, 3)
    cache.get("b", lambda: entry(100))
    assert cache.misses == 4
    cache.get("huge", lambda: entry(1000))  # larger than the cache: returned, not kept
    assert "huge" not in cache._entries
    a, _ = cache.get("c", lambda: entry(100))
    assert not a.flags.writeable


def test_preview_batch_is_repeatable_and_leaves_training_alone() -> None:
    with _producer(workers=0) as producer:
        preview = producer.preview_batch()
        again = producer.preview_batch()
        first = producer.get()
    assert _same(preview, again)
    assert not _same(preview, producer.preview_batch(seed=1))
    with _producer(workers=0) as producer:
        assert _same(first, producer.get())
    with _producer(workers=1) as producer:
        producer.close()
        assert isinstance(producer.preview_batch(), Batch)  # still works once closed


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="no src samples"):
        BatchProducer([], _samples("dst"), CFG, CFG, 1, 0, workers=0)
    with pytest.raises(ValueError, match="batch_size"):
        BatchProducer(_samples("src"), _samples("dst"), CFG, CFG, 0, 0, workers=0)


def test_quick96_batches_from_the_dfl_faceset() -> None:
    src = load_faceset(FACESET / "src").samples
    dst = load_faceset(FACESET / "dst").samples
    cfg = AugmentConfig(96, L.FULL_FACE)
    with BatchProducer(src, dst, cfg, cfg, 4, 1, workers=2) as producer:
        batches = [producer.get(timeout=30) for _ in range(3)]
    for batch in batches:
        for side in (batch.src, batch.dst):
            assert side.warped.shape == (4, 96, 96, 3)
            assert side.mask.shape == (4, 96, 96, 1)
            assert side.em_mask is None
            assert (side.mask.mean(axis=(1, 2, 3)) > 0.3).all()
    # src and dst are different people: their mean colours differ.
    assert not np.allclose(batches[0].src.target.mean(), batches[0].dst.target.mean(), atol=1e-3)
