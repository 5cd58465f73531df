"""DFL's model summary box, printed at start and written to summary.txt."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

MIN_NAME_WIDTH = 17  # len("Current iteration"), the longest fixed key
FRAME = "=="
KEY_SEPARATOR = ": "
BYTES_PER_GB = 1024**3
CPU_LINES = ("Using device: CPU",)


class DeviceLike(Protocol):
    """What describe_devices needs of a `dfl.backend.Device`."""

    index: int
    name: str
    memory_bytes: int | None


def describe_devices(devices: Sequence[DeviceLike]) -> list[str]:
    """The "Running On" rows for the chosen GPUs, or the CPU row when there are none."""
    if not devices:
        return list(CPU_LINES)
    lines = []
    for device in devices:
        lines += [f"Device index: {device.index}", f"Name: {device.name}"]
        if device.memory_bytes:
            lines.append(f"VRAM: {device.memory_bytes / BYTES_PER_GB:.2f}GB")
    return lines


def summary_text(
    model_name: str,
    model_type: str,
    iteration: int,
    options: Mapping[str, Any],
    device_lines: Sequence[str] = CPU_LINES,
    *,
    display_overrides: Mapping[str, Any] | None = None,
) -> str:
    """The summary box: model name (`<name>_<MODEL>`), iteration, options, devices.

    `options` are listed in their dict order with str() values (bools as True/False);
    `display_overrides` replaces shown values without changing the options (SAEHD pretraining).
    `device_lines` are "Key: value" rows (see `describe_devices`); empty means CPU.
    """
    shown = {**options, **(display_overrides or {})}
    devices = [line.partition(KEY_SEPARATOR)[::2] for line in device_lines or CPU_LINES]
    full_name = f"{model_name}_{model_type}"
    keys = [*shown, *(key for key, _ in devices)]
    values = [*map(str, shown.values()), *(value for _, value in devices)]
    width_name = max([len(key) for key in keys] + [MIN_NAME_WIDTH]) + 1
    width_value = max([len(value) for value in values] + [len(str(iteration)), len(full_name)])
    width_value += 1
    width = width_name + width_value + len(KEY_SEPARATOR)

    def row(key: str, value: object) -> str:
        return f"{FRAME}{key:>{width_name}}{KEY_SEPARATOR}{value!s:<{width_value}}{FRAME}"

    blank = f"{FRAME}{' ' * width}{FRAME}"
    lines = [
        f"{FRAME}{' Model Summary ':=^{width}}{FRAME}",
        blank,
        row("Model name", full_name),
        blank,
        row("Current iteration", iteration),
        blank,
        f"{FRAME}{' Model Options ':-^{width}}{FRAME}",
        blank,
        *(row(key, value) for key, value in shown.items()),
        blank,
        f"{FRAME}{' Running On ':-^{width}}{FRAME}",
        blank,
        *(row(key, value) for key, value in devices),
        blank,
        f"{FRAME}{'=' * width}{FRAME}",
    ]
    return "\n".join(lines)
