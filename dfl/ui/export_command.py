"""`dfl export`: pick a saved model (the train menu, without "new"), ask "Export quantized?",
then write and verify DeepFaceLive's .dfm (dfl.interop.deepfacelive does the work)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dfl.ui import text

MIB = 1 << 20
QUANTIZE_HELP = (
    "Store the conv weights as float16: about half the file size; DeepFaceLive computes in "
    "float32 either way, with a slightly different result."
)


def _model_dir(args: argparse.Namespace) -> Path:
    """--model-dir, else <workspace>/model; nothing is created."""
    from dfl.store.workspace import Workspace

    if args.model_dir:
        return args.model_dir.expanduser().resolve()
    root = (args.workspace or Path.cwd() / "workspace").expanduser().resolve()
    return Workspace(root).model_dir


def _saved_types(model_dir: Path) -> list[str]:
    """Model types with saved models, the type of the newest model first."""
    from dfl.models.registry import MODELS
    from dfl.store.workspace import list_models

    newest = {}
    for model_type in MODELS:
        models = list_models(model_dir, model_type)
        if models:
            newest[model_type] = models[0].mtime
    return sorted(newest, key=lambda t: -newest[t])


def _model_type(args: argparse.Namespace, saved: list[str]) -> str:
    from dfl.models.registry import canonical_name
    from dfl.options import Option
    from dfl.ui.prompts import InputClosed, ask_option

    if args.model:
        return canonical_name(args.model)
    if len(saved) == 1:
        text.info(f"Model type: {saved[0]} (the only type with saved models)")
        return saved[0]
    option = Option(
        name="model",
        label="Model",
        type=str,
        default=saved[0],
        choices=tuple(saved),
        help="The type of the saved model to export (those with saved models are listed).",
    )
    try:
        return canonical_name(ask_option(option, saved[0]))
    except InputClosed:
        text.note(f"Input closed: exporting a {saved[0]} model (the newest).")
        return saved[0]


def _model_name(args: argparse.Namespace, model_dir: Path, model_type: str) -> str:
    from dfl.errors import UserError
    from dfl.store.workspace import list_models
    from dfl.ui.menu import choose_model

    name = args.force_model_name or args.name
    models = list_models(model_dir, model_type)
    if not models:
        raise UserError(f"no saved {model_type} models in {model_dir}: train one first")
    if name:
        if name not in {entry.name for entry in models}:
            known = ", ".join(entry.name for entry in models)
            raise UserError(f"no saved {model_type} model named {name!r} (saved: {known})")
        return name
    return choose_model(model_dir, model_type, allow_new=False)


def _quantize(args: argparse.Namespace) -> bool:
    from dfl.options import Option
    from dfl.ui.prompts import InputClosed, ask_option

    if args.quantize is not None:
        return bool(args.quantize)
    option = Option(
        name="quantize", label="Export quantized?", type=bool, default=False, help=QUANTIZE_HELP
    )
    try:
        return bool(ask_option(option, False))
    except InputClosed:
        text.note("Input closed: not quantized.")
        return False


def _output(args: argparse.Namespace, folder: Path) -> Path | None:
    """--output as a file path (a folder gets the default file name); None = the default."""
    from dfl.errors import UserError
    from dfl.interop.deepfacelive import contract
    from dfl.interop.deepfacelive.dfm import default_output

    if args.output is None:
        return None
    output = args.output.expanduser().resolve()
    if output.is_dir():
        return output / default_output(folder).name
    if not output.parent.is_dir():
        raise UserError(f"--output: folder {output.parent} does not exist")
    if output.suffix.lower() != contract.DFM_SUFFIX:
        text.warn(f"DeepFaceLive lists only *{contract.DFM_SUFFIX} files; writing {output.name}")
    return output


def export(args: argparse.Namespace) -> int:
    """Run `dfl export`; returns the exit code."""
    from dfl import backend
    from dfl.errors import EXIT_FAILED, EXIT_OK, UserError
    from dfl.store.workspace import model_folder

    backend_name = backend.select(args.backend)
    model_dir = _model_dir(args)
    saved = _saved_types(model_dir)
    if not saved:
        raise UserError(f"no saved models in {model_dir}: train one first with `dfl train`")
    model_type = _model_type(args, saved)
    name = _model_name(args, model_dir, model_type)
    folder = model_folder(model_dir, name, model_type)
    output = _output(args, folder)
    quantize = _quantize(args)

    backend.use_device("cpu")  # export and its check run on the CPU, as DFL's does
    backend.import_keras(backend_name)
    from dfl.interop.deepfacelive.dfm import export_saved_model
    from dfl.interop.deepfacelive.errors import ExportError
    from dfl.models.loading import SavedModelError, load_saved_model

    text.info(f"Loading {name}_{model_type} model...")
    try:
        model = load_saved_model(folder)
        text.info(f"Exporting iteration {model.iteration} to DeepFaceLive's .dfm...")
        result = export_saved_model(model, output, quantize)
    except (ExportError, SavedModelError) as exc:
        text.error(f"export failed, nothing was written: {exc}")
        return EXIT_FAILED
    except OSError as exc:
        raise UserError(f"cannot write the .dfm: {exc}") from None
    text.info(f"Verified: {result.verification.describe()}.")
    kind = "float16 conv weights" if result.quantized else "float32"
    text.info(
        f"Exported {result.path} ({result.size_bytes / MIB:.1f} MiB, {kind}) in "
        f"{result.convert_s + result.verify_s:.1f} s "
        f"(convert {result.convert_s:.1f} s, verify {result.verify_s:.1f} s)."
    )
    return EXIT_OK
