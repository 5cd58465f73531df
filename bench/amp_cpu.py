"""AMP ms per iteration on the CPU next to DeepFaceLab's own figure (shared/bench/dfl-cpu.md).

    python bench/amp_cpu.py [--iterations 15] [--backend tensorflow]

Prints one JSON line: AMP 64 px, batch 4, default dims (ae 256, inter 1024, e 64, d 64, dm 22).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training import train

WARMUP_ITERS = 5  # DFL's median skips the first 5 iterations too
CONFIGS = {  # name: (options, DFL's ms per iteration on 2 cores, the slower end of 1756-1776)
    "amp-64": ({"resolution": "64", "batch_size": "4"}, 1776.0),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    args = parser.parse_args()
    for name, (overrides, dfl_ms) in CONFIGS.items():
        run = train("AMP", overrides, args.iterations, args.backend)
        median_ms = statistics.median(run.ms[WARMUP_ITERS:] or run.ms)
        print(
            json.dumps(
                {
                    "config": name,
                    "backend": args.backend,
                    "iterations": args.iterations,
                    "first_iteration_s": round(run.first_iteration_s, 1),
                    "median_ms_per_iter": round(median_ms, 1),
                    "dfl_ms_per_iter": dfl_ms,
                    "speed_vs_dfl": round(dfl_ms / median_ms, 3),  # > 1: faster than DFL
                    "load_avg": os.getloadavg()[0],
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
