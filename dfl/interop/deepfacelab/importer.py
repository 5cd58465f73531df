"""Import a DFL model: read and check every file in memory, then write one normal project
checkpoint through dfl.store.model_store (so `dfl train` resumes it). Nothing is written
unless every weight of every network found its layer; DFL's own files are only read."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dfl.interop.deepfacelab.files import DflModelFiles
from dfl.interop.deepfacelab.mapping import Problems, map_network, optimizer_values
from dfl.interop.deepfacelab.options import convert_options
from dfl.interop.deepfacelab.reader import DflData, DflModelError, read_data, read_weights
from dfl.models.contract import ModelSpec
from dfl.options import OptionError
from dfl.store.optimizer_state import optimizer_to_arrays
from dfl.store.weights import PREVIEW_SAMPLES_KEY, weights_to_arrays

IMPORTED_DEVICE_LINES = ["Imported from DeepFaceLab"]
PREVIEW_ARRAYS = ("warped", "target", "mask", "em")  # DFL's sample order per side


class DflImportError(DflModelError):
    """Some weights are missing, left over or shaped differently; nothing was written."""

    def __init__(self, files: DflModelFiles, problems: list[str]):
        self.problems = problems
        listed = "\n  ".join(problems)
        super().__init__(
            f"cannot import DFL model {files.name!r} ({files.model_class}) from {files.folder}; "
            f"nothing was written:\n  {listed}",
            files.data_path,
        )


@dataclass
class PreparedImport:
    """A DFL model read, mapped and checked, ready to be written (or used as pretrained)."""

    files: DflModelFiles
    spec: ModelSpec
    options: dict[str, Any]
    iteration: int
    groups: dict[str, dict[str, np.ndarray]]  # checkpoint group -> arrays, as the trainer saves
    loss_rows: np.ndarray
    notes: list[str] = field(default_factory=list)

    # what dfl.training.trainer reads of a pretrained model (like dfl.store.model_store.Loaded)
    def has(self, key: str) -> bool:
        return key in self.groups

    def arrays(self, key: str) -> dict[str, np.ndarray]:
        return self.groups[key]


@dataclass
class _Built:
    model: Any
    networks: dict[str, Any]
    optimizers: dict[str, Any]


def _build(spec: ModelSpec, options: dict[str, Any]) -> _Built:
    """The model, its saved networks and optimizers, built as the Trainer builds them."""
    model = spec.build(options)
    training = spec.make_training(options, model)
    return _Built(model, {**model.networks, **training.networks}, dict(training.optimizers))


def _preview_groups(data: DflData, resolution: int, notes: list[str]) -> dict[str, np.ndarray]:
    """DFL's fixed preview samples as the trainer's preview_samples group (NHWC float32)."""
    samples = data.preview_samples
    out: dict[str, np.ndarray] = {}
    try:
        for side, arrays in zip(("src", "dst"), samples or (), strict=False):
            for key, array in zip(PREVIEW_ARRAYS, arrays, strict=False):
                array = np.asarray(array, dtype=np.float32)
                if array.ndim == 4 and array.shape[2:4] == (resolution, resolution):
                    array = array.transpose(0, 2, 3, 1)  # DFL's NCHW (GPU, AMP) -> NHWC
                if array.ndim != 4 or array.shape[1:3] != (resolution, resolution):
                    raise ValueError(array.shape)
                out[f"{key}_{side}"] = np.ascontiguousarray(array)
    except (TypeError, ValueError):
        out = {}
    needed = {f"{k}_{s}" for k in PREVIEW_ARRAYS[:3] for s in ("src", "dst")}
    if not needed <= out.keys() or len({a.shape[0] for a in out.values()}) != 1:
        notes.append("DFL's preview samples were not carried over; new ones are drawn")
        return {}
    return out


def prepare_import(files: DflModelFiles) -> PreparedImport:
    """Read and map every file of a DFL model; DflImportError lists every problem at once.

    Keras must be importable (the backend chosen); the model is built to learn its variables.
    """
    from dfl.models.registry import load as load_model

    spec = load_model(files.model_class)
    if not files.data_path.is_file():
        raise DflModelError(f"{files.data_path} is missing", files.data_path)
    data = read_data(files.data_path)
    try:
        options, notes = convert_options(spec, data.options)
    except OptionError as exc:
        raise DflModelError(f"{files.data_path}: {exc}", files.data_path) from None
    notes = data.notes + notes
    built = _build(spec, options)
    problems = Problems()
    parts = set(files.parts())
    groups = _import_networks(files, spec, built, parts, problems, notes)
    groups.update(_import_optimizers(files, spec, built, parts, problems, notes))
    dfl_files = spec.dfl_optimizer_files
    used = set(built.networks) | {dfl_files.get(k, k) for k in built.optimizers}
    for part in sorted(parts - used):
        notes.append(f"{files.part_path(part).name} is not used by these options; not imported")
    if problems:
        raise DflImportError(files, problems.lines)
    preview = _preview_groups(data, int(options.get("resolution", 0)) or _resolution(built), notes)
    if preview:
        groups[PREVIEW_SAMPLES_KEY] = preview
    return PreparedImport(
        files=files,
        spec=spec,
        options=options,
        iteration=data.iteration,
        groups=groups,
        loss_rows=data.loss_history,
        notes=notes,
    )


def _import_networks(
    files: DflModelFiles,
    spec: ModelSpec,
    built: _Built,
    parts: set[str],
    problems: Problems,
    notes: list[str],
) -> dict[str, dict[str, np.ndarray]]:
    """Each network's checkpoint group, its variables set from DFL's file of the same name."""
    groups: dict[str, dict[str, np.ndarray]] = {}
    for name, network in built.networks.items():
        path = files.part_path(name)
        if name in parts:
            weights = read_weights(path)
            values = map_network(name, network.weights, weights, path, spec, problems)
            if len(values) == len(network.weights):
                for variable, value in zip(network.weights, values, strict=True):
                    variable.assign(value)
        elif name in built.model.networks:
            problems.add(path, f"the file of network {name} is missing")
            continue
        else:  # an optional network (a discriminator): DFL too starts it afresh
            notes.append(f"{path.name} is not there: {name} starts afresh")
        groups[name] = weights_to_arrays(network.weights)
    return groups


def _import_optimizers(
    files: DflModelFiles,
    spec: ModelSpec,
    built: _Built,
    parts: set[str],
    problems: Problems,
    notes: list[str],
) -> dict[str, dict[str, np.ndarray]]:
    """Each optimizer's checkpoint group, from DFL's optimizer file where there is one (the
    model's `dfl_optimizer_files` name the files whose part differs from the key)."""
    owners = {id(v): name for name, net in built.networks.items() for v in net.weights}
    groups: dict[str, dict[str, np.ndarray]] = {}
    for key, optimizer in built.optimizers.items():
        part = spec.dfl_optimizer_files.get(key, key)
        if part in parts:
            path = files.part_path(part)
            weights = read_weights(path)
            values = optimizer_values(optimizer, weights, path, spec, problems, owners)
            for index, value in values.items():
                optimizer.variables[index].assign(value)
        else:
            notes.append(f"DFL's {part} file is not there: the optimizer state starts afresh")
        groups[key] = optimizer_to_arrays(optimizer)  # keyed by weight name
    return groups


def _resolution(built: _Built) -> int:
    """The model's input size (Quick96 has no resolution option)."""
    return int(built.model.encoder.inputs[0].shape[1])


def write_import(prepared: PreparedImport, store: Any, name: str) -> Path:
    """Write the prepared model as the first checkpoint of `store` (a ModelStore that holds
    no saved state); returns the checkpoint folder. A failure leaves no trace of it."""
    if store.has_state():
        raise DflModelError(f"{store.folder} already holds a saved model", store.folder)
    try:
        return _write(prepared, store, name)
    except BaseException:
        _undo(store)
        raise


def _undo(store: Any) -> None:
    """Remove what a failed write left in a folder that held no saved model (lock kept)."""
    from dfl.store.fsutil import remove_tree
    from dfl.store.model_store import CURRENT_FILE

    with contextlib.suppress(OSError):
        if store.checkpoints_dir.exists():
            remove_tree(store.checkpoints_dir)
    for path in (store.folder / CURRENT_FILE, store.loss_history_path, store.summary_path):
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def _write(prepared: PreparedImport, store: Any, name: str) -> Path:
    import keras

    from dfl import __version__
    from dfl.store.model_store import ModelState
    from dfl.training.trainer import LOSS_NAMES, model_summary

    history = store.open_loss_history(len(LOSS_NAMES))
    history.append(prepared.loss_rows)
    rows = history.flush()
    state = ModelState(
        model_type=prepared.spec.name,
        name=name,
        iteration=prepared.iteration,
        options=dict(prepared.options),
        device=None,
        backend=keras.backend.backend(),
        created_with=__version__,
    )
    summary = model_summary(
        prepared.spec, name, prepared.iteration, prepared.options, IMPORTED_DEVICE_LINES
    )
    return store.save(state, prepared.groups, summary_text=summary, loss_rows=rows)


@dataclass
class ImportReport:
    """What an import did: where the model is, how long it took and how much it wrote."""

    name: str
    model_type: str
    folder: Path
    iteration: int
    seconds: float
    written_bytes: int
    notes: list[str]


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def import_dfl_model(
    files: DflModelFiles, model_dir: Path, name: str | None = None
) -> ImportReport:
    """Import `files` as project model `name` (default: the DFL name) in `model_dir`.

    Refuses (DflModelError) when that project model already exists. On any failure the new
    model folder is removed again: there is never a half-imported model.
    """
    from dfl.store.fsutil import remove_tree
    from dfl.store.model_store import ModelStore
    from dfl.store.workspace import model_folder, validate_name

    started = time.perf_counter()
    name = name or files.name
    reason = validate_name(name)
    if reason:
        raise DflModelError(f"cannot import as {name!r}: {reason}")
    folder = model_folder(model_dir, name, files.model_class)
    store = ModelStore(folder)
    if store.has_state():
        raise DflModelError(
            f"a {files.model_class} model named {name!r} already exists in {model_dir}; "
            "choose another name (--force-model-name) or delete that model first",
            folder,
        )
    prepared = prepare_import(files)
    existed = folder.exists()
    try:
        with store.lock():
            write_import(prepared, store, name)
    except BaseException:
        if not existed:
            with contextlib.suppress(OSError):
                remove_tree(folder)
        raise
    return ImportReport(
        name=name,
        model_type=prepared.spec.name,
        folder=folder,
        iteration=prepared.iteration,
        seconds=time.perf_counter() - started,
        written_bytes=folder_bytes(folder),
        notes=prepared.notes,
    )
