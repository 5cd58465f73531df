"""The progress record of a merge, so an interrupted merge resumes without redoing frames.

A small JSON file in the output folder says which model state (type, name, iteration, morph
factor) and which settings made the frames listed as done, with a fingerprint of each frame's
inputs (the frame file's size and time, its faces' landmarks). A frame is skipped on the next run
only when the key is the same, its fingerprint is the same and both its output files exist; a
model trained further or changed settings start the merge over. Written atomically (temp file and
rename), at most every RECORD_EVERY_S seconds and at the end, so a crash loses at most the frames
of those seconds (they are merged again).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dfl.merge.frames import FrameFaces
from dfl.store.fsutil import write_json_durable

RECORD_NAME = ".dfl-merge-progress.json"
SCHEMA = 1
RECORD_EVERY_S = 2.0


def fingerprint(frame: FrameFaces) -> str:
    """What the merged frame depends on besides the model and settings."""
    digest = hashlib.sha256()
    try:
        stat = frame.path.stat()
        digest.update(f"{frame.path.name}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    except OSError:
        digest.update(f"{frame.path.name}|missing".encode())
    for face in frame.faces:
        digest.update(face.landmarks.astype("<f4").tobytes())
    return digest.hexdigest()[:32]


class ProgressRecord:
    """The done frames of one output folder for one key (model state and settings)."""

    def __init__(self, output_dir: Path, key: Mapping[str, Any]) -> None:
        self.path = Path(output_dir) / RECORD_NAME
        self.key = json.loads(json.dumps(key))  # as it reads back from JSON
        self.done: dict[str, str] = {}
        self.previous: dict[str, str] = {}  # what an earlier run with the same key finished
        self.restarted = False  # an earlier record with another key was found
        self._dirty = False
        self._written_at = 0.0

    def load(self) -> None:
        """Read an earlier record; it counts only when its key equals this one."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError):
            self.restarted = True  # unreadable: start over
            return
        same = isinstance(data, dict) and data.get("schema") == SCHEMA
        if not same or data.get("key") != self.key:
            self.restarted = True
            return
        done = data.get("done")
        if isinstance(done, dict):
            self.previous = {str(k): str(v) for k, v in done.items()}

    def was_done(self, frame: FrameFaces, outputs: tuple[Path, ...]) -> bool:
        """Whether an earlier run finished this frame with the same inputs and its files exist."""
        if self.previous.get(frame.name) != fingerprint(frame):
            return False
        return all(path.is_file() for path in outputs)

    def mark(self, frame: FrameFaces, print_: str | None = None) -> None:
        self.done[frame.name] = print_ or fingerprint(frame)
        self._dirty = True

    def save(self, force: bool = False) -> None:
        """Write the record when it changed (and RECORD_EVERY_S passed, unless forced)."""
        now = time.monotonic()
        if not self._dirty or (not force and now - self._written_at < RECORD_EVERY_S):
            return
        data = {"schema": SCHEMA, "key": self.key, "done": self.done}
        write_json_durable(self.path, data, sync_dir=False)
        self._dirty = False
        self._written_at = now
