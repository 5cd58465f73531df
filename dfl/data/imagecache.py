"""A thread-safe, byte-bounded LRU of decoded face images and their masks (uint8), shared by the
sample threads so each face is read and decoded once while it stays in the budget."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np


class ImageCache:
    """Thread-safe LRU of decoded images and their stored-size masks (uint8), bounded by bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, int(max_bytes))
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[object, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(
        self, key: object, load: Callable[[], tuple[np.ndarray, np.ndarray]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The entry for ``key``, calling ``load()`` (outside the lock) on a miss."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry
            self.misses += 1
        entry = load()
        for array in entry:
            array.setflags(write=False)
        size = sum(a.nbytes for a in entry)
        if size > self.max_bytes:
            return entry
        with self._lock:
            if key not in self._entries:
                self._entries[key] = entry
                self.bytes += size
            while self.bytes > self.max_bytes:
                _, old = self._entries.popitem(last=False)
                self.bytes -= sum(a.nbytes for a in old)
        return entry
