"""Quick96 speed and loss after N iterations, the way `dfl train` runs it, next to DFL's figures.

Prints one JSON line: time to the first iteration, median ms per iteration (waiting for samples
included, as DFL's status line counts it), and the src/dst losses (mean of the last 20), with
the ratios to DeepFaceLab's own trainer on a 2-core CPU (docs/benchmarks.md §1).

    python bench/quick96_cpu.py [--iterations 200] [--backend tensorflow] [--check]

With --check it exits 1 when dfl is slower than DFL or its losses are more than 15% above DFL's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

DFL_MS_PER_ITER = 1408.0  # DFL Quick96 on 2 cores: 1394-1408 ms; the slower end is the bar
DFL_FIRST_ITER_S = 15.0
DFL_SRC_LOSS = 1.41  # mean of 20 iterations after about 200
DFL_DST_LOSS = 1.12
LOSS_TOLERANCE = 1.15  # at most 15% above DFL's
WARMUP_ITERS = 5  # DFL's median skips the first 5 iterations too
LOSS_WINDOW = 20

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training import train  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="store_true", help="exit 1 if worse than DFL")
    args = parser.parse_args()

    run = train("Quick96", {}, args.iterations, args.backend, seed=args.seed)
    times, losses = run.ms, run.losses

    median_ms = statistics.median(times[WARMUP_ITERS:] or times)
    tail = losses[-LOSS_WINDOW:]
    src_loss = statistics.fmean(v[0] for v in tail)
    dst_loss = statistics.fmean(v[1] for v in tail)
    result = {
        "backend": args.backend,
        "iterations": args.iterations,
        "setup_s": round(run.setup_s, 1),
        "first_iteration_s": round(run.first_iteration_s, 1),
        "dfl_first_iteration_s": DFL_FIRST_ITER_S,
        "median_ms_per_iter": round(median_ms, 1),
        "src_loss_last20": round(src_loss, 4),
        "dst_loss_last20": round(dst_loss, 4),
        "speed_vs_dfl": round(DFL_MS_PER_ITER / median_ms, 3),  # > 1: faster than DFL
        "src_loss_vs_dfl": round(src_loss / DFL_SRC_LOSS, 3),  # < 1.15 required
        "dst_loss_vs_dfl": round(dst_loss / DFL_DST_LOSS, 3),
        "load_avg": os.getloadavg()[0],
    }
    print(json.dumps(result), flush=True)
    if not args.check:
        return 0
    ok = median_ms <= DFL_MS_PER_ITER and src_loss <= DFL_SRC_LOSS * LOSS_TOLERANCE
    ok = ok and dst_loss <= DFL_DST_LOSS * LOSS_TOLERANCE
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
