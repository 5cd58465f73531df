"""The `dfl` command: parses flags, runs the start-up dialogue, then trains with the UI loop."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from dfl import __version__
from dfl.backend import BACKENDS
from dfl.errors import EXIT_CANCELLED, EXIT_OK, EXIT_USAGE
from dfl.errors import UserError as UserError  # one class, also under `python -m dfl.cli`
from dfl.models.registry import DFL_MODELS, MODEL_NAMES


def _add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model (interactive: pick or create a model, answer its options)",
        description="Train a face-swap model. Without folder flags it uses ./workspace "
        "(data_src/aligned, data_dst/aligned, model), creating it if missing.",
    )
    p.add_argument("--model", help=f"model type: {MODEL_NAMES} (asked if omitted)")
    p.add_argument(
        "--name", help="model name: an existing model is resumed, a new name creates one"
    )
    p.add_argument("--workspace", type=Path, help="workspace folder (default: ./workspace)")
    p.add_argument(
        "--backend", choices=BACKENDS, help="Keras backend (default: KERAS_BACKEND or tensorflow)"
    )
    p.add_argument("--device", help="'cpu' or comma-separated GPU indexes, e.g. 0 or 0,1")
    p.add_argument(
        "--opt",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set an option without a prompt (repeatable), e.g. --opt target_iter=1000",
    )
    p.add_argument(
        "--override", action="store_true", help="ask the changeable options again on resume"
    )
    # DeepFaceLab's own flags, with their meanings, so existing scripts keep working.
    dfl = p.add_argument_group("DeepFaceLab-compatible flags")
    dfl.add_argument("--training-data-src-dir", type=Path, help="src faceset folder")
    dfl.add_argument("--training-data-dst-dir", type=Path, help="dst faceset folder")
    dfl.add_argument("--model-dir", type=Path, help="folder holding the saved models")
    dfl.add_argument("--pretraining-data-dir", type=Path, help="faceset for SAEHD's pretrain mode")
    dfl.add_argument(
        "--pretrained-model-dir", type=Path, help="a saved model folder to start a new model from"
    )
    dfl.add_argument("--force-model-name", help="same as --name")
    dfl.add_argument("--cpu-only", action="store_true", help="train on the CPU, no device prompt")
    dfl.add_argument("--force-gpu-idxs", help="GPU indexes to use, e.g. 0,1 (no device prompt)")
    dfl.add_argument(
        "--no-preview", action="store_true", help="no preview window (console keys only)"
    )
    dfl.add_argument(
        "--silent-start", action="store_true", help="newest model and best device, no questions"
    )
    dfl.add_argument(
        "--debug", action="store_true", help="show the augmented samples instead of training"
    )
    p.set_defaults(func=_run_train)


def _add_demo_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="draw two synthetic people into the workspace as demo facesets")
    p.add_argument("--workspace", type=Path, help="workspace folder (default: ./workspace)")
    p.add_argument("--count", type=int, default=64, help="faces per person (default 64)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace faces already in the folders")
    p.set_defaults(func=_run_demo)


def _add_list_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the saved models in the workspace")
    p.add_argument("--workspace", type=Path, help="workspace folder (default: ./workspace)")
    p.add_argument("--model-dir", type=Path, help="folder holding the saved models")
    p.set_defaults(func=_run_list)


def _add_export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a saved model to DeepFaceLive's .dfm (ONNX)",
        description="Export a saved model to DeepFaceLive's .dfm (ONNX), checked with "
        "onnxruntime before it is reported written. Asks for the model (the train menu) and "
        "'Export quantized?' unless given by flags.",
    )
    p.add_argument("--model", help=f"model type: {MODEL_NAMES} (asked if omitted)")
    p.add_argument("--name", help="name of the saved model (menu if omitted)")
    p.add_argument("--workspace", type=Path, help="workspace folder (default: ./workspace)")
    p.add_argument("--model-dir", type=Path, help="folder holding the saved models")
    p.add_argument("--force-model-name", help="same as --name (DeepFaceLab's flag)")
    p.add_argument(
        "--backend", choices=BACKENDS, help="Keras backend (default: KERAS_BACKEND or tensorflow)"
    )
    p.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="the .dfm to write (default: <name>_<Model>_model.dfm inside the model's folder, "
        "DeepFaceLab's file name; a folder gets that file name)",
    )
    p.add_argument(
        "--quantize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="store conv weights as float16, about half the size (asked if omitted; default no)",
    )
    p.set_defaults(func=_run_export)


def _add_import_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="import a DeepFaceLab model (<name>_<Class>_data.dat + .npy files) to train it here",
        description=f"Import a model DeepFaceLab trained ({', '.join(DFL_MODELS)}) from its model "
        "folder into this project's format, in the same folder. DFL's files are left untouched.",
    )
    p.add_argument("--model-dir", type=Path, required=True, help="folder with DFL's model files")
    p.add_argument("--model", help="model class to import: " + ", ".join(DFL_MODELS))
    p.add_argument("--force-model-name", help="name of the DFL model (when there are several)")
    p.add_argument("--new-name", help="name of the imported model (default: the DFL name)")
    p.set_defaults(func=_run_import)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dfl", description=f"Face-swap model trainer ({MODEL_NAMES})."
    )
    parser.add_argument("--version", action="version", version=f"dfl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train_parser(sub)
    _add_demo_parser(sub)
    _add_list_parser(sub)
    _add_import_parser(sub)
    _add_export_parser(sub)
    from dfl.ui import bench_command, merge_command

    bench_command.add_parser(sub)
    merge_command.add_parser(sub)
    from dfl.ui import video_command

    video_command.add_parsers(sub)
    return parser


def _workspace_root(args: argparse.Namespace) -> Path:
    return (args.workspace or Path.cwd() / "workspace").expanduser().resolve()


def _run_demo(args: argparse.Namespace) -> int:
    from dfl.demo.facesets import make_demo_facesets
    from dfl.store.workspace import Workspace
    from dfl.ui import text

    workspace = Workspace(_workspace_root(args))
    for created in workspace.ensure():
        text.info(f"Created {created}")
    if args.count < 1:
        raise UserError("--count must be at least 1")
    src, dst = make_demo_facesets(
        workspace.root, count=args.count, seed=args.seed, overwrite=args.overwrite
    )
    text.info(f"Demo faces written: {args.count} to {src} and {args.count} to {dst}")
    text.info(f"Demo dst frames written: {args.count} to {dst.parent} (the faces came from them)")
    from dfl.demo.frames import make_demo_video

    video = make_demo_video(workspace.root, overwrite=args.overwrite)
    if video is None:
        text.note("Kept the data_dst video already in the workspace (--overwrite replaces it)")
    else:
        text.info(f"Demo dst video written: {video} (try `dfl extract-video` on it)")
    return EXIT_OK


def _run_list(args: argparse.Namespace) -> int:
    from dfl.models.registry import MODELS
    from dfl.store.workspace import Workspace, list_models
    from dfl.ui import text

    model_dir = args.model_dir or Workspace(_workspace_root(args)).model_dir
    found = False
    for model_type in MODELS:
        for entry in list_models(model_dir, model_type):
            found = True
            text.info(f"{entry.name} ({model_type})  {entry.folder}")
    if not found:
        text.info(f"No saved models in {model_dir}")
    return EXIT_OK


def _run_import(args: argparse.Namespace) -> int:
    from dfl.ui.import_command import run_import

    return run_import(args)


def _run_train(args: argparse.Namespace) -> int:
    from dfl.ui.startup import train

    return train(args)


def _run_export(args: argparse.Namespace) -> int:
    from dfl.ui.export_command import export

    return export(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from dfl.ui import text

    try:
        return args.func(args)
    except UserError as exc:
        text.error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        text.error("Cancelled; nothing was changed.")
        return EXIT_CANCELLED
    except Exception as exc:
        from dfl.errors import read_only_message, user_errors

        if isinstance(exc, user_errors()):
            text.error(str(exc))
            return EXIT_USAGE
        message = read_only_message(exc)  # a read-only workspace or model folder
        if message is not None:
            text.error(message)
            return EXIT_USAGE
        raise


def entry() -> None:
    """Console-script entry point."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())


if __name__ == "__main__":
    entry()
