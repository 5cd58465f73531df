"""`dfl import` and the start-up's DFL-model offers: pick a DeepFaceLab model in a model folder,
import it into the project's format (dfl.interop.deepfacelab) and say how long it took and
what it wrote;
`--pretrained-model-dir` in either format."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dfl.errors import UserError
from dfl.ui import text

if TYPE_CHECKING:
    from dfl.interop.deepfacelab import DflModelFiles
    from dfl.interop.deepfacelab.importer import ImportReport
    from dfl.store.model_store import ModelStore

MB = 1e6
DFL_FILES_HINT = "DFL's model files are named <name>_<Class>_data.dat plus <name>_<Class>_*.npy"


# ------------------------------------------------------------------------- finding models
def importable_names(model_dir: Path, model_type: str) -> list[str]:
    """DFL models of `model_type` in `model_dir` that have no project model of the same name
    and a valid model name (others can be imported with `dfl import --new-name`)."""
    from dfl.interop.deepfacelab import find_dfl_models
    from dfl.store.workspace import list_models, validate_name

    taken = {entry.name.casefold() for entry in list_models(model_dir, model_type)}
    names = [m.name for m in find_dfl_models(model_dir, model_type)]
    return [n for n in names if n.casefold() not in taken and validate_name(n) is None]


def _pick(model_dir: Path, model_type: str | None, name: str | None) -> DflModelFiles:
    """The DFL model to import; UserError when there is none or the choice is ambiguous."""
    from dfl.interop.deepfacelab import find_dfl_model, find_dfl_models

    which = f"{model_type} models" if model_type else "models"
    models = find_dfl_models(model_dir, model_type)
    if not models:
        raise UserError(f"no DeepFaceLab {which} in {model_dir} ({DFL_FILES_HINT})")
    listed = ", ".join(f"{m.name} ({m.model_class})" for m in models)
    if name:
        found = find_dfl_model(model_dir, name, model_type)
        if found is None:
            raise UserError(f"no DeepFaceLab model named {name!r} in {model_dir}; found: {listed}")
        same_name = [m for m in models if m.name == found.name]
        if len(same_name) > 1:
            raise UserError(f"several DFL models are named {name!r} ({listed}): add --model CLASS")
        return found
    if len(models) == 1:
        return models[0]
    raise UserError(
        f"{len(models)} DeepFaceLab {which} in {model_dir} ({listed}): choose one "
        "with --force-model-name NAME (and --model CLASS)"
    )


# ------------------------------------------------------------------------------ reporting
def _say_report(report: ImportReport) -> None:
    for note in report.notes:
        text.note(note)
    text.info(
        f"Imported DFL model {report.name!r} ({report.model_type}, iteration {report.iteration}) "
        f"in {report.seconds:.1f} s: {report.written_bytes / MB:.1f} MB written to {report.folder}"
    )


def _dfl_error(exc: Exception) -> UserError:
    return UserError(str(exc))


# ------------------------------------------------------------------------------ dfl import
def run_import(args: argparse.Namespace) -> int:
    """`dfl import --model-dir DIR [--model CLASS] [--force-model-name NAME] [--new-name NAME]`."""
    from dfl import backend
    from dfl.interop.deepfacelab import DflModelError
    from dfl.models.registry import canonical_name

    model_dir = args.model_dir.expanduser().resolve()
    if not model_dir.is_dir():
        raise UserError(f"--model-dir {model_dir} is not a folder")
    model_type = canonical_name(args.model) if args.model else None
    files = _pick(model_dir, model_type, args.force_model_name)
    name = args.new_name or files.name
    name = _free_name(model_dir, files.model_class, name)
    text.info(f"Importing DFL model {files.name!r} ({files.model_class}) from {model_dir} ...")
    backend.select(None)
    backend.use_device("cpu")  # importing copies arrays; no GPU needed
    backend.import_keras()
    from dfl.interop.deepfacelab.importer import import_dfl_model

    try:
        report = import_dfl_model(files, model_dir, name)
    except DflModelError as exc:
        raise _dfl_error(exc) from None
    _say_report(report)
    text.info(
        f"Train it with: dfl train --model {report.model_type} --model-dir {model_dir} "
        f"--name {_quoted(report.name)}"
    )
    return 0


def _quoted(name: str) -> str:
    return f'"{name}"' if " " in name else name


def _free_name(model_dir: Path, model_type: str, name: str) -> str:
    """`name`, or (asked on a terminal) another one when a project model already has it."""
    from dfl.store.workspace import list_models, validate_name

    taken = {entry.name.casefold() for entry in list_models(model_dir, model_type)}
    while name.casefold() in taken or validate_name(name):
        reason = validate_name(name) or f"a {model_type} model named {name!r} already exists"
        if not sys.stdin.isatty():
            raise UserError(
                f"cannot import as {name!r}: {reason} in {model_dir}; give another name with "
                "--new-name NAME (or delete that model first)"
            )
        text.warn(reason)
        try:
            name = input("Import it under another name (Enter cancels) : ").strip()
        except EOFError:
            name = ""
        if not name:
            raise UserError("import cancelled; nothing was written")
    return name


# ---------------------------------------------------------------- dfl train's menu choice
def import_into_store(files: DflModelFiles, store: ModelStore, name: str) -> None:
    """Import a DFL model chosen in the menu into its (locked, empty) model folder."""
    import time

    from dfl.interop.deepfacelab import DflModelError
    from dfl.interop.deepfacelab.importer import (
        ImportReport,
        folder_bytes,
        prepare_import,
        write_import,
    )

    started = time.perf_counter()
    text.info(f"Importing DFL model {files.name!r} ({files.model_class}) ...")
    try:
        prepared = prepare_import(files)
        write_import(prepared, store, name)
    except DflModelError as exc:
        raise _dfl_error(exc) from None
    report = ImportReport(
        name=name,
        model_type=prepared.spec.name,
        folder=store.folder,
        iteration=prepared.iteration,
        seconds=time.perf_counter() - started,
        written_bytes=folder_bytes(store.folder),
        notes=prepared.notes,
    )
    _say_report(report)


def dfl_model_to_import(model_dir: Path, model_type: str, name: str) -> DflModelFiles | None:
    """The DFL model `name` when the chosen name has no project model but a DFL one."""
    from dfl.interop.deepfacelab import find_dfl_model
    from dfl.store.workspace import list_models

    if any(e.name.casefold() == name.casefold() for e in list_models(model_dir, model_type)):
        return None
    return find_dfl_model(model_dir, name, model_type)


# ------------------------------------------------------------------ --pretrained-model-dir
@dataclass
class PretrainedSource:
    """A model folder to start a new model from: a project model or DFL files."""

    folder: Path
    options: dict[str, Any]
    iteration: int
    loaded: Any = None  # dfl.store.model_store.Loaded for a project model
    dfl: DflModelFiles | None = None

    def fixed_options(self, table: tuple) -> dict[str, Any]:
        """The architecture options (fixed at creation) the new model must share."""
        return {
            o.name: self.options[o.name]
            for o in table
            if not o.changeable and o.name in self.options
        }

    def weights(self) -> Any:
        """What dfl.training.trainer reads: `.arrays(network)` for every network."""
        if self.loaded is not None:
            return self.loaded
        from dfl.interop.deepfacelab import DflModelError
        from dfl.interop.deepfacelab.importer import prepare_import

        try:
            return prepare_import(self.dfl)
        except DflModelError as exc:
            raise _dfl_error(exc) from None


def pretrained_source(folder: Path, model_type: str, spec: Any) -> PretrainedSource:
    """Read what --pretrained-model-dir holds: a project model folder, or a folder with DFL files
    of `model_type` (the newest when there are several)."""
    from dfl.interop.deepfacelab import DflModelError, find_dfl_models
    from dfl.interop.deepfacelab.options import convert_options
    from dfl.interop.deepfacelab.reader import read_data
    from dfl.store.model_store import ModelStore

    folder = folder.expanduser().resolve()
    if not folder.is_dir():
        raise UserError(f"--pretrained-model-dir {folder} is not a folder")
    store = ModelStore(folder)
    if store.has_state():
        loaded = store.load()
        if loaded.state.model_type != model_type:
            raise UserError(f"{folder} holds a {loaded.state.model_type} model, not {model_type}")
        return PretrainedSource(folder, dict(loaded.state.options), loaded.iteration, loaded=loaded)
    models = find_dfl_models(folder, model_type)
    if not models:
        raise UserError(
            f"--pretrained-model-dir {folder} holds no saved {model_type} model "
            f"(neither a dfl model folder nor DeepFaceLab files)"
        )
    files = models[0]
    if len(models) > 1:
        text.note(f"{len(models)} DFL {model_type} models there: using the newest, {files.name!r}")
    try:
        data = read_data(files.data_path)
        options, _ = convert_options(spec, data.options)
    except (DflModelError, ValueError) as exc:
        raise _dfl_error(exc) from None
    return PretrainedSource(folder, options, data.iteration, dfl=files)


def pretrained_overrides(source: PretrainedSource, table: tuple) -> dict[str, Any]:
    """The pretrained model's architecture options, to be the new model's (and said so)."""
    fixed = source.fixed_options(table)
    if fixed:
        listed = ", ".join(f"{k} {v}" for k, v in fixed.items())
        text.note(f"Architecture options come from the pretrained model: {listed}")
    return fixed


def pretrained_weights(source: PretrainedSource, options: dict[str, Any], table: tuple) -> Any:
    """The weights a new model starts from; UserError when its architecture differs."""
    wanted = source.fixed_options(table)
    differ = [
        f"{k} {wanted[k]} there, {options.get(k)} here"
        for k in wanted
        if options.get(k) != wanted[k]
    ]
    if differ:
        raise UserError(
            f"--pretrained-model-dir {source.folder} has another architecture ("
            + "; ".join(differ)
            + "): leave those options to the pretrained model"
        )
    kind = "DFL model" if source.dfl is not None else "model"
    text.note(
        f"Starting from the weights of the {kind} in {source.folder.name} "
        f"(iteration {source.iteration}); the optimizer and iteration start afresh."
    )
    return source.weights()
