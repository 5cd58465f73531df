"""`dfl bench`: the FLOP estimate against docs/networks.md §7, and the quick run end to end."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from dfl.training.benchmark import CASES, forward_macs, select_cases, train_flops

MMAC = 1e6
ONE_CASE_PER_MODEL = ("quick96", "saehd-liae-ud-256-bs8", "amp-224-bs8")
REQUIRED = {
    "case": str,
    "model": str,
    "backend": str,
    "precision": str,
    "batch": int,
    "resolution": int,
    "ms_per_iter": float,
    "ms_step": float,
    "data_wait_share": float,
    "pipeline_samples_per_s": float,
    "step_samples_per_s": float,
    "tflop_per_iter": float,
    "achieved_tflops": float,
    "peak_memory_mb": float,
    "first_iteration_s": float,
}


def test_quick96_macs_match_the_published_estimate() -> None:
    from dfl.models.quick96 import model as quick96

    model = quick96.build(None)
    macs = {name: forward_macs(net) / MMAC for name, net in model.networks.items()}
    assert macs["encoder"] == pytest.approx(365.0, abs=0.1)
    assert macs["inter"] == pytest.approx(7.8, abs=0.1)
    assert macs["decoder_src"] == pytest.approx(3507.1 + 148.8, abs=0.2)
    # docs/networks.md §7: about 0.19 TFLOP per training iteration at batch 4
    passes = quick96.SPEC.forward_passes({})
    assert train_flops(model.networks, passes, 4) / 1e12 == pytest.approx(0.1934, abs=5e-4)


def test_a_forward_pass_table_for_other_networks_is_refused() -> None:
    with pytest.raises(ValueError, match="networks the model lacks"):
        train_flops({"encoder": None}, {"encoder": 2, "inter": 2}, 4)


def test_unknown_case_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="quick96"):
        select_cases(["nope"])
    assert select_cases(None) == list(CASES)


def test_quick_bench_prints_one_json_line_per_case(tmp_path) -> None:
    """`dfl bench --quick`: one case of each model at a tiny size, with sane figures (the other
    SAEHD cases differ only in options the contract test builds)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    chosen = list(ONE_CASE_PER_MODEL)
    flags = [arg for name in chosen for arg in ("--case", name)]
    done = subprocess.run(
        [sys.executable, "-m", "dfl.cli", "bench", "--quick", *flags],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [line["case"] for line in lines] == chosen
    for line in lines:
        for key, kind in REQUIRED.items():
            assert isinstance(line[key], kind), (line["case"], key, line[key])
        assert line["ms_per_iter"] > 0 and line["ms_step"] > 0
        assert 0.0 <= line["data_wait_share"] <= 1.0
        assert line["pipeline_samples_per_s"] > 0
        assert line["tflop_per_iter"] > 0 and math.isfinite(line["achieved_tflops"])
        assert line["peak_memory_mb"] > 100  # the process's peak at least


def test_bench_refuses_a_bad_case_without_a_traceback(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dfl.cli", "bench", "--quick", "--case", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "unknown case" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
