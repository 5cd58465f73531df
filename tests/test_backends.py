"""Tests for dfl.backend: selection, devices, and the same losses on TensorFlow, JAX and torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import pytest

from dfl import backend
from dfl.models.quick96 import model as quick96

HERE = Path(__file__).resolve().parent
CHILD_TIMEOUT_S = 300
LOSS_TOLERANCE = 1e-4


def run_python(code: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_select_validates_the_name():
    with pytest.raises(backend.BackendError, match="tensorflow, jax, torch"):
        backend.select("theano")


def test_select_refuses_a_second_backend_once_keras_is_loaded():
    current = keras.backend.backend()
    assert backend.select(current.upper()) == current
    other = next(b for b in backend.BACKENDS if b != current)
    with pytest.raises(backend.BackendError, match="already loaded"):
        backend.select(other)


def test_select_in_a_fresh_process_is_cheap_and_defaults_to_tensorflow():
    code = (
        "import os, sys\n"
        "os.environ.pop('KERAS_BACKEND', None)\n"
        "os.environ.pop('TF_CPP_MIN_LOG_LEVEL', None)\n"
        "from dfl import backend\n"
        "env = os.environ\n"
        "print(backend.select(None), env['KERAS_BACKEND'], env['TF_CPP_MIN_LOG_LEVEL'])\n"
        "os.environ['KERAS_BACKEND'] = 'JAX'\n"
        "print(backend.select(None), backend.select('torch'))\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))\n"
    )
    lines = run_python(code).splitlines()
    assert lines == ["tensorflow tensorflow 3", "jax torch", "[]"]


def test_use_device_sets_visibility_before_keras_loads():
    code = (
        "import os\n"
        "from dfl import backend\n"
        "backend.use_device('cpu')\n"
        "print(repr(os.environ['CUDA_VISIBLE_DEVICES']), os.environ['JAX_PLATFORMS'])\n"
        "backend.use_device('0, 1')\n"
        "print(repr(os.environ['CUDA_VISIBLE_DEVICES']), 'JAX_PLATFORMS' in os.environ)\n"
    )
    env = {"JAX_PLATFORMS": "", "CUDA_VISIBLE_DEVICES": "7"}
    assert run_python(code, env).splitlines() == ["'' cpu", "'0,1' False"]
    with pytest.raises(backend.BackendError, match="before Keras"):
        backend.use_device("cpu")  # keras is loaded in this process
    with pytest.raises(backend.BackendError, match="unknown device"):
        backend.use_device("gpu0")


def test_list_devices_without_nvidia_smi(monkeypatch):
    monkeypatch.setattr(backend.shutil, "which", lambda name: None)
    assert backend.list_devices() == []


@pytest.mark.skipif(sys.platform == "win32", reason="uses a shell script as a fake nvidia-smi")
def test_list_devices_parses_nvidia_smi(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\nprintf '0, NVIDIA H200, 143771\\n1, Tesla T4, [N/A]\\n'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert backend.list_devices() == [
        backend.Device(0, "NVIDIA H200", 143771 * 2**20),
        backend.Device(1, "Tesla T4", None),
    ]
    fake.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    assert backend.list_devices() == []


def test_make_step_dispatches_to_the_loaded_backend():
    model = quick96.build({}, quick96.TINY)
    step = backend.make_model_step(model, quick96.compute_losses, quick96.make_optimizer({}))
    assert type(step).__module__ == f"dfl.backend.{keras.backend.backend()}"
    assert callable(step.sync)
    assert callable(step.evaluate)


def test_three_backends_give_the_same_losses(tmp_path):
    keras.utils.set_random_seed(0)
    model = quick96.build({}, quick96.TINY)
    rng = np.random.default_rng(0)
    res = quick96.TINY.resolution
    batch = {}
    for side in ("src", "dst"):
        batch[f"warped_{side}"] = rng.random((4, res, res, 3), dtype=np.float32)
        batch[f"target_{side}"] = rng.random((4, res, res, 3), dtype=np.float32)
        batch[f"mask_{side}"] = (rng.random((4, res, res, 1)) > 0.4).astype(np.float32)
    case = tmp_path / "case.npz"
    np.savez(
        case,
        arch=np.array(json.dumps(asdict(quick96.TINY))),
        **{f"w_{i:03d}": w for i, w in enumerate(model.get_weights())},
        **{f"b_{k}": v for k, v in batch.items()},
    )
    children = {
        name: subprocess.Popen(
            [sys.executable, str(HERE / "backend_check.py"), str(case)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "KERAS_BACKEND": name},
        )
        for name in backend.BACKENDS
    }
    results = {}
    for name, child in children.items():
        out, err = child.communicate(timeout=CHILD_TIMEOUT_S)
        assert child.returncode == 0, f"{name}: {err[-3000:]}"
        results[name] = json.loads(out.strip().splitlines()[-1])
        assert results[name]["backend"] == name

    reference = results["tensorflow"]
    assert reference["after"]["loss"] < reference["before"]["loss"]
    for name, result in results.items():
        for phase in ("before", "step", "after"):
            for key in ("loss", "src_loss", "dst_loss"):
                assert result[phase][key] == pytest.approx(
                    reference[phase][key], abs=LOSS_TOLERANCE
                ), (name, phase, key)
