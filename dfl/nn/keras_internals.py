"""The only place dfl touches Keras internals (names starting with `_`), each wrapped here.

Checked against Keras 3.15.1. After a Keras upgrade run tests/test_optimizers.py,
tests/test_precision.py, tests/test_export.py and tests/test_bench.py: they exercise every
function below. Why the public API is not enough, per function:

- `sublayers`: Keras 3 has no public recursive layer walk (`Model.layers` is one level deep and
  skips nested layers of subclassed layers); bf16 fallback and FLOP counts need every layer.
- `built_input_shape`: a built layer keeps its input shape only in `_build_shapes_dict`; the
  FLOP estimate needs each conv's input size.
- `producer`: the functional graph (`_keras_history`, `_inbound_nodes`) is what the .dfm
  exporter walks; Keras exposes no public graph traversal of a functional model.
- `HookedOptimizer`: DFL's optimizers change what happens around each update (learning-rate
  dropout masks, the lr_cos schedule, global clipping). Keras's Optimizer only offers
  `update_step` per variable publicly; `_backend_update_step` and `_clip_gradients` are the hooks
  around it, `_track_variable` registers an extra state variable (the dropout seed), and
  `_get_variable_index` finds a variable's slots.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras


def sublayers(model: Any, include_self: bool = False) -> Iterator[Any]:
    """Every layer inside `model`, at any depth (and `model` itself with include_self)."""
    return model._flatten_layers(include_self=include_self, recursive=True)


def built_input_shape(layer: Any) -> tuple:
    """The input shape a built layer was built for."""
    return tuple(layer._build_shapes_dict["input_shape"])


def producer(tensor: Any) -> tuple[Any, Any] | None:
    """(operation, node) that made a functional Keras tensor; None for any other tensor. The
    node's `input_tensors` and `output_tensors` are public."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    operation, node_index, _ = history
    return operation, operation._inbound_nodes[node_index]


class HookedOptimizer(keras.optimizers.Optimizer):
    """A Keras optimizer with public hooks around each update: `begin_update(variables)` and
    `end_update()` bracket it, `scheduled_lr(lr)` changes the learning rate it uses and
    `clip_gradients(grads)` replaces Keras's clipping."""

    def begin_update(self, trainable_variables: list) -> None:
        """Called before the variables of one step are updated."""

    def end_update(self) -> None:
        """Called after they were (also when the update failed)."""

    def scheduled_lr(self, learning_rate: Any) -> Any:
        return learning_rate

    def clip_gradients(self, grads: list) -> list:
        return super()._clip_gradients(grads)

    def track(self, variable: Any) -> None:
        """Save and restore `variable` with the optimizer's own variables."""
        self._track_variable(variable)

    def variable_index(self, variable: Any) -> int:
        """The index of a trained variable in the slot lists (add_optimizer_variables)."""
        return self._get_variable_index(variable)

    def _clip_gradients(self, grads: list) -> list:
        return self.clip_gradients(grads)

    def _backend_update_step(self, grads: list, trainable_variables: list, learning_rate: Any):
        self.begin_update(trainable_variables)
        try:
            return super()._backend_update_step(
                grads, trainable_variables, self.scheduled_lr(learning_rate)
            )
        finally:
            self.end_update()
