"""Training step on the torch backend: autograd in eager mode, per loss group w.r.t. its own
variables; the Keras optimizer applies the gradients under no_grad."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from keras import ops

from dfl.backend.step import LOSS_KEY, LossGroup, StepBase


def tensors(inputs: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: ops.convert_to_tensor(v, dtype="float32") for k, v in inputs.items()}


class Step(StepBase):
    """The loss groups in order, eagerly: torch.autograd.grad of each group's objective w.r.t.
    its own variables only, then its optimizer's apply. torch trains on one device
    (dfl.backend.data_parallel refuses several)."""

    def __call__(
        self, inputs: Mapping[str, np.ndarray], groups: Sequence[str] | None = None
    ) -> dict[str, float]:
        selected = self.select(groups)
        placed = tensors(inputs)
        out = []
        for gi in selected:  # each group sees the weights the previous one updated
            group = self.groups[gi]
            variables = list(group.variables)
            losses = dict(group.compute(placed, True))
            grads = torch.autograd.grad(
                losses[LOSS_KEY], [v.value for v in variables], allow_unused=True
            )
            losses = {k: v.detach() for k, v in losses.items()}
            # a non-finite objective leaves this group untouched (decision 15)
            if math.isfinite(float(losses[LOSS_KEY])):
                with torch.no_grad():
                    group.optimizer.apply(list(grads), variables)
            out.append(losses)
        return self.report(selected, out)

    def evaluate(
        self, inputs: Mapping[str, np.ndarray], groups: Sequence[str] | None = None
    ) -> dict[str, float]:
        selected = self.select(groups)
        placed = tensors(inputs)
        with torch.no_grad():
            out = [dict(self.groups[gi].compute(placed, False)) for gi in selected]
        return self.report(selected, out)


def make_step(groups: Sequence[LossGroup], models: Sequence[Any]) -> Step:
    return Step(groups, models)
