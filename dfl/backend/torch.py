"""Training step on the torch backend: autograd in eager mode, the Keras optimizer under no_grad."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from keras import ops


class TrainStep:
    """One optimizer step per call; losses come back as Python floats.

    A step whose loss is not finite changes nothing (weights, optimizer state) and returns it.
    """

    devices = 1  # torch trains on one device (dfl.backend.data_parallel refuses several)

    def __init__(self, model: Any, compute_losses: Any, optimizer: Any):
        self.model = model
        self.compute_losses = compute_losses
        self.optimizer = optimizer
        self._variables = list(model.trainable_variables)
        if not optimizer.built:
            optimizer.build(self._variables)

    @staticmethod
    def _tensors(inputs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {k: ops.convert_to_tensor(v, dtype="float32") for k, v in inputs.items()}

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, float]:
        tensors = self._tensors(inputs)
        self.model.train()
        for v in self._variables:
            v.value.grad = None
        losses = self.compute_losses(self.model(tensors, training=True), tensors)
        losses["loss"].backward()
        result = {k: float(v.detach()) for k, v in losses.items()}
        # a non-finite loss leaves weights and optimizer state untouched (decision 15)
        if math.isfinite(result["loss"]):
            grads = [v.value.grad for v in self._variables]
            with torch.no_grad():
                self.optimizer.apply(grads, self._variables)
        return result

    def evaluate(self, inputs: dict[str, np.ndarray]) -> dict[str, float]:
        tensors = self._tensors(inputs)
        self.model.eval()
        with torch.no_grad():
            losses = self.compute_losses(self.model(tensors, training=False), tensors)
        return {k: float(v) for k, v in losses.items()}

    def sync(self) -> None:
        """Nothing to do: the step updates the Keras variables in place."""

    def refresh(self) -> None:
        """Nothing to do: the step reads the Keras variables directly."""


def make_train_step(model: Any, compute_losses: Any, optimizer: Any) -> TrainStep:
    return TrainStep(model, compute_losses, optimizer)
