"""Several devices: the batch split across 2 virtual CPU devices gives the losses of one device.

Each backend runs in child processes (tests/multidevice_check.py) with $DFL_CPU_DEVICES set
before the framework starts: JAX gets 2 host devices, TensorFlow 2 logical CPU devices. Quick96
(tiny architecture, learning-rate dropout on) and a tiny SAEHD with the patch GAN and the true-face
code discriminator (three loss groups, clipgrad and learning-rate dropout on) train a few steps
from the same weights and batches on 1 and on 2 devices. torch refuses several devices.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from dfl import backend

backend.select(None)

from dfl.models.quick96 import model as quick96  # noqa: E402
from dfl.models.saehd import model as saehd  # noqa: E402
from tests.helpers import random_batch, tiny_options  # noqa: E402
from tests.multidevice_check import results, save_case, start  # noqa: E402

# float32 sums in another order differ in the 6th digit: Quick96's total (~57) by ~1.5e-4
LOSS_TOLERANCE = 1e-4
LOSS_RELATIVE_TOLERANCE = 1e-5
DEVICES = 2
BATCH = 4  # 2 samples per device
STEPS = 2  # then one more after a sync (see multidevice_check)
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
TRAINER_TIMEOUT_S = 300
# The trainer on 2 virtual CPU devices (JAX): train, save, preview, resume and train on.
TRAINER_CHILD = """
import json, sys
from pathlib import Path
from dfl import backend
backend.use_device("cpu")
backend.import_keras(None)
from dfl.store.model_store import ModelStore
from dfl.training.trainer import Trainer
from tests.helpers import make_setup
from dfl.models.quick96 import model as quick96
setup = make_setup(quick96.SPEC, Path(sys.argv[1]))
trainer = Trainer(setup)
losses = [trainer.train_one()[1] for _ in range(3)]
trainer.save()
pages = trainer.preview_pages()
trainer.close()
setup.loaded = ModelStore(setup.store.folder).load()
resumed = Trainer(setup)
losses.append(resumed.train_one()[1])
resumed.close()
print(json.dumps({"devices": trainer.step_fn.devices, "batch": trainer.batch_size,
                  "notes": trainer.notes, "pages": len(pages), "losses": losses,
                  "iteration": resumed.iteration}))
"""


def _batches(resolution: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    return [random_batch(resolution, BATCH, rng) for _ in range(STEPS)]


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Quick96 and SAEHD case files: initial weights of every network and the batches."""
    folder = tmp_path_factory.mktemp("multidevice")
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    q96 = quick96.build({}, quick96.TINY)
    q96_case = save_case(folder, "quick96", {}, [q96], _batches(quick96.TINY.resolution, rng))
    options = tiny_options(saehd.SPEC, **SAEHD_TINY)
    training = saehd.make_training(options, saehd.build(options))
    assert tuple(g.name for g in training.groups) == SAEHD_GROUPS
    batches = _batches(int(options["resolution"]), rng)
    saehd_case = save_case(folder, "saehd", options, list(training.models), batches)
    return [q96_case, saehd_case]


@pytest.fixture(scope="module")
def runs(cases: list[Path]) -> dict[str, list[dict]]:
    """Every case on 1 and on 2 devices, per backend: one child per backend, all at once."""
    children = {name: start(cases, name, (1, DEVICES)) for name in ("tensorflow", "jax")}
    return {name: results(child) for name, child in children.items()}


@pytest.mark.parametrize("backend_name", ["tensorflow", "jax"])
def test_two_devices_give_the_losses_of_one(
    backend_name: str, cases: list[Path], runs: dict[str, list[dict]]
) -> None:
    outcomes = runs[backend_name]
    assert [r["devices"] for r in outcomes] == [1, DEVICES] * len(cases)  # really split
    for case, single, split in zip(cases, outcomes[::2], outcomes[1::2], strict=True):
        assert len(single["losses"]) == len(split["losses"]) == STEPS + 1
        for step, (expected, got) in enumerate(zip(single["losses"], split["losses"], strict=True)):
            assert sorted(got) == sorted(expected)
            for key, value in expected.items():
                assert math.isfinite(value), (case.stem, step, key)
                close = math.isclose(
                    got[key], value, rel_tol=LOSS_RELATIVE_TOLERANCE, abs_tol=LOSS_TOLERANCE
                )
                assert close, (case.stem, step, key, got, value)
    saehd_losses = outcomes[2]["losses"][0]
    assert {f"{g}_loss" for g in SAEHD_GROUPS} <= set(saehd_losses)


@pytest.mark.slow  # a child process per backend: over a minute on 2 cores
@pytest.mark.parametrize("backend_name", ["tensorflow", "jax"])
def test_two_devices_average_the_gradients_as_dfl(backend_name: str, tmp_path: Path) -> None:
    """DFL averages the devices' gradients (each the sum over its part of the batch), so with
    plain SGD the change on 2 devices is half the change on 1 (docs/training.md)."""
    rng = np.random.default_rng(1)
    keras.utils.set_random_seed(1)
    q96 = quick96.build({}, quick96.TINY)
    batch = _batches(quick96.TINY.resolution, rng)[:1]
    case = save_case(tmp_path, "quick96_sgd", {}, [q96], batch)
    single, split = results(start([case], backend_name, (1, DEVICES)))
    assert (single["devices"], split["devices"]) == (1, DEVICES)
    with np.load(single["update"]) as one, np.load(split["update"]) as two:
        assert len(one.files) == len(two.files) > 0
        for key in one.files:
            assert np.abs(one[key]).max() > 0.0, key  # every weight really moved
            np.testing.assert_allclose(two[key] * DEVICES, one[key], rtol=1e-3, atol=1e-6)


def test_the_trainer_splits_the_batch_across_devices(tmp_path: Path) -> None:
    env = {**os.environ, "KERAS_BACKEND": "jax", backend.CPU_DEVICES_ENV: str(DEVICES)}
    env.pop("XLA_FLAGS", None)
    child = subprocess.run(
        [sys.executable, "-c", TRAINER_CHILD, str(tmp_path / "tiny_Quick96")],
        capture_output=True,
        text=True,
        timeout=TRAINER_TIMEOUT_S,
        env=env,
        cwd=Path(__file__).resolve().parents[1],  # the child imports tests.test_runner
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    outcome = json.loads(child.stdout.strip().splitlines()[-1])
    assert outcome["devices"] == DEVICES
    assert outcome["batch"] == quick96.batch_size({}, DEVICES) == BATCH
    assert outcome["notes"][0] == (
        "Training on 2 devices: the batch of 4 is split into 2 samples per device."
    )
    assert outcome["pages"] == 2 and outcome["iteration"] == 4
    assert all(math.isfinite(v) for step in outcome["losses"] for v in step)


def test_torch_refuses_several_devices(cases: list[Path]) -> None:
    (outcome,) = results(start(cases[:1], "torch", (DEVICES,)))
    message = outcome["error"]
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
    assert getattr(step, "devices", 1) == 1
