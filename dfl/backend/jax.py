"""Training step on the JAX backend: jax.jit over the loss groups, each evaluated statelessly and
applied with its optimizer's stateless_apply.

Several devices: `data_parallel(n)` sets a one-axis device mesh for the steps made inside. Their
state (weights, optimizer slots) is replicated on every device and each batch is sharded along
its first axis; XLA partitions the jitted step. The objective differentiated is the sum over the
whole batch divided by the number of devices: the mean of the devices' gradients of their own
part's sum, which is what DFL applies (average_gv_list; docs/training.md, "Several GPUs").
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from dfl.backend.step import LOSS_KEY, LossGroup, StepBase, unique

BATCH_AXIS = "batch"
_meshes: list[Mesh] = []  # the mesh of the innermost data_parallel, if any


def data_parallel(n: int) -> Callable[[], contextlib.AbstractContextManager]:
    """A scope in which made steps run on the first `n` devices of JAX's default platform."""
    from dfl.backend import CPU_DEVICES_ENV, BackendError

    devices = jax.devices()
    if len(devices) < n:
        hint = f" (set {CPU_DEVICES_ENV} to split the CPU)" if devices[0].platform == "cpu" else ""
        raise BackendError(f"{n} devices asked for, but JAX sees {len(devices)}{hint}")
    mesh = Mesh(np.array(devices[:n]), (BATCH_AXIS,))
    return lambda: _using(mesh)


@contextlib.contextmanager
def _using(mesh: Mesh) -> Iterator[Mesh]:
    _meshes.append(mesh)
    try:
        yield mesh
    finally:
        _meshes.pop()


class Placement:
    """Where a step's state and inputs live: the default device, or replicated state and a
    batch sharded over the mesh of the enclosing data_parallel."""

    def __init__(self) -> None:
        self.mesh = _meshes[-1] if _meshes else None
        self.devices = 1 if self.mesh is None else self.mesh.size
        if self.mesh is not None:
            self._replicated = NamedSharding(self.mesh, PartitionSpec())
            self._batch = NamedSharding(self.mesh, PartitionSpec(BATCH_AXIS))
            self._first = self.mesh.devices.flat[0]

    def jit(self, fn: Callable, donate: bool = False) -> Callable:
        """jax.jit; on a mesh every output (losses, new state) stays replicated."""
        donate_argnums = (0,) if donate else ()
        if self.mesh is None:
            return jax.jit(fn, donate_argnums=donate_argnums)
        return jax.jit(fn, donate_argnums=donate_argnums, out_shardings=self._replicated)

    def state(self, values: list) -> list:
        """Fresh device copies of Keras variable values (the step donates its own buffers)."""
        copies = [jnp.array(v, copy=True) for v in values]
        return copies if self.mesh is None else jax.device_put(copies, self._replicated)

    def variable(self, value: jax.Array) -> jax.Array:
        """A copy of a state value for a Keras variable: on one device, so that eager Keras
        calls (previews) can mix it with arrays made there; never a donated buffer."""
        copy = jnp.array(value, copy=True)
        return copy if self.mesh is None else jax.device_put(copy, self._first)

    def inputs(self, inputs: Mapping[str, np.ndarray], split: bool = True) -> dict[str, jax.Array]:
        """The batch as float32 arrays; on a mesh, split evenly along the first axis (or, with
        split=False, whole on every device: evaluation takes any batch size)."""
        from dfl.backend import BackendError

        arrays = {k: np.asarray(v, dtype=np.float32) for k, v in inputs.items()}
        if self.mesh is None:
            return {k: jnp.asarray(v) for k, v in arrays.items()}
        if not split:
            return jax.device_put(arrays, self._replicated)
        for key, value in arrays.items():
            if value.ndim == 0 or value.shape[0] % self.devices:
                raise BackendError(
                    f"input {key} of shape {value.shape} does not split evenly across "
                    f"{self.devices} devices"
                )
        return jax.device_put(arrays, self._batch)


class Step(StepBase):
    """jax.jit over the groups: each group's loss is evaluated statelessly (keras.StatelessScope
    over every variable of `models`), differentiated w.r.t. its own variables only, and applied
    with its optimizer's stateless_apply. The state (weights, optimizer slots) lives here
    between steps and its buffers are donated to each step: call `sync()` before reading the
    Keras variables (saving, previews) and `refresh()` after changing them (loading weights)."""

    def __init__(self, groups: Sequence[LossGroup], models: Sequence[Any]):
        super().__init__(groups, models)
        self._placement = Placement()  # one device, or the mesh of an enclosing data_parallel
        self.devices = self._placement.devices
        self._variables = unique(
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

    def _group_step(self, gi: int, values: list, opt_values: list, inputs: dict) -> tuple:
        """One group's pass: (losses, all values after it, its optimizer's new values)."""
        group, idx = self.groups[gi], self._group_index[gi]

        def objective(trainable: list) -> tuple:
            full = list(values)
            for i, value in zip(idx, trainable, strict=True):
                full[i] = value
            losses, updated = self._losses(gi, full, inputs, True)
            # n devices: DFL averages the per-device gradients (the reported loss stays whole)
            return losses[LOSS_KEY] / self.devices, (losses, updated)

        trainable = [values[i] for i in idx]
        (loss, (losses, updated)), grads = jax.value_and_grad(objective, has_aux=True)(trainable)

        def apply() -> tuple:
            new_t, new_o = group.optimizer.stateless_apply(opt_values, grads, trainable)
            return list(new_t), list(new_o)

        def keep() -> tuple:
            return list(trainable), list(opt_values)

        # a non-finite objective leaves this group untouched (decision 15)
        new_t, new_o = jax.lax.cond(jnp.isfinite(loss), apply, keep)
        after = list(updated)
        for i, value in zip(idx, new_t, strict=True):
            after[i] = value
        return losses, after, new_o

    def _make_step(self, selected: tuple[int, ...]) -> Any:
        def step(state: tuple, inputs: dict) -> tuple:
            values, opt_values = state
            values, opt_values = list(values), [list(o) for o in opt_values]
            out = []
            for gi in selected:  # each group sees the weights the previous one updated
                losses, values, opt_values[gi] = self._group_step(
                    gi, values, opt_values[gi], inputs
                )
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

    def __call__(
        self, inputs: Mapping[str, np.ndarray], groups: Sequence[str] | None = None
    ) -> dict[str, float]:
        selected = self.select(groups)
        if selected not in self._steps:
            self._steps[selected] = self._make_step(selected)
        out, self._state = self._steps[selected](self._state, self._placement.inputs(inputs))
        return self.report(selected, out)

    def evaluate(
        self, inputs: Mapping[str, np.ndarray], groups: Sequence[str] | None = None
    ) -> dict[str, float]:
        selected = self.select(groups)
        if selected not in self._evals:
            self._evals[selected] = self._make_eval(selected)
        arrays = self._placement.inputs(inputs, split=False)
        return self.report(selected, self._evals[selected](self._state, arrays))


def make_step(groups: Sequence[LossGroup], models: Sequence[Any]) -> Step:
    return Step(groups, models)
