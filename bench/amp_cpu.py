"""AMP ms per iteration on the CPU next to DeepFaceLab's own figure (docs/benchmarks.md §1).

    python bench/amp_cpu.py [--iterations 15] [--backend tensorflow]

Prints one JSON line: AMP 64 px, batch 4, default dims (ae 256, inter 1024, e 64, d 64, dm 22).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training import compare_with_dfl

CONFIGS = {  # name: (options, DFL's ms per iteration on 2 cores, the slower end of 1756-1776)
    "amp-64": ({"resolution": "64", "batch_size": "4"}, 1776.0),
}

if __name__ == "__main__":
    sys.exit(compare_with_dfl("AMP", CONFIGS, __doc__))
