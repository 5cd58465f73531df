"""Training step on the TensorFlow backend: GradientTape in a tf.function (no XLA by default)."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf


class TrainStep:
    """One optimizer step per call; losses come back as Python floats.

    A step whose loss is not finite changes nothing (weights, optimizer state) and returns it.
    """

    def __init__(self, model: Any, compute_losses: Any, optimizer: Any, jit_compile: bool = False):
        self.model = model
        self.optimizer = optimizer
        variables = list(model.trainable_variables)
        if not optimizer.built:
            optimizer.build(variables)

        def losses_of(inputs: dict, training: bool) -> dict:
            return compute_losses(model(inputs, training=training), inputs)

        @tf.function(jit_compile=jit_compile)
        def step(inputs: dict) -> dict:
            with tf.GradientTape() as tape:
                losses = losses_of(inputs, True)
            grads = tape.gradient(losses["loss"], variables)

            def apply() -> tf.Tensor:
                optimizer.apply(grads, variables)
                return tf.constant(True)

            # a non-finite loss leaves weights and optimizer state untouched (decision 15)
            tf.cond(tf.math.is_finite(losses["loss"]), apply, lambda: tf.constant(False))
            return losses

        @tf.function(jit_compile=jit_compile)
        def evaluate(inputs: dict) -> dict:
            return losses_of(inputs, False)

        self._step = step
        self._evaluate = evaluate

    @staticmethod
    def _tensors(inputs: dict[str, np.ndarray]) -> dict[str, tf.Tensor]:
        return {k: tf.convert_to_tensor(v, dtype=tf.float32) for k, v in inputs.items()}

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, float]:
        losses = self._step(self._tensors(inputs))
        return {k: float(v) for k, v in losses.items()}

    def evaluate(self, inputs: dict[str, np.ndarray]) -> dict[str, float]:
        losses = self._evaluate(self._tensors(inputs))
        return {k: float(v) for k, v in losses.items()}

    def sync(self) -> None:
        """Nothing to do: the step updates the Keras variables in place."""

    def refresh(self) -> None:
        """Nothing to do: the step reads the Keras variables directly."""


def make_train_step(model: Any, compute_losses: Any, optimizer: Any) -> TrainStep:
    return TrainStep(model, compute_losses, optimizer)
