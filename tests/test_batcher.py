"""Tests for dfl.data.batcher: batch shapes, determinism, epoch sampling, caching, close, errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from dfl.data import landmarks as L
from dfl.data import sampling
from dfl.data.augment import AugmentConfig
from dfl.data.batcher import Batch, BatchError, BatchProducer
from dfl.data.face_image import read_image
from dfl.data.faceset import FaceSample, FacesetError, load_faceset
from dfl.data.imagecache import ImageCache
from dfl.data.sampling import EpochSampler, YawSampler

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


# --- colour transfer references ---------------------------------------------------------------


def _tinted_images(prefix: str, count: int, bgr: tuple[int, int, int]) -> dict[Path, np.ndarray]:
    rng = np.random.default_rng(len(prefix) + count)
    return {
        Path(f"mem/{prefix}{i}.png"): np.clip(
            np.asarray(bgr) + rng.normal(0, 15, (SIZE, SIZE, 3)), 0, 255
        ).astype(np.uint8)
        for i in range(count)
    }


TINTED = {**_tinted_images("red", 4, (40, 60, 200)), **_tinted_images("blue", 3, (200, 90, 40))}


def _tinted_samples(prefix: str) -> list[FaceSample]:
    return [
        FaceSample(path=p, shape=(SIZE, SIZE), face_type=None, landmarks=None)
        for p in TINTED
        if p.name.startswith(prefix)
    ]


def _tinted_reader(sample: FaceSample) -> np.ndarray:
    return TINTED[sample.path]


def test_colour_transfer_recolours_src_toward_dst_faces() -> None:
    ct_cfg = AugmentConfig(RES, L.FULL_FACE, ct_mode="rct")
    src, dst = _tinted_samples("red"), _tinted_samples("blue")

    def batches(src_cfg: AugmentConfig, workers: int) -> list[Batch]:
        with BatchProducer(
            src, dst, src_cfg, CFG, BATCH, 5, workers=workers, reader=_tinted_reader
        ) as producer:
            return [producer.get(timeout=10) for _ in range(3)]

    plain, with_ct, threaded = batches(CFG, 0), batches(ct_cfg, 0), batches(ct_cfg, 2)
    assert all(_same(a, b) for a, b in zip(with_ct, threaded, strict=True))
    for before, after in zip(plain, with_ct, strict=True):
        np.testing.assert_array_equal(before.dst.target, after.dst.target)  # dst untouched
        np.testing.assert_array_equal(before.src.mask, after.src.mask)
        dst_colour = after.dst.target.mean(axis=(0, 1, 2))
        for side in (after.src.target, after.src.warped):
            assert np.abs(side.mean(axis=(0, 1, 2)) - dst_colour).max() < 0.05
        assert np.abs(before.src.target.mean(axis=(0, 1, 2)) - dst_colour).max() > 0.3
    with BatchProducer(src, dst, ct_cfg, CFG, BATCH, 5, workers=0, reader=_tinted_reader) as p:
        preview = p.preview_batch()
        assert _same(preview, p.preview_batch())
        assert np.abs(preview.src.target.mean() - preview.dst.target.mean()) < 0.05


def test_unreadable_reference_names_its_file() -> None:
    def reader(sample: FaceSample) -> np.ndarray:
        if sample.path.name == "blue1.png":
            raise FacesetError(f"cannot read the face image {sample.path}: truncated")
        return _tinted_reader(sample)

    ct_cfg = AugmentConfig(RES, L.FULL_FACE, ct_mode="lct")
    with (
        BatchProducer(
            _tinted_samples("red"),
            _tinted_samples("blue"),
            ct_cfg,
            CFG,
            3,
            0,
            workers=0,
            reader=reader,
        ) as producer,
        pytest.raises(BatchError, match=r"blue1\.png"),
    ):
        for _ in range(4):
            producer.get()


# --- uniform yaw ------------------------------------------------------------------------------


def test_yaw_bin_index() -> None:
    assert sampling.yaw_bin_index(-5.0) == 0 and sampling.yaw_bin_index(-1.2) == 0
    step = 2.4 / 127
    assert sampling.yaw_bin_index(-1.2 + 1.5 * step) == 1
    assert sampling.yaw_bin_index(0.0) == 63  # starts ... -0.0094, +0.0094 ...
    assert sampling.yaw_bin_index(1.2 - 0.5 * step) == 126
    assert sampling.yaw_bin_index(1.2) == 127 and sampling.yaw_bin_index(3.0) == 127


def test_yaw_sampler_picks_bins_evenly_then_samples_within() -> None:
    sampler = YawSampler([list(range(10)), [10], [], [11, 12]], np.random.default_rng(0))
    assert len(sampler.bins) == 3  # empty bins dropped
    drawn = sampler.take(300)
    bins = [0 if i < 10 else 1 if i == 10 else 2 for i in drawn]
    for start in range(0, 300, 3):  # every 3 draws visit each bin once
        assert sorted(bins[start : start + 3]) == [0, 1, 2]
    frontal = [i for i in drawn if i < 10]
    assert sorted(frontal[:10]) == list(range(10)) and sorted(frontal[10:20]) == list(range(10))
    again = YawSampler([list(range(10)), [10], [], [11, 12]], np.random.default_rng(0))
    assert again.take(300) == drawn
    with pytest.raises(ValueError):
        YawSampler([[], []], np.random.default_rng(0))


def test_uniform_yaw_balances_the_producer(monkeypatch: pytest.MonkeyPatch) -> None:
    # 10 frontal faces and one to each side; the yaw is written into landmark 0.
    yaws = [0.0] * 10 + [-0.9, 0.9]
    samples = []
    for i, yaw in enumerate(yaws):
        lm = np.zeros((68, 2), np.float32)
        lm[0, 0] = yaw
        samples.append(
            FaceSample(
                path=Path(f"mem/src{i % 5}.png"), shape=(SIZE, SIZE), face_type=None, landmarks=lm
            )
        )
    monkeypatch.setattr(sampling, "estimate_yaw", lambda lm, size: float(lm[0, 0]))
    bins, plain = sampling.yaw_bins(samples)
    assert [sorted(b) for b in bins] == [[11], list(range(10)), [10]] and plain == []  # by -yaw
    yaw_cfg = AugmentConfig(RES, L.FULL_FACE, uniform_yaw=True)
    producer = BatchProducer(
        samples, _samples("dst"), yaw_cfg, CFG, 3, 0, workers=0, reader=_reader
    )
    assert producer.notes == []
    drawn = producer._src_order.take(300)
    counts = np.bincount(drawn, minlength=12)
    assert counts[10] == counts[11] == 100 and counts[:10].sum() == 100
    assert isinstance(producer.get(), Batch)


def test_uniform_yaw_on_plain_images_says_so() -> None:
    yaw_cfg = AugmentConfig(RES, L.FULL_FACE, uniform_yaw=True)
    with BatchProducer(
        _samples("src"), _samples("dst"), yaw_cfg, yaw_cfg, BATCH, 0, workers=0, reader=_reader
    ) as producer:
        assert isinstance(producer.get(), Batch)
    assert len(producer.notes) == 2
    assert producer.notes[0].startswith("uniform_yaw is unavailable for src")
    assert "plain images" in producer.notes[0]
    real = load_faceset(FACESET / "src").samples
    mixed = [*real[:3], *_samples("src")[:2]]
    producer = BatchProducer(mixed, _samples("dst"), yaw_cfg, CFG, 2, 0, workers=0)
    assert producer.notes == [
        "uniform_yaw: 2 src faces are plain images without landmarks (yaw unknown); they share "
        "one extra yaw bin"
    ]
    assert isinstance(producer._src_order, YawSampler)


def test_uniform_yaw_on_the_dfl_faceset() -> None:
    samples = load_faceset(FACESET / "src").samples
    bins, plain = sampling.yaw_bins(samples)
    assert plain == [] and sorted(i for b in bins for i in b) == list(range(8))
    cfg = AugmentConfig(RES, L.FULL_FACE, uniform_yaw=True, ct_mode="mkl")
    runs = []
    for workers in (0, 2):
        with BatchProducer(samples, samples, cfg, cfg, 2, 0, workers=workers) as producer:
            assert producer.notes == []
            runs.append([producer.get(timeout=10) for _ in range(2)])
    assert runs[0][0].src.target.shape == (2, RES, RES, 3)
    assert all(_same(a, b) for a, b in zip(*runs, strict=True))


# --- face types -------------------------------------------------------------------------------


def _full_face_faceset(count: int = 3, size: int = 96) -> tuple[list[FaceSample], dict]:
    """``count`` full_face faces cut from the whole_face fixture, as DFL's extractor would store
    them, each with an all-white XSeg mask (so the masks show where the stored image ends), and
    the images by path for a reader."""
    white = cv2.imencode(".png", np.full((size, size), 255, np.uint8))[1].tobytes()
    samples, images = [], {}
    for i, whole in enumerate(load_faceset(FACESET / "src").samples[:count]):
        mat = L.transform_matrix(whole.landmarks, size, L.FULL_FACE)
        path = Path(f"mem/full{i}.jpg")
        images[path] = cv2.warpAffine(read_image(whole), mat, (size, size), flags=cv2.INTER_CUBIC)
        landmarks = L.transform_points(whole.landmarks, mat).astype(np.float32)
        samples.append(FaceSample(path, (size, size), L.FULL_FACE, landmarks, xseg_mask=white))
    return samples, images


def test_a_full_face_faceset_trains_a_whole_face_model_with_one_warning() -> None:
    """docs/facesets.md §2: as in DFL, a narrower stored face is cropped to the model's face
    type; past the stored image the face repeats its edge and the mask is black; one note
    counts the faces."""
    from dfl.models.saehd.model import augment_configs

    full, images = _full_face_faceset()
    whole = load_faceset(FACESET / "dst").samples
    options = {"resolution": RES, "face_type": "wf", "archi": "liae", "random_warp": True}
    src_cfg, dst_cfg = augment_configs(options)
    assert src_cfg.face_type == L.WHOLE_FACE

    def reader(sample: FaceSample) -> np.ndarray:
        return images[sample.path] if sample.path in images else read_image(sample)

    with BatchProducer(full, whole, src_cfg, dst_cfg, 3, 0, workers=0, reader=reader) as producer:
        (note,) = producer.notes
        batch = producer.get()
    assert "faces stored narrower than the model's 'whole_face': src 3 of 3 (3 'full_face')" in note
    assert "dst" not in note.split(".")[0]  # the whole_face dst faces are not counted
    mask = batch.src.mask[..., 0]
    corners = np.stack([mask[:, :4, :4], mask[:, :4, -4:], mask[:, -4:, :4], mask[:, -4:, -4:]])
    assert corners.max() == 0.0  # black outside the stored full_face crop
    assert mask[:, RES // 2 - 4 : RES // 2 + 4, RES // 2 - 4 : RES // 2 + 4].min() > 0.99


def test_a_narrower_face_is_cut_at_the_models_face_type_with_replicated_edges() -> None:
    """No augmentation: the target is the stored image cut with the model's face-type matrix
    (cubic, edge pixels repeated as DFL's face images do), the mask the same cut of the stored
    mask with black outside."""
    full, images = _full_face_faceset(count=1)
    cfg = AugmentConfig(RES, L.WHOLE_FACE, random_warp=False, rotation_range_deg=(0.0, 0.0))
    cfg = replace(cfg, scale_range=(0.0, 0.0), shift_range=(0.0, 0.0))
    with BatchProducer(
        full, full, cfg, cfg, 1, 0, workers=0, reader=lambda s: images[s.path]
    ) as producer:
        batch = producer.get()
    mat = L.transform_matrix(full[0].landmarks, RES, L.WHOLE_FACE)
    image = images[full[0].path].astype(np.float32)
    expected = cv2.warpAffine(
        image, mat, (RES, RES), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    np.testing.assert_allclose(batch.src.target[0], np.clip(expected / 255, 0, 1), atol=1e-4)
    inside = cv2.warpAffine(np.ones(image.shape[:2], np.float32), mat, (RES, RES))
    assert (batch.src.mask[0, ..., 0][inside == 0] == 0).all() and (inside == 0).mean() > 0.2
    assert batch.src.target[0][inside == 0].mean() > 0.05  # the edge repeated, not black


def test_wider_and_plain_faces_give_no_face_type_note() -> None:
    whole = load_faceset(FACESET / "src").samples
    for narrower in (L.WHOLE_FACE, L.FULL_FACE, L.HALF_FACE):
        cfg = AugmentConfig(RES, narrower)
        with BatchProducer(whole, _samples("dst"), cfg, cfg, 2, 0, workers=0, reader=_reader) as p:
            assert p.notes == []


@pytest.mark.parametrize(("cores", "workers"), [(1, 1), (2, 2), (4, 4), (8, 6), (16, 14), (64, 16)])
def test_default_workers_follow_the_cores(cores: int, workers: int) -> None:
    from dfl.data.batcher import default_workers

    assert default_workers(cores) == workers
