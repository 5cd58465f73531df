"""Shared by the CPU benchmarks: train a model on fresh demo facesets the way `dfl train` does."""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

FACES_PER_SIDE = 64  # DFL's CPU runs used 64 src + 64 dst faces at 256 px


@dataclass
class Run:
    setup_s: float  # imports, demo faces, faceset loading
    first_iteration_s: float  # from the start of the run to the end of the first iteration
    ms: list[float]  # per iteration, waiting for samples included
    losses: list[tuple[float, ...]]  # (src_loss, dst_loss) per iteration


def train(
    model: str, overrides: dict[str, str], iterations: int, backend_name: str, seed: int = 0
) -> Run:
    """Train `iterations` steps of `model` on the CPU in a temporary workspace."""
    started = time.perf_counter()
    from dfl import backend

    if "keras" not in sys.modules:  # the device is chosen once, before Keras loads
        backend.use_device("cpu")
    backend.import_keras(backend_name)
    from dfl.data.faceset import load_faceset
    from dfl.demo.facesets import make_demo_facesets
    from dfl.models.registry import load
    from dfl.options import resolve_options
    from dfl.store.model_store import ModelStore
    from dfl.training.trainer import Trainer, TrainingSetup

    spec = load(model)
    options = resolve_options(spec.option_table(None), overrides=overrides).options
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "workspace"
        src_dir, dst_dir = make_demo_facesets(workspace, count=FACES_PER_SIDE, seed=seed)
        setup = TrainingSetup(
            spec=spec,
            name="bench",
            store=ModelStore(workspace / "model" / f"bench_{spec.name}"),
            options=options,
            device="cpu",
            backend=backend_name,
            src=load_faceset(src_dir).samples,
            dst=load_faceset(dst_dir).samples,
            seed=seed,
        )
        setup_s = time.perf_counter() - started
        trainer = Trainer(setup)
        run = Run(setup_s, 0.0, [], [])
        try:
            for i in range(iterations):
                ms, losses = trainer.train_one()
                if i == 0:
                    run.first_iteration_s = time.perf_counter() - started
                run.ms.append(ms)
                run.losses.append(losses)
        finally:
            trainer.close()
    return run


WARMUP_ITERS = 5  # DFL's median skips the first 5 iterations too


def compare_with_dfl(model: str, configs: dict[str, tuple[dict[str, str], float]], doc: str) -> int:
    """The command line of the per-model CPU benchmarks: train each config (name: (options,
    DFL's ms per iteration on 2 cores)) and print one JSON line next to DFL's figure."""
    import argparse
    import json
    import os
    import statistics

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--config", choices=sorted(configs), action="append")
    args = parser.parse_args()
    for name in args.config or configs:
        overrides, dfl_ms = configs[name]
        run = train(model, overrides, args.iterations, args.backend)
        median_ms = statistics.median(run.ms[WARMUP_ITERS:] or run.ms)
        line = {
            "config": name,
            "backend": args.backend,
            "iterations": args.iterations,
            "first_iteration_s": round(run.first_iteration_s, 1),
            "median_ms_per_iter": round(median_ms, 1),
            "dfl_ms_per_iter": dfl_ms,
            "speed_vs_dfl": round(dfl_ms / median_ms, 3),  # > 1: faster than DFL
            "load_avg": os.getloadavg()[0],
        }
        print(json.dumps(line), flush=True)
    return 0
