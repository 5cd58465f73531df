"""Read DFL's pickled model files through dfl.data.jpeg_metadata's allow-list unpickler
(decision 8): `data.dat` (options, iteration, loss history, preview samples) and the `.npy`
weight dicts."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dfl.data.jpeg_metadata import MetadataError, MetadataRefusedError, unpickle_restricted

PICKLE_STOP = b"."  # every whole pickle stream ends with the STOP opcode
PICKLE_PROTO = b"\x80"  # the PROTO opcode: first byte of every pickle of protocol 2 or newer
ITERATION_KEY = "iter"
OPTIONS_KEY = "options"
LOSS_HISTORY_KEY = "loss_history"
PREVIEW_KEY = "sample_for_preview"
LOSSES_PER_ROW = 2  # DFL stores [src_loss, dst_loss] per iteration


class DflModelError(ValueError):
    """A DFL model cannot be imported; the message names the file (and weight) and says why."""

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None):
        super().__init__(message)
        self.path = None if path is None else Path(path)


class DflFileRefusedError(DflModelError):
    """A DFL file asks the unpickler for something outside the allow-list; nothing was run."""

    def __init__(self, path: str | os.PathLike[str], requested: str):
        super().__init__(
            f"{Path(path)} refused: it asks for {requested}, which a DFL model file never "
            "needs; nothing in the file was run (was it tampered with?)",
            path,
        )
        self.requested = requested


def read_pickle_file(path: str | os.PathLike[str]) -> Any:
    """Unpickle one DFL file with the allow-list; DflModelError names the file on any failure."""
    path = Path(path)
    try:
        payload = path.read_bytes()
    except OSError as exc:
        raise DflModelError(f"cannot read {path}: {exc.strerror or exc}", path) from None
    if not payload:
        raise DflModelError(f"{path} is empty (0 bytes)", path)
    try:
        return unpickle_restricted(payload, path)
    except MetadataRefusedError as exc:
        raise DflFileRefusedError(path, exc.requested) from None
    except MetadataError as exc:
        if not payload.startswith(PICKLE_PROTO):
            raise DflModelError(
                f"{path} is not a DFL model file: it does not start like one (DFL writes "
                "pickles, which start with byte 0x80); was another file saved under this name?",
                path,
            ) from None
        if not payload.endswith(PICKLE_STOP):
            raise DflModelError(
                f"{path} is cut short ({len(payload)} bytes; truncated copy or download?)", path
            ) from None
        raise DflModelError(f"{path} is damaged: {exc.reason}", path) from None


def read_weights(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """A DFL network or optimizer file: a dict of weight name -> numpy array."""
    value = read_pickle_file(path)
    if not isinstance(value, dict):
        raise DflModelError(
            f"{path} holds a {type(value).__name__}, not DFL's dict of named weights", path
        )
    weights: dict[str, np.ndarray] = {}
    for key, array in value.items():
        if not isinstance(key, str):
            raise DflModelError(f"{path}: weight name {key!r} is not a string", path)
        if isinstance(array, (np.generic, int, float)):
            array = np.asarray(array)  # optimizer counters may be stored as scalars
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
            raise DflModelError(
                f"{path}: weight {key!r} is a {type(array).__name__}, not a numeric array", path
            )
        weights[key] = array
    return weights


@dataclass
class DflData:
    """What DFL's `<name>_<Class>_data.dat` holds that the project keeps."""

    iteration: int
    options: dict[str, Any]  # DFL's names; numpy scalars already turned into Python values
    loss_history: np.ndarray  # (n, 2) float32: src_loss, dst_loss
    preview_samples: list[list[np.ndarray]] | None
    notes: list[str] = field(default_factory=list)


def plain_value(value: Any) -> Any:
    """A numpy scalar as its Python value; other values unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def _loss_rows(raw: Any, path: Path, notes: list[str]) -> np.ndarray:
    empty = np.zeros((0, LOSSES_PER_ROW), dtype=np.float32)
    if raw is None:
        return empty
    try:
        rows = np.asarray(raw, dtype=np.float32).reshape(-1, LOSSES_PER_ROW)
    except (TypeError, ValueError):
        notes.append(f"the loss history in {path.name} has an unknown layout; it starts empty")
        return empty
    finite = np.all(np.isfinite(rows), axis=1)
    if not finite.all():
        notes.append(f"{int((~finite).sum())} non-finite loss history rows were left out")
    return rows[finite]


def read_data(path: str | os.PathLike[str]) -> DflData:
    """DFL's data.dat: the iteration, the options, the loss history and the preview samples."""
    path = Path(path)
    value = read_pickle_file(path)
    if not isinstance(value, dict):
        raise DflModelError(f"{path} holds a {type(value).__name__}, not DFL's model data", path)
    iteration = plain_value(value.get(ITERATION_KEY, 0))
    if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
        raise DflModelError(f"{path}: the iteration {iteration!r} is not a count", path)
    raw_options = value.get(OPTIONS_KEY) or {}
    if not isinstance(raw_options, dict):
        raise DflModelError(f"{path}: the options are not a dict", path)
    notes: list[str] = []
    options = {}
    for key, option in raw_options.items():
        option = plain_value(option)
        if option is None:  # DFL reads None as "not set"
            continue
        if not isinstance(option, (bool, int, float, str)):
            notes.append(f"DFL option {key!r} ({type(option).__name__}) was left out")
            continue
        options[str(key)] = option
    preview = value.get(PREVIEW_KEY)
    return DflData(
        iteration=iteration,
        options=options,
        loss_history=_loss_rows(value.get(LOSS_HISTORY_KEY), path, notes),
        preview_samples=preview if isinstance(preview, list) else None,
        notes=notes,
    )
