"""SAEHD ms per iteration on the CPU next to DeepFaceLab's own figures (shared/bench/dfl-cpu.md).

    python bench/saehd_cpu.py [--iterations 15] [--backend tensorflow]

Prints one JSON line per configuration: liae-ud 64 px and df-ud 128 px, batch 4, default dims.
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
CONFIGS = {  # name: (options, DFL's ms per iteration on 2 cores, the slower end)
    "liae-ud-64": ({"resolution": "64", "archi": "liae-ud", "batch_size": "4"}, 1430.0),
    "df-ud-128": ({"resolution": "128", "archi": "df-ud", "batch_size": "4"}, 2374.0),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--config", choices=sorted(CONFIGS), action="append")
    args = parser.parse_args()
    for name in args.config or CONFIGS:
        overrides, dfl_ms = CONFIGS[name]
        run = train("SAEHD", overrides, args.iterations, args.backend)
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
