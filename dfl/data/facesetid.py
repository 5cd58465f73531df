"""Which facesets a model was trained on: a small record saved with each checkpoint, and the
differences a resumed model's user is told about (issue 6: reusing a model on new faces)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dfl.data.faceset import FaceSample

SIDES = ("src", "dst")


def identity(samples: Sequence[FaceSample]) -> dict[str, Any]:
    """Folder, face count and a fingerprint of the file names (cheap: no pixels are read)."""
    names = sorted(Path(s.path).name for s in samples)
    digest = hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()[:16]
    folder = str(Path(samples[0].path).parent) if samples else ""
    return {"folder": folder, "count": len(samples), "fingerprint": digest}


def identities(src: Sequence[FaceSample], dst: Sequence[FaceSample]) -> dict[str, Any]:
    return {"src": identity(src), "dst": identity(dst)}


def differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """One line per side whose faces differ from those the model was trained on (nothing for a
    model saved before dfl recorded them)."""
    lines = []
    for side in SIDES:
        before, now = stored.get(side), current.get(side)
        if not isinstance(before, Mapping) or not isinstance(now, Mapping):
            continue
        if before.get("fingerprint") == now.get("fingerprint"):
            continue
        lines.append(
            f"The {side} faceset differs from the one this model was trained on: "
            f"{now.get('count')} faces in {now.get('folder')} "
            f"(before: {before.get('count')} faces in {before.get('folder')})."
        )
    return lines
