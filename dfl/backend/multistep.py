"""Prototype: one training step over several loss groups, each with its own variables and optimizer.

SAEHD trains up to three objectives per iteration (numerics §4): the generator (encoder, inters,
decoders), then the 'true face' code discriminator, then the patch-GAN discriminator. Each is its
own gradient pass that sees the weights the previous one just updated, as DFL's separate graph
executions do. A group changes only its own variables and its own optimizer's state.

    groups = [
        LossGroup("generator", ae.trainable_variables, g_opt, g_losses),
        LossGroup("gan_discriminator", gan.trainable_variables, gan_opt, gan_losses),
    ]
    step = make_multi_step(groups, models=[ae, gan])
    result = step(inputs)                    # every group, in order
    result = step(inputs, groups=("gan_discriminator",))   # a subset, still in list order

`LossGroup.compute(inputs, training)` runs whatever forward passes it needs (it may call any
model in `models`) and returns a dict of scalar tensors with the objective under "loss". The step
returns Python floats: each group's "loss" as "<name>_loss" and its other keys as they are (they
must not collide across groups). A group whose objective is not finite changes nothing (its
weights and optimizer state stay as they were); later groups still run.

The TensorFlow, JAX and torch implementations live here for now; each belongs in its backend
module (`dfl/backend/<name>.py: make_multi_step`), where the single-optimizer TrainStep becomes
the one-group case.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

Losses = Mapping[str, Any]


@dataclass(frozen=True)
class LossGroup:
    """One objective: `compute(inputs, training) -> {"loss": scalar, ...}` trains `variables`
    with `optimizer` (built on exactly these variables, in this order)."""

    name: str
    variables: Sequence[Any]
    optimizer: Any
    compute: Callable[[dict, bool], Losses]


def _unique(variables: Sequence[Any]) -> list[Any]:
    seen: set[int] = set()
    out = []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


class _MultiStepBase:
    devices = 1  # how many devices each batch is split across (see dfl.backend.data_parallel)

    def __init__(self, groups: Sequence[LossGroup], models: Sequence[Any]):
        names = [g.name for g in groups]
        if len(set(names)) != len(names):
            raise ValueError(f"loss group names must be unique, got {names}")
        self.groups = tuple(groups)
        self.models = tuple(models)
        for group in self.groups:
            group_vars = list(group.variables)
            if not group_vars:
                raise ValueError(f"loss group {group.name!r} has no variables")
            if not group.optimizer.built:
                group.optimizer.build(group_vars)
        owners: dict[int, str] = {}
        for group in self.groups:
            for v in group.variables:
                if id(v) in owners:
                    raise ValueError(
                        f"variable {v.path} is trained by both {owners[id(v)]!r} and "
                        f"{group.name!r}: each variable belongs to one loss group"
                    )
                owners[id(v)] = group.name

    def _select(self, groups: Sequence[str] | None) -> tuple[int, ...]:
        if groups is None:
            return tuple(range(len(self.groups)))
        known = [g.name for g in self.groups]
        unknown = [n for n in groups if n not in known]
        if unknown:
            raise ValueError(f"unknown loss group(s) {unknown}: choose from {known}")
        return tuple(i for i, name in enumerate(known) if name in groups)

    def _report(self, selected: tuple[int, ...], per_group: Sequence[Losses]) -> dict[str, float]:
        result: dict[str, float] = {}
        for i, losses in zip(selected, per_group, strict=True):
            name = self.groups[i].name
            for key, value in losses.items():
                out = f"{name}_loss" if key == "loss" else key
                if out in result:
                    raise ValueError(f"loss key {out!r} of group {name!r} is reported twice")
                result[out] = float(value)
        return result

    def sync(self) -> None:
        """Nothing to do unless the step keeps state outside the Keras variables (JAX)."""

    def refresh(self) -> None:
        """Nothing to do unless the step keeps state outside the Keras variables (JAX)."""


# ------------------------------------------------------------------------------------ TensorFlow
class TensorFlowMultiStep(_MultiStepBase):
    """GradientTape per group inside one tf.function per selection of groups. Made inside
    dfl.backend.data_parallel(n), every group's pass runs on the n replicas (see
    dfl.backend.tensorflow: the batch is split, gradients summed, then applied once)."""

    def __init__(self, groups: Sequence[LossGroup], models: Sequence[Any], jit_compile=False):
        from dfl.backend.tensorflow import Replicas

        super().__init__(groups, models)
        self._jit_compile = jit_compile
        self._replicas = Replicas.current()
        self.devices = 1 if self._replicas is None else self._replicas.count
        self._steps: dict[tuple[int, ...], Any] = {}
        self._evals: dict[tuple[int, ...], Any] = {}

    def _make_step(self, selected: tuple[int, ...]) -> Any:
        import tensorflow as tf

        from dfl.backend.tensorflow import LOSS_KEY, apply_if_finite

        groups = [self.groups[i] for i in selected]
        replicas = self._replicas

        def grads_of(group: LossGroup, variables: list) -> Callable[[dict], tuple[dict, list]]:
            def run(inputs: dict) -> tuple[dict, list]:
                with tf.GradientTape() as tape:
                    losses = dict(group.compute(inputs, True))
                return losses, tape.gradient(losses[LOSS_KEY], variables)

            return run

        @tf.function(jit_compile=self._jit_compile)
        def step(inputs: Any) -> list:
            out = []
            for group in groups:  # each group sees the weights the previous one updated
                variables = list(group.variables)
                run = grads_of(group, variables)
                if replicas is None:
                    losses, grads = run(inputs)
                else:
                    losses, grads = replicas.gradients(run, inputs, len(variables))
                # a non-finite objective leaves this group untouched (decision 15)
                apply_if_finite(group.optimizer, losses[LOSS_KEY], grads, variables)
                out.append(losses)
            return out

        return step

    def _make_eval(self, selected: tuple[int, ...]) -> Any:
        import tensorflow as tf

        groups = [self.groups[i] for i in selected]

        @tf.function(jit_compile=self._jit_compile)
        def evaluate(inputs: dict) -> list:
            return [dict(group.compute(inputs, False)) for group in groups]

        return evaluate

    @staticmethod
    def _tensors(inputs: Mapping[str, np.ndarray]) -> dict:
        import tensorflow as tf

        return {k: tf.convert_to_tensor(v, dtype=tf.float32) for k, v in inputs.items()}

    def __call__(self, inputs: Mapping[str, np.ndarray], groups=None) -> dict[str, float]:
        selected = self._select(groups)
        if selected not in self._steps:
            self._steps[selected] = self._make_step(selected)
        placed = self._tensors(inputs) if self._replicas is None else self._replicas.split(inputs)
        return self._report(selected, self._steps[selected](placed))

    def evaluate(self, inputs: Mapping[str, np.ndarray], groups=None) -> dict[str, float]:
        selected = self._select(groups)
        if selected not in self._evals:
            self._evals[selected] = self._make_eval(selected)
        return self._report(selected, self._evals[selected](self._tensors(inputs)))


# ------------------------------------------------------------------------------------------- JAX
class JaxMultiStep(_MultiStepBase):
    """jax.jit over the groups: each group's loss is evaluated statelessly (keras.StatelessScope
    over every variable of `models`), differentiated w.r.t. its own variables only, and applied
    with its optimizer's stateless_apply. The state lives here between steps: call sync() before
    reading the Keras variables and refresh() after changing them."""

    def __init__(self, groups: Sequence[LossGroup], models: Sequence[Any]):
        from dfl.backend.jax import Placement

        super().__init__(groups, models)
        self._placement = Placement()  # one device, or the mesh of an enclosing data_parallel
        self.devices = self._placement.devices
        self._variables = _unique(
            [v for m in self.models for v in m.variables]
            + [v for g in self.groups for v in g.variables]
        )
        index = {id(v): i for i, v in enumerate(self._variables)}
        self._group_index = [[index[id(v)] for v in g.variables] for g in self.groups]
        self._steps: dict[tuple[int, ...], Any] = {}
        self._evals: dict[tuple[int, ...], Any] = {}
        self.refresh()

    def _losses(self, gi: int, values: list, inputs: dict, training: bool) -> tuple[Any, list]:
        """Group gi's losses with every variable read from `values`; also the values after any
        assignment the forward pass made (non-trainable state)."""
        mapping = list(zip(self._variables, values, strict=True))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            losses = dict(self.groups[gi].compute(inputs, training))
        updated = []
        for variable, value in zip(self._variables, values, strict=True):
            current = scope.get_current_value(variable)
            updated.append(value if current is None else current)
        return losses, updated

    def _make_step(self, selected: tuple[int, ...]) -> Any:
        import jax
        import jax.numpy as jnp

        def step(state: tuple, inputs: dict) -> tuple:
            values, opt_values = state
            values, opt_values = list(values), [list(o) for o in opt_values]
            out = []
            for gi in selected:
                group, idx = self.groups[gi], self._group_index[gi]

                def objective(trainable: list, values: list = values, gi=gi, idx=idx) -> tuple:
                    full = list(values)
                    for i, value in zip(idx, trainable, strict=True):
                        full[i] = value
                    losses, updated = self._losses(gi, full, inputs, True)
                    return losses["loss"], (losses, updated)

                trainable = [values[i] for i in idx]
                (loss, (losses, updated)), grads = jax.value_and_grad(objective, has_aux=True)(
                    trainable
                )

                def apply(group=group, grads=grads, trainable=trainable, gi=gi) -> tuple:
                    new_t, new_o = group.optimizer.stateless_apply(opt_values[gi], grads, trainable)
                    return list(new_t), list(new_o)

                def keep(trainable=trainable, gi=gi) -> tuple:
                    return list(trainable), list(opt_values[gi])

                # a non-finite objective leaves this group untouched (decision 15)
                new_t, new_o = jax.lax.cond(jnp.isfinite(loss), apply, keep)
                values = list(updated)
                for i, value in zip(idx, new_t, strict=True):
                    values[i] = value
                opt_values[gi] = new_o
                out.append(losses)
            return out, (values, opt_values)

        return self._placement.jit(step, donate=True)

    def _make_eval(self, selected: tuple[int, ...]) -> Any:
        def evaluate(state: tuple, inputs: dict) -> list:
            values, _ = state
            return [self._losses(gi, list(values), inputs, False)[0] for gi in selected]

        return self._placement.jit(evaluate)

    def refresh(self) -> None:
        """Copy the Keras variables into the step's state (the step donates its own buffers)."""
        place = self._placement.state
        self._state = (
            place([v.value for v in self._variables]),
            [place([v.value for v in g.optimizer.variables]) for g in self.groups],
        )

    def sync(self) -> None:
        """Write the step's state back into the Keras variables (copies, so steps can go on)."""

        values, opt_values = self._state
        for variable, value in zip(self._variables, values, strict=True):
            variable.assign(self._placement.variable(value))
        for group, group_values in zip(self.groups, opt_values, strict=True):
            for variable, value in zip(group.optimizer.variables, group_values, strict=True):
                variable.assign(self._placement.variable(value))

    def __call__(self, inputs: Mapping[str, np.ndarray], groups=None) -> dict[str, float]:
        selected = self._select(groups)
        if selected not in self._steps:
            self._steps[selected] = self._make_step(selected)
        out, self._state = self._steps[selected](self._state, self._placement.inputs(inputs))
        return self._report(selected, out)

    def evaluate(self, inputs: Mapping[str, np.ndarray], groups=None) -> dict[str, float]:
        selected = self._select(groups)
        if selected not in self._evals:
            self._evals[selected] = self._make_eval(selected)
        arrays = self._placement.inputs(inputs, split=False)
        return self._report(selected, self._evals[selected](self._state, arrays))


# ----------------------------------------------------------------------------------------- torch
class TorchMultiStep(_MultiStepBase):
    """Eager autograd: per group, torch.autograd.grad w.r.t. its own variables only."""

    @staticmethod
    def _tensors(inputs: Mapping[str, np.ndarray]) -> dict:
        from keras import ops

        return {k: ops.convert_to_tensor(v, dtype="float32") for k, v in inputs.items()}

    def __call__(self, inputs: Mapping[str, np.ndarray], groups=None) -> dict[str, float]:
        import torch

        selected = self._select(groups)
        tensors = self._tensors(inputs)
        out = []
        for gi in selected:
            group = self.groups[gi]
            variables = list(group.variables)
            losses = dict(group.compute(tensors, True))
            grads = torch.autograd.grad(
                losses["loss"], [v.value for v in variables], allow_unused=True
            )
            losses = {k: v.detach() for k, v in losses.items()}
            # a non-finite objective leaves this group untouched (decision 15)
            if math.isfinite(float(losses["loss"])):
                with torch.no_grad():
                    group.optimizer.apply(list(grads), variables)
            out.append(losses)
        return self._report(selected, out)

    def evaluate(self, inputs: Mapping[str, np.ndarray], groups=None) -> dict[str, float]:
        import torch

        selected = self._select(groups)
        tensors = self._tensors(inputs)
        with torch.no_grad():
            out = [dict(self.groups[gi].compute(tensors, False)) for gi in selected]
        return self._report(selected, out)


_STEPS = {"tensorflow": TensorFlowMultiStep, "jax": JaxMultiStep, "torch": TorchMultiStep}


def make_multi_step(groups: Sequence[LossGroup], models: Sequence[Any]) -> _MultiStepBase:
    """The multi-group step for the loaded Keras backend. `models`: every network whose
    variables any group's compute reads (JAX evaluates them statelessly)."""
    name = keras.backend.backend()
    if name not in _STEPS:
        raise ValueError(f"Keras backend {name!r} is not supported: use one of {tuple(_STEPS)}")
    return _STEPS[name](groups, models)
