"""How a checkpoint holds an optimizer's state: keyed by the name of the weight it belongs to
(docs/training.md, "Optimizer state across option changes").

Each slot variable (RMSprop's `acc`, AdaBelief's `ms` and `vs`) is stored under
`<trained weight path>/<slot>`, e.g. `encoder/down1/downs_0/conv1/kernel/ms`; the optimizer's
own variables (the iteration counter, the learning rate, the learning-rate dropout seed) under
their path inside the optimizer, e.g. `iteration`. Loading matches by name, so a change of the
trained variable list (lr_dropout toggled, random_warp toggled on liae, pretraining ended) loads
every moment that still applies, as DFL's name-keyed optimizer files do. Checkpoints written
before this format (`<index:04d>/<path>`, dfl.store.weights) still load when the variable list
is unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

COUNTER_KEY = "iteration"  # the optimizer's own step counter (lr_cos reads it)
# not state worth a note: the learning rate is fixed by the options, the dropout seed only
# makes the masks (DFL draws a fresh mask each step)
QUIET_KEYS = ("learning_rate", "lr_dropout_seed/seed_generator_state")
_INDEXED_KEY = re.compile(r"^\d{4}/")  # the format before name keys (dfl.store.weights)


@dataclass
class OptimizerRestore:
    """What loading one optimizer's group did."""

    loaded: int = 0  # slot arrays set from the checkpoint
    started_at_zero: list[str] = field(default_factory=list)  # slot keys with nothing usable
    kept: dict[str, np.ndarray] = field(default_factory=dict)  # slots of weights not trained now
    counter_loaded: bool = False
    whole_reset: str | None = None  # why every variable starts afresh (old format mismatch)

    def note(self, key: str) -> str | None:
        """One line for the user when anything started afresh; None when all was loaded."""
        if self.whole_reset is not None:
            return f"{key}: {self.whole_reset}; its moments and counter start at zero."
        parts = []
        if self.started_at_zero:
            parts.append(
                f"{len(self.started_at_zero)} of {self.loaded + len(self.started_at_zero)} "
                f"moments had none saved and start at zero ({_networks(self.started_at_zero)})"
            )
        if not self.counter_loaded:
            parts.append("its iteration counter had none saved and starts at 0")
        if not parts:
            return None
        return f"{key}: {self.loaded} moments loaded; " + "; ".join(parts) + "."


def _networks(keys: list[str]) -> str:
    """The networks the slot keys belong to, for a note: "inter_AB, decoder"."""
    names = dict.fromkeys(key.split("/", 1)[0] for key in keys)
    return ", ".join(names)


def _slot_pairs(optimizer: Any) -> dict[str, Any]:
    """`<trained weight path>/<slot>` -> slot variable."""
    pairs: dict[str, Any] = {}
    for slot, trained_and_slot in optimizer.slots().items():
        for trained, variable in trained_and_slot:
            key = f"{trained.path}/{slot}"
            if key in pairs:
                raise ValueError(f"two weights of one optimizer share the path {trained.path}")
            pairs[key] = variable
    return pairs


def _own_variables(optimizer: Any, taken: set[int]) -> dict[str, Any]:
    """The optimizer's other variables by their path inside it (`iteration`, ...); the trained
    weights Keras lists among them belong to their networks' groups."""
    skip = taken | {id(v) for v in optimizer.trained_variables}
    prefix = f"{optimizer.name}/"
    own: dict[str, Any] = {}
    for variable in optimizer.variables:
        if id(variable) in skip:
            continue
        path = variable.path
        own[path[len(prefix) :] if path.startswith(prefix) else path] = variable
    return own


def optimizer_to_arrays(optimizer: Any) -> dict[str, np.ndarray]:
    """A built DFL optimizer's state as one array group, keyed by weight name."""
    import keras

    slots = _slot_pairs(optimizer)
    own = _own_variables(optimizer, {id(v) for v in slots.values()})
    return {key: keras.ops.convert_to_numpy(v) for key, v in {**own, **slots}.items()}


def is_indexed(arrays: Mapping[str, np.ndarray]) -> bool:
    """Whether a group was written in the index-keyed format of older checkpoints."""
    return bool(arrays) and all(_INDEXED_KEY.match(key) for key in arrays)


def _assign(variable: Any, value: np.ndarray) -> bool:
    if tuple(value.shape) != tuple(variable.shape):
        return False
    # dtype cast: counters and seed states differ in integer width between backends
    variable.assign(value.astype(variable.dtype))
    return True


def restore_optimizer(optimizer: Any, arrays: Mapping[str, np.ndarray]) -> OptimizerRestore:
    """Set a built optimizer from its saved group; every slot without a saved array of its shape
    stays at zero (reported). Saved slots of weights the optimizer does not train now are
    returned in `kept`, to be saved again (DFL keeps moments of frozen weights)."""
    report = OptimizerRestore()
    if is_indexed(arrays):
        return _restore_indexed(optimizer, arrays)
    slots = _slot_pairs(optimizer)
    own = _own_variables(optimizer, {id(v) for v in slots.values()})
    for key, variable in slots.items():
        value = arrays.get(key)
        if value is not None and _assign(variable, value):
            report.loaded += 1
        else:
            report.started_at_zero.append(key)
    for key, variable in own.items():
        value = arrays.get(key)
        loaded = value is not None and _assign(variable, value)
        if key == COUNTER_KEY:
            report.counter_loaded = loaded
    report.kept = {
        key: value for key, value in arrays.items() if key not in slots and key not in own
    }
    return report


def _restore_indexed(optimizer: Any, arrays: Mapping[str, np.ndarray]) -> OptimizerRestore:
    """The older format: the variables in order, all or nothing. The trained weights Keras
    lists among them are left alone (their networks' groups set them, or start them afresh)."""
    report = OptimizerRestore()
    variables = list(optimizer.variables)
    if len(arrays) != len(variables) or any(
        tuple(arrays[key].shape) != tuple(v.shape)
        for v, key in zip(variables, sorted(arrays), strict=True)
    ):
        report.whole_reset = (
            "saved by an older dfl for another set of trained weights (its state was stored "
            "by position, not by weight name)"
        )
        return report
    trained = {id(v) for v in optimizer.trained_variables}
    for variable, key in zip(variables, sorted(arrays), strict=True):
        if id(variable) not in trained:
            _assign(variable, arrays[key])
    report.loaded = sum(len(pairs) for pairs in optimizer.slots().values())
    report.counter_loaded = True
    return report
