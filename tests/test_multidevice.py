"""Several devices: the batch split across 2 virtual CPU devices gives the losses of one device.

Each backend runs the checks in a child process of the backend harness (tests/backends.py) with
$DFL_CPU_DEVICES set before the framework starts: JAX gets 2 host devices, TensorFlow 2 logical
CPU devices. A tiny SAEHD with the patch GAN and the true-face code discriminator (three loss
groups, clipgrad and learning-rate dropout on) trains a few steps from the same weights and
batches on 1 and on 2 devices (the `train` check); the Trainer trains, saves, previews and
resumes a tiny Quick96 on 2 devices (JAX). torch refuses several devices.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest

from dfl import backend

backend.select(None)

from dfl.models.quick96 import model as quick96  # noqa: E402
from dfl.models.saehd import model as saehd  # noqa: E402
from tests import backends  # noqa: E402
from tests.backend_checks import save_case  # noqa: E402
from tests.helpers import random_batch, tiny_options  # noqa: E402

# Not bit-equal: float32 sums run in another order, and the averaged gradient (one device's / n,
# as DFL) meets AdaBelief's epsilon differently, so the code discriminator's tiny steps drift
# (SAEHD's D_code_loss ~2.77 by ~1.2e-4 after 3 steps). A lost or double-counted half batch
# would be off by tens of percent.
LOSS_TOLERANCE = 1e-4
LOSS_RELATIVE_TOLERANCE = 1e-4
DEVICES = 2
SPLIT = f"1,{DEVICES}"  # each case on one device, then split
BATCH = 4  # 2 samples per device
STEPS = 2  # then one more after a sync (tests/backend_checks.py, `train`)
SAEHD_TINY = {  # on top of SAEHD's tiny options: every loss group
    "archi": "df-ud",
    "batch_size": BATCH,
    "face_type": "f",
    "gan_power": 0.1,
    "gan_patch_size": 8,
    "gan_dims": 4,
    "true_face_power": 0.01,
    "lr_dropout": "y",
    "clipgrad": "y",
}
SAEHD_GROUPS = ("src_dst", "D_code", "GAN")
SPLITTING_BACKENDS = ("tensorflow", "jax")


def _start_on_devices(backend_name: str, plan: backends.Plan) -> subprocess.Popen:
    """The plan in a child on `backend_name` with the CPU split into DEVICES devices."""
    return backends.start(backend_name, plan, **{backend.CPU_DEVICES_ENV: str(DEVICES)})


def _on_devices(backend_name: str, plan: backends.Plan) -> list:
    return backends.results(_start_on_devices(backend_name, plan))


def _batches(resolution: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    return [random_batch(resolution, BATCH, rng) for _ in range(STEPS)]


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A SAEHD case file: initial weights of every network and the batches. Its three loss
    groups are the general step; Quick96's one group is its special case (the Trainer test
    below and the slow SGD test split Quick96)."""
    folder = tmp_path_factory.mktemp("multidevice")
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    options = tiny_options(saehd.SPEC, **SAEHD_TINY)
    training = saehd.make_training(options, saehd.build(options))
    assert tuple(g.name for g in training.groups) == SAEHD_GROUPS
    batches = _batches(int(options["resolution"]), rng)
    return [save_case(folder, saehd.NAME, options, list(training.models), batches)]


@pytest.fixture(scope="module")
def runs(cases: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    """Every case on 1 and on 2 devices, per backend, then (JAX) the Trainer on 2 devices: one
    child per backend, all at once. Each backend's results in plan order."""
    plan: backends.Plan = [("train", [str(case), SPLIT]) for case in cases]
    trainer_model = tmp_path_factory.mktemp("trainer") / "tiny_Quick96"
    plans = {"tensorflow": plan, "jax": [*plan, ("trainer_devices", [str(trainer_model)])]}
    children = {name: _start_on_devices(name, plans[name]) for name in SPLITTING_BACKENDS}
    return {name: backends.results(child) for name, child in children.items()}


@pytest.mark.parametrize("backend_name", SPLITTING_BACKENDS)
def test_two_devices_give_the_losses_of_one(
    backend_name: str, cases: list[Path], runs: dict[str, list]
) -> None:
    for case, (single, split) in zip(cases, runs[backend_name][: len(cases)], strict=True):
        assert (single["devices"], split["devices"]) == (1, DEVICES)  # really split
        assert len(single["losses"]) == len(split["losses"]) == STEPS + 1
        for step, (expected, got) in enumerate(zip(single["losses"], split["losses"], strict=True)):
            assert sorted(got) == sorted(expected)
            for key, value in expected.items():
                assert math.isfinite(value), (case.stem, step, key)
                close = math.isclose(
                    got[key], value, rel_tol=LOSS_RELATIVE_TOLERANCE, abs_tol=LOSS_TOLERANCE
                )
                assert close, (case.stem, step, key, got, value)
    saehd_losses = runs[backend_name][0][0]["losses"][0]
    assert {f"{g}_loss" for g in SAEHD_GROUPS} <= set(saehd_losses)


@pytest.mark.slow  # a child process per backend: over a minute on 2 cores
@pytest.mark.parametrize("backend_name", SPLITTING_BACKENDS)
def test_two_devices_average_the_gradients_as_dfl(backend_name: str, tmp_path: Path) -> None:
    """DFL averages the devices' gradients (each the sum over its part of the batch), so with
    plain SGD the change on 2 devices is half the change on 1 (docs/training.md)."""
    rng = np.random.default_rng(1)
    keras.utils.set_random_seed(1)
    options = dict(quick96.TINY_OPTIONS)
    q96 = quick96.build(options)
    case = save_case(tmp_path, quick96.NAME, options, [q96], _batches(quick96.TINY.resolution, rng))
    ((single, split),) = _on_devices(backend_name, [("sgd_update", [str(case), SPLIT])])
    assert (single["devices"], split["devices"]) == (1, DEVICES)
    with np.load(single["update"]) as one, np.load(split["update"]) as two:
        assert len(one.files) == len(two.files) > 0
        for key in one.files:
            assert np.abs(one[key]).max() > 0.0, key  # every weight really moved
            np.testing.assert_allclose(two[key] * DEVICES, one[key], rtol=1e-3, atol=1e-6)


def test_the_trainer_splits_the_batch_across_devices(runs: dict[str, list]) -> None:
    """The Trainer on 2 devices (JAX): train, save, preview, resume and train on."""
    outcome = runs["jax"][-1]
    assert outcome["devices"] == DEVICES
    assert outcome["batch"] == quick96.batch_size({}, DEVICES) == BATCH
    assert outcome["notes"][0] == (
        "Training on 2 devices: the batch of 4 is split into 2 samples per device."
    )
    assert outcome["pages"] == 2 and outcome["iteration"] == 4
    assert all(math.isfinite(v) for step in outcome["losses"] for v in step)


def test_torch_refuses_several_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    with pytest.raises(backend.BackendError) as refused:
        backend.data_parallel(DEVICES)
    message = str(refused.value)
    assert "torch backend trains on one device only" in message
    assert "--backend jax" in message and "--backend tensorflow" in message


def test_device_count() -> None:
    assert backend.device_count("0") == 1
    assert backend.device_count("0, 1") == 2
    assert backend.device_count("CPU") == backend.cpu_device_count()
    with pytest.raises(backend.BackendError, match="unknown device"):
        backend.device_count("gpu0")


def test_cpu_devices_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(backend.CPU_DEVICES_ENV, raising=False)
    assert backend.cpu_device_count() == 1
    monkeypatch.setenv(backend.CPU_DEVICES_ENV, "3")
    assert backend.device_count("cpu") == 3
    monkeypatch.setenv(backend.CPU_DEVICES_ENV, "two")
    with pytest.raises(backend.BackendError, match="positive whole number"):
        backend.cpu_device_count()


def test_check_devices_refuses_several_for_torch_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(backend.CPU_DEVICES_ENV, raising=False)
    for name in ("tensorflow", "jax"):
        backend.check_devices(name, "0,1")
    backend.check_devices("torch", "1")
    backend.check_devices("torch", "cpu")
    with pytest.raises(backend.BackendError, match=r"2 GPUs \(0,1\) were chosen"):
        backend.check_devices("torch", "0,1")


def test_data_parallel_on_one_device_changes_nothing() -> None:
    with backend.data_parallel(1) as devices:
        model = quick96.build({}, quick96.TINY)
        step = backend.make_model_step(model, quick96.compute_losses, quick96.make_optimizer())
    assert devices.n_devices == 1
    assert step.devices == 1
