"""`dfl merge`: apply a trained model to the dst frames (DFL's `main.py merge`).

Order as in DFL: the frames and aligned faces are checked first, then the model is picked (the
train menu without "new"), the device chosen, AMP's "Morph factor" asked, "Use interactive
merger?", and, non-interactive, DFL's settings questionnaire and "Number of workers?"; or the
interactive merger window (dfl.ui.merge_window) when a display is there. The answers are
remembered with the model (dfl.merge.session) and offered as defaults next time.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dfl.errors import EXIT_CANCELLED
from dfl.models.registry import MODEL_NAMES
from dfl.ui import text

NO_WINDOW = "The interactive merger cannot run here: using the non-interactive merger."


@dataclass(frozen=True)
class Folders:
    input_dir: Path
    output_dir: Path
    mask_dir: Path
    aligned_dir: Path
    model_dir: Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from dfl.backend import BACKENDS

    p = sub.add_parser(
        "merge",
        help="apply a trained model to the dst frames (DFL's merge)",
        description="Put the trained model's face onto every frame of the dst video, as "
        "DeepFaceLab's merger does, and write the merged frames and masks as PNG. Without "
        "flags it uses ./workspace. DFL's XSeg mask modes and super resolution are not "
        "available: they need networks dfl does not ship.",
    )
    w = "workspace/"
    p.add_argument("--workspace", type=Path, help="workspace folder (default: ./workspace)")
    p.add_argument("--input-dir", type=Path, help=f"the dst frames (default: {w}data_dst)")
    p.add_argument("--output-dir", type=Path, help=f"merged frames ({w}data_dst/merged)")
    p.add_argument("--output-mask-dir", type=Path, help=f"masks ({w}data_dst/merged_mask)")
    p.add_argument("--aligned-dir", type=Path, help=f"aligned dst faces ({w}data_dst/aligned)")
    p.add_argument("--model-dir", type=Path, help=f"the saved models ({w}model)")
    p.add_argument("--model", help=f"model type: {MODEL_NAMES} (asked if omitted)")
    p.add_argument("--force-model-name", help="the saved model's name (menu if omitted)")
    p.add_argument("--cpu-only", action="store_true", help="run the model on the CPU")
    p.add_argument("--force-gpu-idxs", help="GPU index to use, e.g. 0 (no device prompt)")
    p.add_argument(
        "--backend", choices=BACKENDS, help="Keras backend (default: KERAS_BACKEND or tensorflow)"
    )
    p.add_argument(
        "--interactive",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="use the interactive merger (asked if omitted)",
    )
    p.add_argument(
        "--opt",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="answer a merge question without a prompt (repeatable), e.g. --opt mode=seamless "
        "--opt mask_mode=learned-prd+learned-dst --opt workers=2 (AMP: --opt morph_factor=0.5)",
    )
    p.set_defaults(func=merge)


def _folders(args: argparse.Namespace) -> Folders:
    def resolve(path: Path | None, default: Path) -> Path:
        return (path or default).expanduser().resolve()

    root = resolve(args.workspace, Path.cwd() / "workspace")
    dst = root / "data_dst"
    return Folders(
        input_dir=resolve(args.input_dir, dst),
        output_dir=resolve(args.output_dir, dst / "merged"),
        mask_dir=resolve(args.output_mask_dir, dst / "merged_mask"),
        aligned_dir=resolve(args.aligned_dir, dst / "aligned"),
        model_dir=resolve(args.model_dir, root / "model"),
    )


def open_interactive_merger(context: Any) -> int | None:
    """Run the interactive merger window (dfl.ui.merge_window) for a prepared MergeFlow; the
    exit code, or None when its window cannot be opened (then the non-interactive merger runs)."""
    from dfl.ui.merge_window import run_interactive

    return run_interactive(context)


def _interactive_or_not(wanted: bool) -> bool:
    """Whether the interactive merger can run; says why not."""
    if not wanted:
        return False
    from dfl.ui.window import display_available

    ok, reason = display_available()
    if not ok:
        why = reason.rsplit(": ", 1)[0]
        text.note(f"No window for the interactive merger ({why}): using the non-interactive one.")
        return False
    return True


def merge(args: argparse.Namespace) -> int:
    """Run `dfl merge`; returns the exit code."""
    from dfl import backend
    from dfl.merge.frames import pair_frames
    from dfl.options import parse_assignments
    from dfl.ui.merge_flow import MergeFlow

    backend_name = backend.select(args.backend)
    folders = _folders(args)
    overrides = parse_assignments(args.opt)
    pairing = pair_frames(folders.input_dir, folders.aligned_dir)
    flow = MergeFlow(args, folders, overrides, pairing)
    flow.report_pairing()
    flow.check_outputs()
    flow.pick_model()
    flow.choose_device()
    backend.use_device(flow.device)
    backend.import_keras(backend_name)
    flow.ask_model_questions()
    try:
        if _interactive_or_not(flow.ask_interactive()):
            code = open_interactive_merger(flow)
            if code is not None:
                return code
            text.note(NO_WINDOW)
        flow.ask_settings()
        return flow.run()
    except KeyboardInterrupt:
        text.warn(flow.interrupted_message())
        return EXIT_CANCELLED
