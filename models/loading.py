"""A saved model's networks with their trained weights: for export and merging.

Keras must be imported (with the backend and device chosen) before `load_saved_model` is called.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfl.store.checkpoint_state import StateError
from dfl.store.model_store import ModelStore
from dfl.store.weights import WeightsMismatchError, assign_arrays


class SavedModelError(StateError):
    """The saved model cannot be built with its weights; the message says why."""


@dataclass(frozen=True)
class SavedModel:
    """A saved model's networks with their trained weights, ready to export or merge."""

    model_type: str
    name: str
    iteration: int
    folder: Path
    networks: Mapping[str, Any]
    options: Mapping[str, Any] = field(default_factory=dict)
    export_layout: str | None = None  # ModelSpec.export_layout of these options


def load_saved_model(folder: Path | str) -> SavedModel:
    """Build the model of a saved folder (float32) and load its newest whole checkpoint's
    network weights; SavedModelError when a network's weights are missing or do not fit."""
    import keras

    from dfl.models.registry import load as load_spec

    keras.config.set_dtype_policy("float32")  # export and merge compute in float32 (bf16 training)
    folder = Path(folder)
    loaded = ModelStore(folder).load()
    state = loaded.state
    spec = load_spec(state.model_type)
    model = spec.build(state.options)
    networks = dict(model.networks)
    for name, network in networks.items():
        if not loaded.has(name):
            raise SavedModelError(f"{loaded.path} has no weights for {name}")
        try:
            assign_arrays(network.weights, loaded.arrays(name), name)
        except WeightsMismatchError as exc:
            raise SavedModelError(f"cannot load {folder.name}: {exc}") from None
    layout = None if spec.export_layout is None else spec.export_layout(state.options)
    return SavedModel(
        state.model_type, state.name, state.iteration, folder, networks, state.options, layout
    )
