"""Quick96 side by side with DeepFaceLab's own figures on a 2-core CPU (slow: about 5 minutes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "quick96_cpu.py"


@pytest.mark.slow
def test_quick96_is_as_fast_as_dfl_and_learns_as_well() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--iterations", "200", "--check"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0, figures
    assert figures["speed_vs_dfl"] >= 1.0
    assert figures["src_loss_vs_dfl"] <= 1.15
    assert figures["dst_loss_vs_dfl"] <= 1.15
