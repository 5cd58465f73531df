"""A GPU machine may have JAX and no TensorFlow (issue 5): dfl must import and train there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dfl.models.saehd.model import TINY_OPTIONS as SAEHD_TINY

pytest.importorskip("jax")

DEMO_FACES = 8
# the smallest SAEHD its option table allows (batch_size and the sizes), as --opt flags
TINY_SAEHD_FLAGS = [f for k, v in SAEHD_TINY.items() for f in ("--opt", f"{k}={v}")]
TIMEOUT_S = 600
# Runs `dfl` with every import of tensorflow failing, as where it is not installed.
WITHOUT_TENSORFLOW = """
import sys

class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError("No module named 'tensorflow'", name=name)
        return None

sys.meta_path.insert(0, NoTensorFlow())
from dfl.cli import main
code = main(sys.argv[1:])
assert "tensorflow" not in sys.modules
sys.exit(code)
"""


def dfl_without_tensorflow(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "KERAS_BACKEND": "jax"}
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_TENSORFLOW, *args],
        cwd=cwd,
        input="",
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env,
    )


def test_trains_with_jax_when_tensorflow_is_absent(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    made = dfl_without_tensorflow(
        ["demo", "--workspace", str(workspace), "--count", str(DEMO_FACES)], tmp_path
    )
    assert made.returncode == 0, made.stderr[-3000:]
    result = dfl_without_tensorflow(
        [
            "train",
            "--workspace",
            str(workspace),
            "--model",
            "SAEHD",
            "--force-model-name",
            "nojax",
            "--no-preview",
            *TINY_SAEHD_FLAGS,  # SAEHD's sizes are options: a tiny one compiles in seconds
            "--opt",
            "target_iter=2",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    folder = workspace / "model" / "nojax_SAEHD"
    pointer = (folder / "current").read_text().strip()
    state = json.loads((folder / "checkpoints" / pointer / "state.json").read_text())
    assert state["iteration"] == 2 and state["backend"] == "jax"
