"""A saved tiny model for the end-to-end tests that need a model, not its training: the
registry's tiny size with fresh weights, saved as a dfl model folder `<name>_<type>` (a real
Quick96 takes ~35 s to build and step on 2 cores)."""

from __future__ import annotations

from pathlib import Path

TINY_ITERATION = 3


def save_tiny_model(
    model_dir: Path, name: str, model_type: str = "Quick96", facesets: dict | None = None
) -> Path:
    """Save `<model_dir>/<name>_<model_type>`; returns the folder. `facesets`: the faces it
    was "trained" on (dfl.data.facesetid.identities). Imports Keras (backend: KERAS_BACKEND or
    TensorFlow)."""
    from dfl import backend

    backend.select(None)
    backend.import_keras()
    from dfl.models.registry import load
    from dfl.options import complete_options
    from dfl.store.checkpoint_state import ModelState
    from dfl.store.model_store import ModelStore
    from dfl.store.weights import weights_to_arrays

    spec = load(model_type)
    options = complete_options(spec.option_table(None), dict(spec.tiny_options))
    model = spec.build(options)
    arrays = {key: weights_to_arrays(net.weights) for key, net in model.networks.items()}
    state = ModelState(
        model_type=model_type,
        name=name,
        iteration=TINY_ITERATION,
        options=options,
        facesets=dict(facesets or {}),
    )
    folder = Path(model_dir) / f"{name}_{model_type}"
    ModelStore(folder).save(state, arrays, summary_text="", loss_rows=0)
    return folder
