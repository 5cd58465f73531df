"""Training step on the JAX backend: jax.jit over stateless_call + optimizer.stateless_apply.

Several devices: `data_parallel(n)` sets a one-axis device mesh for the steps made inside. Their
state (weights, optimizer slots) is replicated on every device and each batch is sharded along
its first axis; the jitted step keeps its one-device meaning (the loss is the sum over the whole
batch), so XLA partitions it and sums the gradients across devices.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

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

    def inputs(self, inputs: dict[str, np.ndarray], split: bool = True) -> dict[str, jax.Array]:
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


class TrainStep:
    """One optimizer step per call; the model and optimizer state lives here between steps.

    A step whose loss is not finite changes nothing (weights, optimizer state) and returns it.

    Call `sync()` before reading the Keras variables (saving, previews) and `refresh()` after
    changing them (loading weights).
    """

    def __init__(self, model: Any, compute_losses: Any, optimizer: Any):
        self.model = model
        self.optimizer = optimizer
        self._placement = Placement()
        self.devices = self._placement.devices
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

        self._step = self._placement.jit(step, donate=True)
        self._evaluate = self._placement.jit(evaluate)
        self.refresh()

    def refresh(self) -> None:
        """Copy the Keras variables into the step's state (the step donates its own buffers)."""
        place = self._placement.state
        self._state = (
            place([v.value for v in self.model.trainable_variables]),
            place([v.value for v in self.model.non_trainable_variables]),
            place([v.value for v in self.optimizer.variables]),
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
                variable.assign(self._placement.variable(value))

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, float]:
        losses, self._state = self._step(self._state, self._placement.inputs(inputs))
        return {k: float(v) for k, v in losses.items()}

    def evaluate(self, inputs: dict[str, np.ndarray]) -> dict[str, float]:
        losses = self._evaluate(self._state, self._placement.inputs(inputs, split=False))
        return {k: float(v) for k, v in losses.items()}


def make_train_step(model: Any, compute_losses: Any, optimizer: Any) -> TrainStep:
    return TrainStep(model, compute_losses, optimizer)
