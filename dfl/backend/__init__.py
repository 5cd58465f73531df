"""Keras backend selection, device listing and the per-backend training step factory."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT_BACKEND = "tensorflow"
# DFL silences TensorFlow's C++ logging (INFO, WARNING and ERROR lines) before importing it.
TF_LOG_LEVEL = "3"
NVIDIA_SMI_TIMEOUT_S = 10.0
MIB = 1 << 20
_GPU_LIST = re.compile(r"^\d+(,\d+)*$")


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
    if current is not None and current != chosen:
        raise BackendError(
            f"Keras is already loaded with the {current!r} backend; the backend must be "
            f"chosen before Keras is first imported (asked for {chosen!r})"
        )
    os.environ["KERAS_BACKEND"] = chosen
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL)
    return chosen


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
    else:
        os.environ["CUDA_VISIBLE_DEVICES"] = spec
        if os.environ.get("JAX_PLATFORMS") == "cpu":
            del os.environ["JAX_PLATFORMS"]


def make_train_step(
    model: Any, compute_losses: Callable[[dict, dict], dict], optimizer: Any
) -> Any:
    """The training step for the loaded Keras backend (see dfl.backend.<backend>.TrainStep)."""
    import keras

    name = keras.backend.backend()
    if name not in BACKENDS:
        raise BackendError(f"Keras backend {name!r} is not supported: use one of {BACKENDS}")
    module = importlib.import_module(f"{__name__}.{name}")
    return module.make_train_step(model, compute_losses, optimizer)


def make_multi_step(groups: Any, models: Any) -> Any:
    """The step over several loss groups, each with its own variables and optimizer, for the
    loaded Keras backend (see dfl.backend.multistep): SAEHD's generator, code discriminator and
    patch GAN. Called with the inputs dict, it runs every group in order and returns each
    group's objective as "<group>_loss" with its other reported values."""
    from dfl.backend.multistep import make_multi_step as make

    return make(groups, models)
