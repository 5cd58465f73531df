"""Time the full Quick96 training step (batch 4, 96 px) on this backend; prints one JSON line."""

# usage: KERAS_BACKEND=jax python tests/bench_quick96.py [--steps 10] [--warmup 3] [--no-dropout]

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from dfl import backend


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-dropout", action="store_true")
    parser.add_argument("--jit-compile", action="store_true", help="TensorFlow: XLA")
    args = parser.parse_args()

    name = backend.select(None)
    import keras
    import numpy as np

    from dfl.models.quick96 import model as quick96
    from dfl.nn.optimizers import RMSprop

    keras.utils.set_random_seed(0)
    t0 = time.perf_counter()
    model = quick96.build({})
    optimizer = RMSprop(quick96.LR) if args.no_dropout else quick96.make_optimizer({})
    if args.jit_compile and name == "tensorflow":
        from dfl.backend.step import model_group
        from dfl.backend.tensorflow import Step

        group = model_group(model, quick96.compute_losses, optimizer, loss_key="loss")
        step = Step([group], [model], jit_compile=True)
    else:
        step = backend.make_model_step(model, quick96.compute_losses, optimizer)
    build_s = time.perf_counter() - t0

    rng = np.random.default_rng(0)
    res, bs = quick96.RESOLUTION, quick96.BATCH_SIZE

    def batch() -> dict:
        out = {}
        for side in ("src", "dst"):
            out[f"warped_{side}"] = rng.random((bs, res, res, 3), dtype=np.float32)
            out[f"target_{side}"] = rng.random((bs, res, res, 3), dtype=np.float32)
            out[f"mask_{side}"] = (rng.random((bs, res, res, 1)) > 0.3).astype(np.float32)
        return out

    batches = [batch() for _ in range(4)]
    t0 = time.perf_counter()
    step(batches[0])
    first_s = time.perf_counter() - t0
    for i in range(args.warmup):
        step(batches[i % 4])
    times = []
    for i in range(args.steps):
        t0 = time.perf_counter()
        losses = step(batches[i % 4])
        times.append(time.perf_counter() - t0)
    print(
        json.dumps(
            {
                "backend": name,
                "ms_median": round(statistics.median(times) * 1e3, 1),
                "ms_min": round(min(times) * 1e3, 1),
                "build_s": round(build_s, 1),
                "first_step_s": round(first_s, 1),
                "lr_dropout": not args.no_dropout,
                "loss": round(losses["loss"], 4),
                "load": os.getloadavg(),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
