"""Tests for dfl.backend: selection and devices; and the same results on TensorFlow, JAX and
torch (tests/backends.py runs tests/backend_checks.py on each): every model's loss groups before,
during and after steps from shared weights and batches (tiny configurations, learning-rate
dropout off, the GANs and SAEHD's true-face code discriminator on), imported DFL models' outputs
on fixed faces, and the toy loss-group checks of dfl.backend.make_step."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from dfl import backend

backend.select(None)

from dfl.models import registry  # noqa: E402
from dfl.models.quick96 import model as quick96  # noqa: E402
from tests import backend_checks  # noqa: E402
from tests.backends import run_everywhere  # noqa: E402
from tests.helpers import random_batch, tiny_options  # noqa: E402

CHILD_TIMEOUT_S = 300
LOSS_TOLERANCE = 1e-4  # absolute below 1, relative above (AMP's summed losses are about 90)
OUTPUT_TOLERANCE = 1e-4  # sigmoid outputs in [0, 1]
DFL_FIXTURES = Path(__file__).parent / "data" / "dfl-models"
DFL_CASES = ("tiny-saehd-liae-ud-64", "tiny-amp-64")
GAN = {"gan_power": 0.1, "gan_patch_size": 8, "gan_dims": 4}
# model -> (options on top of its tiny ones, the objectives one step lowers: every loss group's)
LOSS_CASES = {
    "Quick96": ({"lr_dropout": "n"}, ["loss"]),
    "SAEHD": (
        {"archi": "df-ud", "face_type": "f", "true_face_power": 0.01, "lr_dropout": "n", **GAN},
        ["src_dst_loss", "D_code_loss", "GAN_loss"],
    ),
    "AMP": ({"face_type": "f", "lr_dropout": "n", **GAN}, ["src_dst_loss", "GAN_loss"]),
}
AMP_MASKS = ("em",)  # AMP also trains on eye-and-mouth masks


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


def _case(folder: Path, name: str, overrides: dict) -> Path:
    spec = registry.load(name)
    options = tiny_options(spec, **overrides)
    model = spec.build(options)
    networks = list(spec.make_training(options, model).models)  # in the check's order
    res, batch = int(options["resolution"]), spec.batch_size(options, 1)
    inputs = random_batch(res, batch, 0, AMP_MASKS if name == "AMP" else ())
    inputs = spec.step_inputs(options, inputs, 0)  # AMP draws its morph mask on the host
    return backend_checks.save_case(folder, name, options, networks, [inputs])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every check on every backend at once (one child process per other backend)."""
    folder = tmp_path_factory.mktemp("backends")
    keras.utils.set_random_seed(0)
    plan = [
        ("train", [str(_case(folder, name, overrides)), "1", True])
        for name, (overrides, _) in LOSS_CASES.items()
    ]
    dfl_work = folder / "dfl"
    for case in DFL_CASES:
        shutil.copytree(DFL_FIXTURES / case, dfl_work / case)
    plan.append(("dfl_outputs", [str(dfl_work), *(str(dfl_work / c) for c in DFL_CASES)]))
    plan.append(("loss_groups", []))
    keys = [*LOSS_CASES, "dfl_outputs", "loss_groups"]
    return {b: dict(zip(keys, results, strict=True)) for b, results in run_everywhere(plan).items()}


@pytest.mark.parametrize("name", list(LOSS_CASES))
def test_every_backend_gives_the_same_losses(name: str, runs: dict[str, dict[str, Any]]) -> None:
    objectives = LOSS_CASES[name][1]
    (reference,) = runs["tensorflow"][name]
    keys = sorted(reference["before"])
    assert set(objectives) <= set(keys)
    phases = [reference["before"], *reference["losses"], reference["after"]]
    assert all(math.isfinite(p[k]) for p in phases for k in keys)
    for key in objectives:  # the steps lowered every group's objective
        assert reference["after"][key] < reference["before"][key], key
    for backend_name, by_check in runs.items():
        (run,) = by_check[name]
        assert run["backend"] == backend_name
        assert len(run["losses"]) == len(reference["losses"])
        for phase, expected in zip(
            ["before", *range(len(run["losses"])), "after"], phases, strict=True
        ):
            got = run[phase] if isinstance(phase, str) else run["losses"][phase]
            assert sorted(got) == sorted(expected), (backend_name, phase)
            for key, value in expected.items():
                tolerance = LOSS_TOLERANCE * max(1.0, abs(value))
                assert abs(got[key] - value) <= tolerance, (backend_name, phase, key, got, value)


def test_imported_dfl_models_agree_across_backends(runs: dict[str, dict[str, Any]]) -> None:
    outputs = {}
    for backend_name, by_check in runs.items():
        folder = Path(by_check["dfl_outputs"]["folder"])
        assert by_check["dfl_outputs"]["backend"] == backend_name
        outputs[backend_name] = {}
        for case in DFL_CASES:
            with np.load(folder / f"{case}.npz") as data:
                outputs[backend_name][case] = {k: data[k] for k in data.files}
    for case in DFL_CASES:
        expected = outputs["tensorflow"][case]
        assert expected, case
        for backend_name, by_case in outputs.items():
            got = by_case[case]
            assert sorted(got) == sorted(expected), (backend_name, case)
            for key, value in got.items():
                assert value.shape == expected[key].shape, (backend_name, case, key)
                assert np.all(np.isfinite(value)), (backend_name, case, key)
                np.testing.assert_allclose(
                    value, expected[key], atol=OUTPUT_TOLERANCE, err_msg=f"{backend_name} {case}"
                )


def test_loss_groups_behave_on_every_backend(runs: dict[str, dict[str, Any]]) -> None:
    expected = [check.__name__ for check in backend_checks.LOSS_GROUP_CHECKS]
    for backend_name, by_check in runs.items():
        assert by_check["loss_groups"] == {"backend": backend_name, "passed": expected}
