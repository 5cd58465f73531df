"""Keras backend selection, device listing and the per-backend training step factory.

`LossGroup` (dfl.backend.step) and `make_step` are the one way to train: see dfl/backend/step.py.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dfl.backend.step import LOSS_KEY, LossGroup, StepBase, model_group

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT_BACKEND = "tensorflow"
# DFL silences TensorFlow's C++ logging (INFO, WARNING and ERROR lines) before importing it.
TF_LOG_LEVEL = "3"
NVIDIA_SMI_TIMEOUT_S = 10.0
MIB = 1 << 20
_GPU_LIST = re.compile(r"^\d+(,\d+)*$")
# Tests and development only: "cpu" trains on this many virtual CPU devices (data parallel), so
# the several-GPU path runs without GPUs. Unset or 1: one CPU device, as usual.
CPU_DEVICES_ENV = "DFL_CPU_DEVICES"
_XLA_HOST_DEVICES = "--xla_force_host_platform_device_count"


class BackendError(RuntimeError):
    """The backend or device cannot be chosen as asked."""


@dataclass(frozen=True)
class Device:
    index: int
    name: str
    memory_bytes: int | None


def _imported_backend() -> str | None:
    """The backend of an already imported Keras, or None when Keras is not imported yet."""
    if "keras" not in sys.modules:
        return None
    import keras

    return keras.backend.backend()


def select(name: str | None = None) -> str:
    """Choose the Keras backend: `name`, else $KERAS_BACKEND, else tensorflow.

    Call it before Keras is first imported; returns the chosen name.
    """
    chosen = (name or os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND).strip().lower()
    if chosen not in BACKENDS:
        raise BackendError(f"unknown backend {chosen!r}: choose one of {', '.join(BACKENDS)}")
    current = _imported_backend()
    if current is None:
        _check_installed(chosen)
    if current is not None and current != chosen:
        raise BackendError(
            f"Keras is already loaded with the {current!r} backend; the backend must be "
            f"chosen before Keras is first imported (asked for {chosen!r})"
        )
    os.environ["KERAS_BACKEND"] = chosen
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL)
    return chosen


def _check_installed(name: str) -> None:
    """Raise BackendError when backend `name`'s framework (same module name) is not installed;
    looks for it without importing it."""
    try:
        found = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a finder refusing it, or a broken half-install
        found = False
    if not found:
        how = "pip install tensorflow" if name == "tensorflow" else f"pip install 'dfl[{name}]'"
        raise BackendError(
            f"the {name} backend is not installed: install it with {how}, or choose an "
            f"installed one with --backend ({', '.join(BACKENDS)}) or $KERAS_BACKEND"
        )


def import_keras(name: str | None = None) -> Any:
    """select(name), then import Keras; TensorFlow's start-up lines on stderr are dropped.

    TensorFlow 2.21 logs through absl before its log level applies, so TF_CPP_MIN_LOG_LEVEL
    cannot silence those lines: stderr (fd 2) is pointed at the null device during the import.
    Python exceptions still propagate.
    """
    chosen = select(name)
    if "keras" in sys.modules or chosen != "tensorflow":
        import keras

        return keras
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        import keras
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    if cpu_device_count() > 1:  # before TensorFlow's runtime starts (tests: $DFL_CPU_DEVICES)
        from dfl.backend.tensorflow import split_cpu

        split_cpu(cpu_device_count())
    return keras


def list_devices() -> list[Device]:
    """NVIDIA GPUs as `nvidia-smi` reports them (no framework import); [] when there are none."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        result = subprocess.run(
            [exe, "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if result.returncode != 0:
        return []
    devices = []
    for line in result.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 3 or not parts[0].isdigit():
            continue
        name = ", ".join(parts[1:-1])
        try:
            memory: int | None = int(float(parts[-1]) * MIB)
        except ValueError:
            memory = None
        devices.append(Device(int(parts[0]), name, memory))
    return devices


def use_device(device: str) -> None:
    """Make only `device` visible: "cpu" hides every GPU, "0,1" selects GPUs.

    Call it before Keras is first imported.
    """
    spec = device.strip().lower().replace(" ", "")
    if spec != "cpu" and not _GPU_LIST.match(spec):
        raise BackendError(
            f"unknown device {device!r}: use 'cpu' or GPU indexes such as '0' or '0,1'"
        )
    if "keras" in sys.modules:
        raise BackendError("the device must be chosen before Keras is first imported")
    if spec == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        os.environ["JAX_PLATFORMS"] = "cpu"
        if cpu_device_count() > 1:  # JAX makes its virtual CPU devices from this flag
            flags = os.environ.get("XLA_FLAGS", "")
            if _XLA_HOST_DEVICES not in flags:
                extra = f"{_XLA_HOST_DEVICES}={cpu_device_count()}"
                os.environ["XLA_FLAGS"] = f"{flags} {extra}".strip()
    else:
        os.environ["CUDA_VISIBLE_DEVICES"] = spec
        if os.environ.get("JAX_PLATFORMS") == "cpu":
            del os.environ["JAX_PLATFORMS"]


def cpu_device_count() -> int:
    """The virtual CPU devices "cpu" trains on: $DFL_CPU_DEVICES (tests), else 1."""
    raw = os.environ.get(CPU_DEVICES_ENV, "").strip()
    if not raw:
        return 1
    if not raw.isdigit() or int(raw) < 1:
        raise BackendError(f"{CPU_DEVICES_ENV} must be a positive whole number, got {raw!r}")
    return int(raw)


def device_count(device: str) -> int:
    """How many devices a choice trains on: the GPUs of "0,1"; "cpu": cpu_device_count()."""
    spec = device.strip().lower().replace(" ", "")
    if spec == "cpu":
        return cpu_device_count()
    if not _GPU_LIST.match(spec):
        raise BackendError(f"unknown device {device!r}: use 'cpu' or GPU indexes such as '0,1'")
    return len(set(spec.split(",")))


def check_devices(backend: str, device: str) -> None:
    """BackendError when `backend` cannot train on every device of `device` (torch: one only).

    Cheap (no framework import): call it right after the device prompt.
    """
    n = device_count(device)
    if backend == "torch" and n > 1:
        cpu = device.strip().lower() == "cpu"
        raise BackendError(_torch_refusal(n, "virtual CPU devices" if cpu else f"GPUs ({device})"))


def _torch_refusal(n: int, what: str) -> str:
    return (
        f"the torch backend trains on one device only, but {n} {what} were chosen. Choose one "
        "GPU, or train with --backend jax or --backend tensorflow: they split the batch across "
        "several GPUs."
    )


class DataParallel:
    """Training on `n_devices` devices: build the networks, optimizers and steps inside it.

        devices = data_parallel(2)
        with devices:
            model = spec.build(options); step = make_step(...)
        with devices:  # re-entered: a step made again later (same devices, same variables)
            step = make_step(...)

    Every step made inside splits its batch evenly across the devices and reports the losses of
    one device; as in DFL the applied gradient is the devices' mean, one device's divided by n
    (docs/training.md §10).
    TensorFlow: variables made inside are mirrored (tf.distribute.MirroredStrategy). JAX: the
    jitted steps replicate their state and shard the batch over a device mesh. torch: several
    devices are refused (BackendError). One device: nothing changes.
    """

    def __init__(self, n_devices: int):
        import keras

        self.n_devices = max(1, n_devices)
        self._scope: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
        self._entered: list[contextlib.AbstractContextManager] = []
        if self.n_devices > 1:
            name = keras.backend.backend()
            if name == "torch":
                raise BackendError(_torch_refusal(self.n_devices, "devices"))
            module = importlib.import_module(f"{__name__}.{name}")
            self._scope = module.data_parallel(self.n_devices)

    def __enter__(self) -> DataParallel:
        scope = self._scope()
        scope.__enter__()
        self._entered.append(scope)
        return self

    def __exit__(self, *exc: object) -> None:
        self._entered.pop().__exit__(*exc)


def data_parallel(n_devices: int) -> DataParallel:
    """See DataParallel: call it once Keras is loaded, before building the networks."""
    return DataParallel(n_devices)


def make_step(groups: Sequence[LossGroup], models: Sequence[Any]) -> StepBase:
    """The training step over `groups` (dfl.backend.step.LossGroup, run in order, each with its
    own variables and optimizer) for the loaded Keras backend: dfl.backend.<backend>.Step.
    `models`: every network whose variables any group's compute reads (JAX evaluates them
    statelessly). Called with the inputs dict it returns each group's objective under its
    `loss_key` with the group's other reported values, as Python floats."""
    import keras

    name = keras.backend.backend()
    if name not in BACKENDS:
        raise BackendError(f"Keras backend {name!r} is not supported: use one of {BACKENDS}")
    module = importlib.import_module(f"{__name__}.{name}")
    return module.make_step(groups, models)


def make_model_step(
    model: Any, compute_losses: Callable[[dict, dict], dict], optimizer: Any
) -> StepBase:
    """make_step with one group: `compute_losses(model(inputs), inputs)` trains all of the
    model's trainable variables with `optimizer`; the step returns compute_losses' keys as they
    are ("loss" included)."""
    group = model_group(model, compute_losses, optimizer, loss_key=LOSS_KEY)
    return make_step([group], [model])
