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
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from dfl.models.contract import ModelSpec

TF_SUFFIX = ":0"
KERAS_TO_DFL_LEAF = {"kernel": "weight", "bias": "bias"}
ITERS_KEY = "iters"
# DFL's key prefix of each slot of dfl.nn.optimizers' optimizers (their `slots()` names).
OPTIMIZER_SLOT_PREFIXES: dict[str, dict[str, str]] = {
    "AdaBelief": {"ms": "ms", "vs": "vs"},
    "RMSprop": {"acc": "acc"},
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


def dfl_weight_name(variable_path: str, network: str, spec: ModelSpec) -> str:
    """DFL's key (without `:0`) of a project variable in its network's file; the model's
    `dfl_layer_renames` give the layers DFL names differently."""
    layer, _, leaf = _relative(variable_path, network).rpartition("/")
    layer = spec.dfl_layer_renames.get(network, {}).get(layer, layer)
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
    spec: ModelSpec,
    problems: Problems,
) -> list[np.ndarray]:
    """One array per variable, in order, from a DFL network file; problems name each weight
    that is missing, left over or shaped differently."""
    by_name = {strip_tf_suffix(k): v for k, v in weights.items()}
    values: list[np.ndarray] = []
    used: set[str] = set()
    for variable in variables:
        name = dfl_weight_name(variable.path, network, spec)
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
    spec: ModelSpec,
    problems: Problems,
    owners: Mapping[int, str],
) -> dict[int, np.ndarray]:
    """Values for an optimizer's variables (by index in `optimizer.variables`) from DFL's
    optimizer file: each slot of each trained weight, and the iteration counter. `owners` maps
    id(weight variable) to the name of its network."""
    prefixes = OPTIMIZER_SLOT_PREFIXES.get(type(optimizer).__name__)
    if prefixes is None:
        problems.add(path, f"the project's {type(optimizer).__name__} has no DFL counterpart")
        return {}
    by_name = {strip_tf_suffix(k): v for k, v in weights.items()}
    index_of = {id(v): i for i, v in enumerate(optimizer.variables)}
    values: dict[int, np.ndarray] = {}
    used: set[str] = set()
    for slot_name, pairs in optimizer.slots().items():
        prefix = prefixes[slot_name]
        for variable, slot in pairs:
            network = owners[id(variable)]
            weight = dfl_weight_name(variable.path, network, spec)
            name = f"{prefix}_{spec.dfl_scopes.get(network, network)}/{weight}_0"
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
