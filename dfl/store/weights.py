"""How a checkpoint holds weights: one array group (one .npz) per network or optimizer, named
by its checkpoint key, plus the fixed preview samples (docs/design.md, "State"). Optimizer
groups are keyed by weight name (dfl.store.optimizer_state); older checkpoints stored them the
way networks are stored.

Inside a network's group, each variable's array is stored under `<index:04d>/<variable path>`:
the index keeps the keys unique and in the variables' order, the path tells a reader what it is.
Loading assigns the sorted keys to the variables in order and refuses any count or shape
mismatch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dfl.store.checkpoint_state import StateError
from dfl.store.losshistory import FILE_NAME as LOSS_HISTORY_FILE

OPTIMIZER_KEY = "optimizer"  # the group of a model's only optimizer (Quick96)
PREVIEW_SAMPLES_KEY = "preview_samples"  # the fixed preview samples (the inputs dict's arrays)
KEY_DIGITS = 4  # "0007/encoder/down1/kernel"

__all__ = [
    "LOSS_HISTORY_FILE",
    "OPTIMIZER_KEY",
    "PREVIEW_SAMPLES_KEY",
    "WeightsMismatchError",
    "assign_arrays",
    "check_fit",
    "weights_to_arrays",
]


class WeightsMismatchError(StateError):
    """A stored array group does not fit the variables it is loaded into."""


def weights_to_arrays(variables: Sequence[Any]) -> dict[str, np.ndarray]:
    """The values of `variables` (Keras variables) as one array group."""
    import keras

    arrays: dict[str, np.ndarray] = {}
    for index, variable in enumerate(variables):
        arrays[f"{index:0{KEY_DIGITS}d}/{variable.path}"] = keras.ops.convert_to_numpy(variable)
    return arrays


def check_fit(variables: Sequence[Any], arrays: Mapping[str, np.ndarray], what: str) -> None:
    """WeightsMismatchError when one array group cannot be assigned to `variables` (count or a
    shape differs); nothing is changed."""
    if len(arrays) != len(variables):
        raise WeightsMismatchError(
            f"saved {what} has {len(arrays)} tensors but the model has {len(variables)}: "
            "the checkpoint was made by a different model version"
        )
    for variable, key in zip(variables, sorted(arrays), strict=True):
        value = arrays[key]
        if tuple(value.shape) != tuple(variable.shape):
            raise WeightsMismatchError(
                f"saved {what} tensor {key} has shape {value.shape}, "
                f"the model expects {tuple(variable.shape)}"
            )


def assign_arrays(variables: Sequence[Any], arrays: Mapping[str, np.ndarray], what: str) -> None:
    """Set `variables` from one array group; WeightsMismatchError (before any is set) when the
    count or a shape differs."""
    check_fit(variables, arrays, what)
    for variable, key in zip(variables, sorted(arrays), strict=True):
        # dtype cast: counters and seed states differ in integer width between backends
        variable.assign(arrays[key].astype(variable.dtype))
