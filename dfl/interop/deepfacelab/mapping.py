"""DFL weight names <-> the project's Keras variables.

The project's layers (dfl/nn/blocks.py) were built to DFL's layouts (docs/networks.md §1): conv
kernels are (kh, kw, in, out) like DFL's, dense kernels (in, out), depth_to_space uses TF's DCR
order and the flatten/reshape around the dense layers uses (C, H, W) order, so every array is
copied as it is; only names differ. A variable `encoder/down1/downs_0/conv1/kernel` of network
`encoder` is DFL's `down1/downs_0/conv1/weight:0` in `<name>_<Class>_encoder.npy` (the network
scope dropped, `kernel` -> `weight`, TF's `:0` suffix added). Optimizer files keep one
accumulator per trained weight under `<slot>_<network>/<layer>/<weight>_0` (`:` -> `_`) plus
`iters` (docs/dfl-trainer.md §7).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TF_SUFFIX = ":0"
KERAS_TO_DFL_LEAF = {"kernel": "weight", "bias": "bias"}
ITERS_KEY = "iters"
# Layers whose DFL name differs from the project's, per (model class, network).
LAYER_RENAMES: dict[tuple[str, str], dict[str, str]] = {
    ("AMP", "inter_src"): {"dense1": "dense2"},
    ("AMP", "inter_dst"): {"dense1": "dense2"},
}
# DFL's TF scope of a network where it differs from its file name (accumulator names use it).
DFL_SCOPES = {"GAN": "D_src", "code_discriminator": "dis"}
# Optimizer slot variables of dfl.nn.optimizers (attribute, DFL key prefix) per optimizer class.
OPTIMIZER_SLOTS: dict[str, tuple[tuple[str, str], ...]] = {
    "AdaBelief": (("_ms", "ms"), ("_vs", "vs")),
    "RMSprop": (("_accumulators", "acc"),),
}


@dataclass
class Problems:
    """Everything wrong with a set of DFL files, gathered so the user sees it all at once."""

    lines: list[str] = field(default_factory=list)

    def add(self, path: Path, message: str) -> None:
        self.lines.append(f"{path.name}: {message}")

    def __bool__(self) -> bool:
        return bool(self.lines)


def _relative(path: str, network: str) -> str:
    """A variable path without its network scope."""
    prefix = f"{network}/"
    return path[len(prefix) :] if path.startswith(prefix) else path


def dfl_weight_name(variable_path: str, network: str, model_class: str) -> str:
    """DFL's key (without `:0`) of a project variable in its network's file."""
    layer, _, leaf = _relative(variable_path, network).rpartition("/")
    layer = LAYER_RENAMES.get((model_class, network), {}).get(layer, layer)
    return f"{layer}/{KERAS_TO_DFL_LEAF.get(leaf, leaf)}"


def strip_tf_suffix(key: str) -> str:
    return key[: -len(TF_SUFFIX)] if key.endswith(TF_SUFFIX) else key


def _fit(array: np.ndarray, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.dtype(dtype)).reshape(shape)


def map_network(
    network: str,
    variables: Sequence[Any],
    weights: Mapping[str, np.ndarray],
    path: Path,
    model_class: str,
    problems: Problems,
) -> list[np.ndarray]:
    """One array per variable, in order, from a DFL network file; problems name each weight
    that is missing, left over or shaped differently."""
    by_name = {strip_tf_suffix(k): v for k, v in weights.items()}
    values: list[np.ndarray] = []
    used: set[str] = set()
    for variable in variables:
        name = dfl_weight_name(variable.path, network, model_class)
        shape = tuple(variable.shape)
        array = by_name.get(name)
        if array is None:
            problems.add(path, f"weight {name}{TF_SUFFIX} is missing (expected shape {shape})")
            continue
        used.add(name)
        if tuple(array.shape) != shape:
            problems.add(
                path,
                f"weight {name}{TF_SUFFIX} has shape {tuple(array.shape)}, the model needs "
                f"{shape} (do the options match the files?)",
            )
            continue
        values.append(_fit(array, shape, variable.dtype))
    for name in sorted(set(by_name) - used):
        problems.add(path, f"weight {name}{TF_SUFFIX} is left over: no layer of {network} uses it")
    return values


def optimizer_values(
    optimizer: Any,
    weights: Mapping[str, np.ndarray],
    path: Path,
    model_class: str,
    problems: Problems,
    owners: Mapping[int, str],
) -> dict[int, np.ndarray]:
    """Values for an optimizer's variables (by index in `optimizer.variables`) from DFL's
    optimizer file: each slot of each trained weight, and the iteration counter. `owners` maps
    id(weight variable) to the name of its network."""
    slots = OPTIMIZER_SLOTS.get(type(optimizer).__name__)
    if slots is None:
        problems.add(path, f"the project's {type(optimizer).__name__} has no DFL counterpart")
        return {}
    by_name = {strip_tf_suffix(k): v for k, v in weights.items()}
    index_of = {id(v): i for i, v in enumerate(optimizer.variables)}
    values: dict[int, np.ndarray] = {}
    used: set[str] = set()
    for attr, prefix in slots:
        pairs = zip(optimizer._trainable_variables, getattr(optimizer, attr), strict=True)
        for variable, slot in pairs:
            network = owners[id(variable)]
            weight = dfl_weight_name(variable.path, network, model_class)
            name = f"{prefix}_{DFL_SCOPES.get(network, network)}/{weight}_0"
            array = by_name.get(name)
            shape = tuple(slot.shape)
            if array is None:
                problems.add(path, f"accumulator {name}{TF_SUFFIX} is missing")
                continue
            used.add(name)
            if tuple(array.shape) != shape:
                problems.add(
                    path, f"accumulator {name}{TF_SUFFIX} has shape {array.shape}, needs {shape}"
                )
                continue
            values[index_of[id(slot)]] = _fit(array, shape, slot.dtype)
    iters = by_name.get(ITERS_KEY)
    if iters is not None:
        used.add(ITERS_KEY)
        counter = optimizer.iterations
        values[index_of[id(counter)]] = _fit(iters, tuple(counter.shape), counter.dtype)
    for name in sorted(set(by_name) - used):
        problems.add(path, f"accumulator {name}{TF_SUFFIX} is left over: no trained weight has it")
    return values
