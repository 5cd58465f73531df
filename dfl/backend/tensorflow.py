"""Training step on the TensorFlow backend: a GradientTape per loss group inside one tf.function
(no XLA by default) per selection of groups.

Several devices: `data_parallel(n)` enters a tf.distribute.MirroredStrategy, so the networks and
optimizers built inside have mirrored variables. A step made inside splits each batch across the
replicas (on the host, as DFL does), runs the forward and backward passes with `strategy.run`,
averages the replicas' gradients onto the first device and applies them once, outside any
replica. Each replica's objective is the sum over its part of the batch, so the applied gradient
is the whole batch's sum divided by the number of devices, as DFL's average_gv_list gives
(docs/training.md, "Several GPUs"); global clipnorm and learning-rate dropout see that gradient.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from dfl.backend.step import LOSS_KEY, LossGroup, StepBase


def split_cpu(n: int) -> None:
    """Split the host CPU into `n` logical devices (tests); only before TensorFlow's runtime
    starts, else RuntimeError."""
    cpus = tf.config.list_physical_devices("CPU")
    if tf.config.get_logical_device_configuration(cpus[0]):  # already split
        return
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
    )


def _devices(n: int) -> list[str]:
    """The first `n` GPUs, else (no GPU visible) the first `n` logical CPU devices."""
    from dfl.backend import CPU_DEVICES_ENV, BackendError

    gpus = tf.config.list_logical_devices("GPU")
    devices = gpus or tf.config.list_logical_devices("CPU")
    if len(devices) < n:
        kind = "GPUs" if gpus else f"CPU devices (set {CPU_DEVICES_ENV} to split the CPU)"
        raise BackendError(f"{n} devices asked for, but TensorFlow sees {len(devices)} {kind}")
    return [d.name for d in devices[:n]]


def data_parallel(n: int) -> Callable[[], contextlib.AbstractContextManager]:
    """The scope of a MirroredStrategy over the first `n` devices (see the module doc): enter
    it to build the networks, optimizers and steps."""
    return tf.distribute.MirroredStrategy(_devices(n)).scope


class Replicas:
    """Splits a batch across a MirroredStrategy's replicas and combines what they return."""

    def __init__(self, strategy: tf.distribute.Strategy):
        self.strategy = strategy
        self.count = strategy.num_replicas_in_sync
        self._first = strategy.extended.worker_devices[0]

    @staticmethod
    def current() -> Replicas | None:
        """The replicas of the strategy whose scope is entered; None for one device."""
        if not tf.distribute.has_strategy():
            return None
        strategy = tf.distribute.get_strategy()
        return Replicas(strategy) if strategy.num_replicas_in_sync > 1 else None

    def split(self, inputs: dict[str, np.ndarray]) -> Any:
        """Per-replica inputs: replica i gets the i-th equal slice of every batch (on the host)."""
        from dfl.backend import BackendError

        batch = len(next(iter(inputs.values())))
        if batch % self.count:
            raise BackendError(f"a batch of {batch} does not split evenly across {self.count}")
        size = batch // self.count

        def part(context: tf.distribute.experimental.ValueContext) -> dict[str, tf.Tensor]:
            i = context.replica_id_in_sync_group
            return {
                k: tf.constant(np.asarray(v[i * size : (i + 1) * size], dtype=np.float32))
                for k, v in inputs.items()
            }

        return self.strategy.experimental_distribute_values_from_function(part)

    def gradients(self, grads_of: Callable, inputs: Any, count: int) -> tuple[dict, list]:
        """Inside a tf.function: `grads_of(inputs) -> (losses, grads)` on every replica; the
        gradients averaged (DFL), the objective summed, the other losses averaged, all on the
        first device.
        `count`: how many gradients grads_of returns (None for a variable the loss ignores)."""
        present: list[int] = []  # the same on every replica: set while tracing

        def replica(part: dict) -> tuple[dict, list]:
            losses, grads = grads_of(part)
            present[:] = [i for i, g in enumerate(grads) if g is not None]
            return losses, [grads[i] for i in present]

        losses, grads = self.strategy.run(replica, args=(inputs,))
        total: list[Any] = [None] * count
        for i, grad in zip(present, grads, strict=True):
            total[i] = self._reduce(tf.distribute.ReduceOp.MEAN, grad)
        combined = {
            k: self._reduce(
                tf.distribute.ReduceOp.SUM if k == LOSS_KEY else tf.distribute.ReduceOp.MEAN, v
            )
            for k, v in losses.items()
        }
        return combined, total

    def _reduce(self, op: tf.distribute.ReduceOp, value: Any) -> tf.Tensor:
        return self.strategy.extended.reduce_to(op, value, destinations=self._first)


def apply_if_finite(optimizer: Any, loss: tf.Tensor, grads: list, variables: list) -> None:
    """optimizer.apply unless the loss is not finite (decision 15: then nothing changes).

    With several replicas this runs outside any replica: the Keras optimizer then updates every
    copy of the mirrored variables with the same (averaged) gradients."""

    def apply() -> tf.Tensor:
        optimizer.apply(grads, variables)
        return tf.constant(True)

    tf.cond(tf.math.is_finite(loss), apply, lambda: tf.constant(False))


def tensors(inputs: Mapping[str, np.ndarray]) -> dict[str, tf.Tensor]:
    return {k: tf.convert_to_tensor(v, dtype=tf.float32) for k, v in inputs.items()}


class Step(StepBase):
    """The loss groups in order, each with its own GradientTape, in one tf.function per
    selection of groups. Made inside dfl.backend.data_parallel(n), every group's pass runs on
    the n replicas (see the module doc: the batch is split, gradients averaged, applied once)."""

    def __init__(
        self, groups: Sequence[LossGroup], models: Sequence[Any], jit_compile: bool = False
    ):
        super().__init__(groups, models)
        self._jit_compile = jit_compile
        self._replicas = Replicas.current()
        self.devices = 1 if self._replicas is None else self._replicas.count
        self._steps: dict[tuple[int, ...], Any] = {}
        self._evals: dict[tuple[int, ...], Any] = {}

    def _make_step(self, selected: tuple[int, ...]) -> Any:
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
        groups = [self.groups[i] for i in selected]

        @tf.function(jit_compile=self._jit_compile)
        def evaluate(inputs: dict) -> list:
            # one device: mirrored variables read their first copy
            return [dict(group.compute(inputs, False)) for group in groups]

        return evaluate

    def __call__(
        self, inputs: Mapping[str, np.ndarray], groups: Sequence[str] | None = None
    ) -> dict[str, float]:
        selected = self.select(groups)
        if selected not in self._steps:
            self._steps[selected] = self._make_step(selected)
        placed = tensors(inputs) if self._replicas is None else self._replicas.split(inputs)
        return self.report(selected, self._steps[selected](placed))

    def evaluate(
        self, inputs: Mapping[str, np.ndarray], groups: Sequence[str] | None = None
    ) -> dict[str, float]:
        selected = self.select(groups)
        if selected not in self._evals:
            self._evals[selected] = self._make_eval(selected)
        return self.report(selected, self._evals[selected](tensors(inputs)))


def make_step(groups: Sequence[LossGroup], models: Sequence[Any]) -> Step:
    return Step(groups, models)
