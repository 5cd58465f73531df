"""SAEHD ms per iteration on the CPU next to DeepFaceLab's own figures (docs/benchmarks.md §1).

    python bench/saehd_cpu.py [--iterations 15] [--backend tensorflow]

Prints one JSON line per configuration: liae-ud 64 px and df-ud 128 px, batch 4, default dims.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training import compare_with_dfl

CONFIGS = {  # name: (options, DFL's ms per iteration on 2 cores, the slower end)
    "liae-ud-64": ({"resolution": "64", "archi": "liae-ud", "batch_size": "4"}, 1430.0),
    "df-ud-128": ({"resolution": "128", "archi": "df-ud", "batch_size": "4"}, 2374.0),
}

if __name__ == "__main__":
    sys.exit(compare_with_dfl("SAEHD", CONFIGS, __doc__))
