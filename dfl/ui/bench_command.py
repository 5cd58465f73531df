"""`dfl bench`: flags, progress on stderr, one JSON line per case on stdout."""

from __future__ import annotations

import argparse
import json
import os
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    from dfl.backend import BACKENDS
    from dfl.training.benchmark import CASES

    p = sub.add_parser(
        "bench",
        help="measure training speed: one JSON line per model configuration",
        description=(
            "Train each case on demo faces and print one JSON line per case: ms per iteration "
            "(data pipeline included), ms of the step alone, data-wait share, pipeline "
            "samples/s, TFLOP/s and peak memory. The full sizes are meant for GPUs; --quick "
            "runs every case at a tiny size (about two minutes on a 2-core CPU)."
        ),
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes, few iterations")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=os.environ.get("KERAS_BACKEND", "tensorflow"),
        help="Keras backend (default: $KERAS_BACKEND or tensorflow)",
    )
    p.add_argument("--device", default="cpu", help="'cpu' (default) or GPU indexes such as '0'")
    p.add_argument(
        "--case",
        action="append",
        dest="cases",
        metavar="NAME",
        help=f"run only this case (repeatable): {', '.join(c.name for c in CASES)}",
    )
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="fp32 (default) or bf16 mixed precision",
    )
    p.add_argument("--iterations", type=int, help="measured iterations per case")
    p.add_argument("--warmup", type=int, help="iterations before measuring")
    p.add_argument("--workers", type=int, help="sample workers (default: the cores, up to 8)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dfl import backend
    from dfl.data.batcher import default_workers
    from dfl.errors import UserError
    from dfl.training.benchmark import Settings, run, select_cases
    from dfl.ui.menu import parse_device_choice

    backend.select(args.backend)  # an uninstalled backend is refused before any work
    try:  # a GPU that is not there would silently measure the CPU
        device = parse_device_choice(args.device, backend.list_devices())
    except ValueError as exc:
        raise UserError(f"invalid --device: {exc}") from None
    try:
        cases = select_cases(args.cases)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    overrides = {
        key: value
        for key, value in (
            ("iterations", args.iterations),
            ("step_repeats", args.iterations),  # the step alone as often as the iterations
            ("warmup", args.warmup),
            ("workers", args.workers or default_workers()),
        )
        if value is not None
    }
    if any(value < 1 for value in overrides.values()):
        raise UserError("--iterations, --warmup and --workers must be at least 1")
    common = {
        "backend": args.backend,
        "device": device,
        "precision": args.precision,
        **overrides,
    }
    settings = Settings.for_quick(**common) if args.quick else Settings(**common)

    def progress(message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    for result in run(cases, settings, progress):
        print(json.dumps(result.as_dict()), flush=True)
    return 0
