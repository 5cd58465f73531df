"""Training step on the JAX backend: jax.jit over stateless_call + optimizer.stateless_apply."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


class TrainStep:
    """One optimizer step per call; the model and optimizer state lives here between steps.

    A step whose loss is not finite changes nothing (weights, optimizer state) and returns it.

    Call `sync()` before reading the Keras variables (saving, previews) and `refresh()` after
    changing them (loading weights).
    """

    def __init__(self, model: Any, compute_losses: Any, optimizer: Any):
        self.model = model
        self.optimizer = optimizer
        if not optimizer.built:
            optimizer.build(model.trainable_variables)

        def loss_and_aux(trainable: list, non_trainable: list, inputs: dict, training: bool):
            outputs, non_trainable = model.stateless_call(
                trainable, non_trainable, inputs, training=training
            )
            losses = compute_losses(outputs, inputs)
            return losses["loss"], (losses, non_trainable)

        grad_fn = jax.value_and_grad(loss_and_aux, has_aux=True)

        def step(state: tuple, inputs: dict) -> tuple:
            trainable, non_trainable, opt_vars = state
            (loss, (losses, non_trainable)), grads = grad_fn(trainable, non_trainable, inputs, True)
            # a non-finite loss leaves weights and optimizer state untouched (decision 15)
            trainable, opt_vars = jax.lax.cond(
                jnp.isfinite(loss),
                lambda: tuple(optimizer.stateless_apply(opt_vars, grads, trainable)),
                lambda: (list(trainable), list(opt_vars)),
            )
            return losses, (trainable, non_trainable, opt_vars)

        def evaluate(state: tuple, inputs: dict) -> dict:
            trainable, non_trainable, _ = state
            _, (losses, _) = loss_and_aux(trainable, non_trainable, inputs, False)
            return losses

        self._step = jax.jit(step, donate_argnums=0)
        self._evaluate = jax.jit(evaluate)
        self.refresh()

    def refresh(self) -> None:
        """Copy the Keras variables into the step's state (the step donates its own buffers)."""
        self._state = (
            [jnp.array(v.value, copy=True) for v in self.model.trainable_variables],
            [jnp.array(v.value, copy=True) for v in self.model.non_trainable_variables],
            [jnp.array(v.value, copy=True) for v in self.optimizer.variables],
        )

    def sync(self) -> None:
        """Write the step's state back into the Keras variables (copies, so steps can go on)."""
        trainable, non_trainable, opt_vars = self._state
        for variables, values in (
            (self.model.trainable_variables, trainable),
            (self.model.non_trainable_variables, non_trainable),
            (self.optimizer.variables, opt_vars),
        ):
            for variable, value in zip(variables, values, strict=True):
                variable.assign(jnp.array(value, copy=True))

    @staticmethod
    def _arrays(inputs: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        return {k: jnp.asarray(v, dtype=jnp.float32) for k, v in inputs.items()}

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, float]:
        losses, self._state = self._step(self._state, self._arrays(inputs))
        return {k: float(v) for k, v in losses.items()}

    def evaluate(self, inputs: dict[str, np.ndarray]) -> dict[str, float]:
        losses = self._evaluate(self._state, self._arrays(inputs))
        return {k: float(v) for k, v in losses.items()}


def make_train_step(model: Any, compute_losses: Any, optimizer: Any) -> TrainStep:
    return TrainStep(model, compute_losses, optimizer)
