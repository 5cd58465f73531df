"""Helpers shared by the test files and by the backend checks' child processes
(tests/backend_checks.py): tensors as numpy, a model's tiny options from its own option table,
random batches, a training setup on the DFL-made fixture faceset, and the runner's events."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from dfl import backend

backend.select(None)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from dfl.data.faceset import load_faceset  # noqa: E402
from dfl.models import registry  # noqa: E402
from dfl.models.contract import ModelSpec  # noqa: E402
from dfl.options import resolve_options  # noqa: E402
from dfl.store.model_store import ModelStore  # noqa: E402
from dfl.training.events import Command, Error, Event, Step  # noqa: E402
from dfl.training.runner import TrainingRunner  # noqa: E402
from dfl.training.trainer import Trainer, TrainingSetup  # noqa: E402

FACESET = Path(__file__).parent / "data" / "dfl-faceset"
MASK_THRESHOLD = 0.4  # random masks: about 60 % of the pixels are face
EXTRA_MASK_THRESHOLD = 0.8  # AMP's eye-and-mouth masks: about 20 % of the pixels
EVENT_TIMEOUT_S = 120  # a tiny model's events come within seconds; this only stops a hang


def to_np(x: Any, dtype: Any = None) -> np.ndarray:
    """A tensor or Keras variable of any backend (or an array) as a numpy array."""
    if isinstance(x, keras.Variable):
        x = x.value
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=dtype)


def spec_of(model: str | ModelSpec) -> ModelSpec:
    return registry.load(model) if isinstance(model, str) else model


def tiny_options(model: str | ModelSpec, **extra: Any) -> dict[str, Any]:
    """The options `dfl train` would resolve for `model` from its own option table, with its
    tiny configuration (ModelSpec.tiny_options) and then `extra` on top."""
    spec = spec_of(model)
    table = spec.option_table(None)
    wanted = {**spec.tiny_options, **extra}
    known = {option.name for option in table}
    resolved = resolve_options(table, overrides={k: v for k, v in wanted.items() if k in known})
    # table options come parsed ("y" -> True); the tiny network's own settings as they are
    return {**resolved.options, **{k: v for k, v in wanted.items() if k not in known}}


def random_batch(
    resolution: int,
    batch: int,
    rng: np.random.Generator | int = 0,
    extra_masks: Iterable[str] = (),
) -> dict[str, np.ndarray]:
    """warped_/target_ images and mask_ (plus each of `extra_masks`, e.g. "em") for both sides."""
    rng = np.random.default_rng(rng) if isinstance(rng, int) else rng
    shape = (batch, resolution, resolution)
    inputs = {}
    for side in ("src", "dst"):
        inputs[f"warped_{side}"] = rng.random((*shape, 3), dtype=np.float32)
        inputs[f"target_{side}"] = rng.random((*shape, 3), dtype=np.float32)
        inputs[f"mask_{side}"] = (rng.random((*shape, 1)) > MASK_THRESHOLD).astype(np.float32)
        for name in extra_masks:
            mask = rng.random((*shape, 1)) > EXTRA_MASK_THRESHOLD
            inputs[f"{name}_{side}"] = mask.astype(np.float32)
    return inputs


def make_setup(
    model: str | ModelSpec,
    folder: Path,
    options: dict[str, Any] | None = None,
    loaded: Any = None,
    seed: int = 1,
) -> TrainingSetup:
    """A trainer's setup on the fixture faceset, one batch worker, on the CPU; `options`
    default to the model's tiny options."""
    spec = spec_of(model)
    return TrainingSetup(
        spec=spec,
        name="tiny",
        store=ModelStore(folder),
        options=dict(options if options is not None else tiny_options(spec)),
        device="cpu",
        backend=keras.backend.backend(),
        src=load_faceset(FACESET / "src").samples,
        dst=load_faceset(FACESET / "dst").samples,
        loaded=loaded,
        seed=seed,
        workers=1,
    )


def run_until(
    runner: TrainingRunner, done: Callable[[Event], bool], commands: Sequence[Command] = ()
) -> list[Event]:
    """The runner's events until `done(event)`; sends `commands[i]` after the i-th Step. An
    Error event fails the test with its message and details."""
    events = []
    pending = list(commands)
    while True:
        event = runner.events.get(timeout=EVENT_TIMEOUT_S)
        events.append(event)
        if isinstance(event, Error):
            raise AssertionError(event.message + "\n" + event.details)
        if isinstance(event, Step) and pending:
            runner.send(pending.pop(0))
        if done(event):
            return events


# --------------------------------------------------------- a trainer's networks, compared
NetworkWeights = dict[str, list[np.ndarray]]


def network_weights(trainer: Trainer) -> NetworkWeights:
    """Every network's weights (after a sync of the step's state), by network name."""
    trainer.step_fn.sync()
    return {name: [to_np(w).copy() for w in net.weights] for name, net in trainer.networks.items()}


def changed_networks(before: NetworkWeights, after: NetworkWeights) -> set[str]:
    """The networks with any weight that differs."""
    return {
        name
        for name in before
        if any(not np.array_equal(a, b) for a, b in zip(before[name], after[name], strict=True))
    }


def owning_networks(trainer: Trainer, variables: Iterable[Any]) -> set[str]:
    """The names of the trainer's networks that hold any of `variables`: which networks a loss
    group trains, read from the group itself (no step compiled)."""
    ids = {id(v) for v in variables}
    return {name for name, net in trainer.networks.items() if ids & {id(w) for w in net.weights}}
