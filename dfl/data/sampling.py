"""How the batcher picks faces: shuffled epochs, uniform yaw (docs/training.md §8) and distinct
draws for a preview batch. Every sampler is thread-safe and reproducible with a seeded generator."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from dfl.data.faceset import FaceSample
from dfl.data.head_pose import estimate_yaw

# uniform_yaw (docs/training.md §8): -yaw bucketed at these 128 bin starts; the ends are open.
YAW_BINS = 128
YAW_RANGE = 1.2  # radians


class EpochSampler:
    """Indices in shuffled epochs: pop from a shuffled copy, reshuffle when it runs out.

    Thread-safe; with a seeded generator the sequence of indices is reproducible.
    """

    def __init__(self, count: int, rng: np.random.Generator) -> None:
        if count < 1:
            raise ValueError("cannot sample from an empty set")
        self._count = count
        self._rng = rng
        self._pending: list[int] = []
        self._lock = threading.Lock()

    def take(self, n: int) -> list[int]:
        with self._lock:
            out = []
            for _ in range(n):
                if not self._pending:
                    self._pending = self._rng.permutation(self._count).tolist()
                out.append(self._pending.pop())
            return out


class YawSampler:
    """Indices balanced over head yaw: pick a bin, then a sample in it, each shuffled-without-
    replacement (an epoch over the bins, and one per bin), so every bin is drawn about equally
    often whatever its size. Thread-safe; reproducible with a seeded generator."""

    def __init__(self, bins: Sequence[Sequence[int]], rng: np.random.Generator) -> None:
        self.bins = [list(b) for b in bins if len(b) > 0]
        if not self.bins:
            raise ValueError("cannot sample from an empty set")
        self._rng = rng
        self._bin_order = EpochSampler(len(self.bins), rng)
        self._pending: list[list[int]] = [[] for _ in self.bins]
        self._lock = threading.Lock()

    def take(self, n: int) -> list[int]:
        with self._lock:
            out = []
            for b in self._bin_order.take(n):
                pending = self._pending[b]
                if not pending:
                    members = self.bins[b]
                    pending.extend(members[i] for i in self._rng.permutation(len(members)))
                out.append(pending.pop())
            return out


def yaw_bin_index(yaw: float) -> int:
    """The uniform-yaw bin of a yaw value: bin i starts at linspace(-1.2, 1.2, 128)[i]; values
    below the second start fall in bin 0 and those at or above 1.2 in bin 127."""
    starts = np.linspace(-YAW_RANGE, YAW_RANGE, YAW_BINS)
    return int(np.clip(np.searchsorted(starts, yaw, side="right") - 1, 0, YAW_BINS - 1))


def yaw_bins(samples: Sequence[FaceSample]) -> tuple[list[list[int]], list[int]]:
    """Group sample indices by yaw bin (bucketing -yaw, as DFL does; empty bins dropped).

    Returns (bins, plain): ``plain`` lists the samples without landmarks, whose yaw is unknown.
    Yaw is estimated from the aligned landmarks with the stored image width as the size.
    """
    grouped: dict[int, list[int]] = {}
    plain = []
    for i, sample in enumerate(samples):
        if sample.landmarks is None:
            plain.append(i)
            continue
        yaw = estimate_yaw(sample.landmarks, sample.shape[1])
        grouped.setdefault(yaw_bin_index(-yaw), []).append(i)
    return [grouped[b] for b in sorted(grouped)], plain


def distinct_indices(count: int, n: int, rng: np.random.Generator) -> list[int]:
    """n indices without repeats while count allows (then repeating the permutation)."""
    order = rng.permutation(count)
    return [int(order[i % count]) for i in range(n)]
