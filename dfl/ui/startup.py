"""`dfl train`: the start-up dialogue (model, name, device, options, facesets), then training."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dfl.interop.deepfacelab import DflModelFiles
    from dfl.models.contract import ModelSpec
    from dfl.store.model_store import Loaded, ModelStore
    from dfl.training.runner import Schedule
    from dfl.training.trainer import TrainingSetup
    from dfl.ui.train_options import ChosenOptions

from dfl.ui import text
from dfl.ui.progress import Progress

ERROR_REPORT = "last_error.txt"  # the traceback of a failed run, beside the checkpoints
SKIPPED_LOG = "skipped_{side}_faces.txt"  # in the models folder: every skipped face file, why
REFUSED_NAMES_SHOWN = 3  # refused face files named in the warning; the log lists them all
PRETRAIN_OPTION = "pretrain"  # SAEHD's pretraining mode


@dataclass
class Folders:
    src: Path
    dst: Path
    model_dir: Path


def _folders(args: argparse.Namespace) -> Folders:
    """DFL's folder flags win; whatever they leave out comes from the workspace (decision 20)."""
    from dfl.store.workspace import Workspace

    root = (args.workspace or Path.cwd() / "workspace").expanduser().resolve()
    workspace = Workspace(root)
    uses_workspace = not (
        args.training_data_src_dir and args.training_data_dst_dir and args.model_dir
    )
    if uses_workspace:
        for created in workspace.ensure():
            text.note(f"Created {created}")

    def pick(flag: Path | None, default: Path) -> Path:
        return flag.expanduser().resolve() if flag else default

    folders = Folders(
        src=pick(args.training_data_src_dir, workspace.data_src),
        dst=pick(args.training_data_dst_dir, workspace.data_dst),
        model_dir=pick(args.model_dir, workspace.model_dir),
    )
    folders.model_dir.mkdir(parents=True, exist_ok=True)
    return folders


def _model_type(args: argparse.Namespace) -> str:
    from dfl.models.registry import DEFAULT_MODEL, MODELS, about, canonical_name
    from dfl.options import Option
    from dfl.ui.prompts import InputClosed, ask_option

    if args.model:
        return canonical_name(args.model)
    option = Option(
        name="model",
        label="Model",
        type=str,
        default=DEFAULT_MODEL,
        choices=tuple(MODELS),
        help=about(),
    )
    try:
        return canonical_name(ask_option(option, DEFAULT_MODEL))
    except InputClosed:
        text.note(f"Input closed: using the default model {DEFAULT_MODEL}.")
        return DEFAULT_MODEL


def _model_name(args: argparse.Namespace, model_dir: Path, model_type: str) -> str:
    from dfl.store.workspace import list_models, validate_name
    from dfl.ui.import_command import importable_names
    from dfl.ui.menu import choose_model

    name = args.force_model_name or args.name
    if name:
        reason = validate_name(name)
        if reason:
            from dfl.errors import UserError

            raise UserError(f"invalid model name {name!r}: {reason}")
        return name
    if args.silent_start:
        models = list_models(model_dir, model_type)
        if models:
            text.info(f'Silent start: choosed model "{models[0].name}"')
            return models[0].name
    return choose_model(
        model_dir, model_type, dfl_models=lambda: importable_names(model_dir, model_type)
    )


def _device(args: argparse.Namespace, stored: str | None) -> tuple[str, list[str], int | None]:
    """Returns the device choice ('cpu' or '0,1'), the summary lines describing it and the
    memory of the weakest chosen GPU (None on the CPU or when unknown)."""
    from dfl.backend import list_devices
    from dfl.errors import UserError
    from dfl.training.summary import describe_devices
    from dfl.ui.menu import choose_device, parse_device_choice, suggest_devices

    devices = list_devices()
    if args.cpu_only:
        choice = "cpu"
    elif args.force_gpu_idxs or args.device:
        try:
            choice = parse_device_choice(args.force_gpu_idxs or args.device, devices)
        except ValueError as exc:
            raise UserError(f"invalid device: {exc}") from None
    elif args.silent_start:
        choice = suggest_devices(devices).split(",")[0]
        text.info(f"Silent start: choosed device {choice}")
    else:
        choice = choose_device(devices, stored)
    if choice == "cpu":
        return choice, describe_devices([]), None
    chosen = {int(i) for i in choice.split(",")}
    picked = [d for d in devices if d.index in chosen]
    memories = [d.memory_bytes for d in picked if d.memory_bytes is not None]
    return choice, describe_devices(picked), (min(memories) if memories else None)


def load_side_faceset(folder: Path, side: str, log_dir: Path):  # -> list[FaceSample]
    """Load one side's faces; skipped files are counted, refused ones named (all of them, with
    every other skipped file and its reason, in ``log_dir/skipped_<side>_faces.txt``)."""
    from dfl.data.faceset import load_faceset

    with Progress(f"Loading {side} samples", "files") as bar:
        faceset = load_faceset(folder, progress=bar.update)
    log = log_dir / SKIPPED_LOG.format(side=side)
    if faceset.skipped:
        text.warn(f"{side}: {faceset.skipped_summary()}")
        _write_skipped_log(log, faceset.skipped_report())
        refused = faceset.refused_names()
        if refused:
            shown = ", ".join(refused[:REFUSED_NAMES_SHOWN])
            extra = len(refused) - REFUSED_NAMES_SHOWN
            more = f" and {extra} more" if extra > 0 else ""
            text.warn(
                f"{side}: metadata refused (it asks to run code; nothing was run) in {shown}"
                f"{more}. Every skipped file and why: {log}"
            )
    else:
        with contextlib.suppress(OSError):  # a list from an earlier run no longer applies
            log.unlink()
    text.info(f"{side}: {len(faceset.samples)} faces from {folder}")
    return faceset.samples


def _write_skipped_log(path: Path, report: str) -> None:
    from dfl.store.fsutil import write_text_durable

    try:
        write_text_durable(path, report)
    except OSError as exc:  # the list is a help, not a reason to stop
        text.warn(f"cannot write the list of skipped files to {path}: {exc.strerror or exc}")


def train(args: argparse.Namespace) -> int:
    """Run `dfl train`; returns the exit code."""
    from dfl.options import parse_assignments

    parse_assignments(args.opt)  # a malformed --opt is refused before any folder or question
    from dfl import backend
    from dfl.models.registry import canonical_name
    from dfl.store.model_store import ModelStore
    from dfl.store.workspace import model_folder
    from dfl.ui.import_command import dfl_model_to_import

    backend_name = backend.select(args.backend)
    text.info("Running trainer.")
    folders = _folders(args)
    model_type = canonical_name(_model_type(args))
    name = _model_name(args, folders.model_dir, model_type)
    store = ModelStore(model_folder(folders.model_dir, name, model_type))
    # a name with no saved model but DFL files (chosen in the menu, or given) is imported first
    pending = dfl_model_to_import(folders.model_dir, model_type, name)
    try:
        return _train_locked(args, store, name, model_type, backend_name, folders, pending)
    finally:
        _remove_if_empty(store.folder)  # a new model abandoned before its first save


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (or already gone): keep it
        folder.rmdir()


def _train_locked(
    args: argparse.Namespace,
    store: ModelStore,
    name: str,
    model_type: str,
    backend_name: str,
    folders: Folders,
    pending_import: DflModelFiles | None = None,
) -> int:
    """Everything after the model is chosen, while its lock is held; a chosen DFL model
    (`pending_import`) is imported once the device is chosen, then resumed."""
    from dfl.models.registry import load as load_model
    from dfl.ui.train_options import choose_options

    with store.lock() as lock_note:
        if lock_note:
            text.note(lock_note)
        loaded = _load_saved(store, name, model_type, announce_new=pending_import is None)
        device, device_lines, gpu_memory = _device(args, loaded.state.device if loaded else None)
        _start_backend(backend_name, device)
        if pending_import is not None and loaded is None:
            from dfl.ui.import_command import import_into_store

            import_into_store(pending_import, store, name)
            loaded = store.load()
        spec = load_model(model_type)
        chosen = choose_options(args, spec, loaded, model_type, gpu_memory)
        options = chosen.options
        src, dst = _load_facesets(args, options, folders)
        if args.debug:
            from dfl.ui.debugview import show_samples

            return show_samples(spec, options, src, dst, no_window=args.no_preview)

        from dfl.data.batcher import default_workers
        from dfl.training.trainer import TrainingSetup

        _say_before_training(spec, name, loaded, options, device, device_lines, (src, dst))
        setup = TrainingSetup(
            spec=spec,
            name=name,
            store=store,
            options=options,
            device=device,
            backend=backend_name,
            src=src,
            dst=dst,
            loaded=loaded,
            pretrained=chosen.pretrained,
            seed=int(options.get("seed", 0)),
            workers=default_workers(),
            device_lines=device_lines,
        )
        return _run_training(args, setup, chosen)


def _load_saved(
    store: ModelStore, name: str, model_type: str, *, announce_new: bool
) -> Loaded | None:
    """The saved model (Loaded), or None for a new one (DFL's "Model first run.")."""
    from dfl.errors import UserError

    if not store.has_state():
        if announce_new:
            text.info("Model first run.")
        return None
    text.info(f"Loading {name}_{model_type} model...")
    loaded = store.load()
    for note in loaded.notes:
        text.warn(note)
    if loaded.state.model_type != model_type:
        raise UserError(f"{store.folder} holds a {loaded.state.model_type} model")
    return loaded


def _start_backend(backend_name: str, device: str) -> None:
    from dfl import backend

    backend.check_devices(backend_name, device)  # torch trains on one GPU: refuse several
    backend.use_device(device)
    backend.import_keras(backend_name)  # only after the device is chosen; quiets TF


def _load_facesets(args: argparse.Namespace, options: Mapping[str, Any], folders: Folders):
    """(src, dst) samples: the pretraining faceset on both sides in pretrain mode."""
    from dfl.errors import UserError

    if not options.get(PRETRAIN_OPTION):
        if args.pretraining_data_dir:
            text.note("--pretraining-data-dir is used only by SAEHD's pretrain mode; ignored.")
        src = load_side_faceset(folders.src, "src", folders.model_dir)
        return src, load_side_faceset(folders.dst, "dst", folders.model_dir)
    if not args.pretraining_data_dir:
        raise UserError(
            "pretrain is on: give the pretraining faceset with --pretraining-data-dir DIR "
            "(both sides read it), or answer n to 'Enable pretraining mode'"
        )
    pretrain_dir = args.pretraining_data_dir.expanduser().resolve()
    text.info(f"Pretraining: both sides read {pretrain_dir}")
    src = load_side_faceset(pretrain_dir, "pretraining", folders.model_dir)
    return src, src


def _say_before_training(
    spec: ModelSpec,
    name: str,
    loaded: Loaded | None,
    options: Mapping[str, Any],
    device: str,
    device_lines: list[str],
    faces: tuple[list, list],
) -> None:
    """The summary box, faceset changes of a reused model, and the CPU warning."""
    from dfl.training.trainer import model_summary

    iteration = loaded.state.iteration if loaded else 0
    text.info(model_summary(spec, name, iteration, dict(options), device_lines))
    if loaded is not None:  # a reused model: say when it meets faces it was not trained on
        from dfl.data.facesetid import differences, identities

        for line in differences(loaded.state.facesets, identities(*faces)):
            text.note(line)
    if device == "cpu":
        text.warn(
            "Training runs on the CPU: expect about a second or more per iteration. "
            "See README.md for GPU set-up."
        )


def _run_training(args: argparse.Namespace, setup: TrainingSetup, chosen: ChosenOptions) -> int:
    """Open the window, run the trainer thread and the session until it stops."""
    from dfl.errors import EXIT_FAILED, EXIT_OK
    from dfl.training.runner import TrainingRunner
    from dfl.training.trainer import Trainer
    from dfl.ui.prompts import ANSWERS
    from dfl.ui.session import TrainingSession

    window = open_preview_window(args.no_preview)
    if chosen.choose_history_sample and window is None:
        text.note("No preview window: the preview history keeps its sample.")
    schedule = _schedule(
        setup,
        interactive=window is not None or sys.stdin.isatty(),
        choose_sample=chosen.choose_history_sample and window is not None,
        tips=chosen.tips,
        timed_from=ANSWERS.last,
    )
    runner = TrainingRunner(lambda: Trainer(setup), schedule)
    runner.start()
    result = TrainingSession(runner, window=window).run()
    runner.join(timeout=30)
    if result.error is None:
        text.info("Done.")
        return EXIT_OK
    text.error(result.error.message)
    if result.error.details:
        report = setup.store.folder / ERROR_REPORT
        report.write_text(result.error.details, encoding="utf-8")
        text.info(f"Details for a bug report: {report}")
    return EXIT_FAILED


def _schedule(
    setup: TrainingSetup,
    *,
    interactive: bool,
    choose_sample: bool,
    tips: tuple[str, ...],
    timed_from: float | None,
) -> Schedule:
    from dfl.training.runner import Schedule

    options = setup.options
    history = bool(options.get("write_preview_history"))
    return Schedule(
        target_iter=int(options.get("target_iter", 0)),
        autobackup_hours=float(options.get("autobackup_hour", 2)),
        backups_kept=int(options.get("autobackup_keep", 8)),
        exit_at_target=not interactive,
        preview_history_every=setup.spec.preview_history_every(options) if history else 0,
        choose_preview_sample=choose_sample and history,
        timed_from=timed_from,
        new_model_tips=tips,
    )


def open_preview_window(no_preview: bool):  # -> PreviewWindow | None
    if no_preview:
        text.note("No preview window (--no-preview): keys work from this console.")
        return None
    from dfl.ui.window import PreviewWindow, display_available

    ok, reason = display_available()
    if not ok:
        text.warn(f"{reason}")
        return None
    return PreviewWindow()
