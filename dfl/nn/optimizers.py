"""DFL's RMSprop and AdaBelief as Keras 3 optimizers (lr dropout, global clipnorm, lr_cos)."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from dfl.nn.keras_internals import HookedOptimizer

EPSILON = 1e-6  # np.finfo(float32).resolution, added outside the square root
RMSPROP_LR = 1e-3
RMSPROP_RHO = 0.9
ADABELIEF_LR = 1e-3
ADABELIEF_BETA_1 = 0.9
ADABELIEF_BETA_2 = 0.999
LR_DROPOUT_OFF = 1.0  # keep probability 1: every element is updated


class DFLOptimizer(HookedOptimizer):
    """Shared DFL behaviour: lr_cos schedule, global clipnorm, learning-rate dropout.

    lr_dropout is the keep probability p: each step a fresh Bernoulli(p) mask per weight element
    gates the update (the slots are still updated everywhere). The mask's random state is an
    optimizer variable, so it is saved with the optimizer and carried by `stateless_apply`.
    clipnorm (0 = off) scales every gradient by c/n when the global norm n over all of them is >= c.
    lr_cos (0 = off) multiplies the learning rate by (cos(2π·iteration/lr_cos) + 1)/2.
    """

    def __init__(
        self,
        learning_rate: float,
        lr_dropout: float = LR_DROPOUT_OFF,
        lr_cos: int = 0,
        clipnorm: float = 0.0,
        seed: int | None = None,
        name: str | None = None,
        **kwargs: Any,
    ):
        if isinstance(learning_rate, int | float):
            learning_rate = float(learning_rate)
        if not 0.0 < lr_dropout <= 1.0:
            raise ValueError(f"lr_dropout is a keep probability in (0, 1], got {lr_dropout}")
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.lr_dropout = float(lr_dropout)
        self.lr_cos = int(lr_cos or 0)
        self.global_clip = float(clipnorm or 0.0)
        self.seed = seed
        self._keep_masks: dict = {}
        self.trained_variables: list = []  # what build() was given, in order

    @property
    def uses_lr_dropout(self) -> bool:
        return self.lr_dropout < LR_DROPOUT_OFF

    def build(self, variables: list) -> None:
        if self.built:
            return
        super().build(variables)
        self.trained_variables = list(variables)
        if self.uses_lr_dropout:
            self._mask_seed = keras.random.SeedGenerator(self.seed, name="lr_dropout_seed")
            self.track(self._mask_seed.state)

    def slots(self) -> dict[str, list[tuple[Any, Any]]]:
        """Each slot's (trained variable, slot variable) pairs, by slot name (DFL's names)."""
        return {}

    def clip_gradients(self, grads: list) -> list:
        if self.global_clip <= 0.0:
            return grads
        squares = [ops.sum(ops.square(ops.cast(g, "float32"))) for g in grads if g is not None]
        if not squares:
            return grads
        norm = ops.sqrt(ops.sum(ops.stack(squares)))
        clip = self.global_clip
        scale = ops.where(norm >= clip, clip / ops.maximum(norm, clip), 1.0)
        return [None if g is None else g * ops.cast(scale, g.dtype) for g in grads]

    def scheduled_lr(self, learning_rate: Any) -> Any:
        if self.lr_cos <= 0:
            return learning_rate
        phase = ops.cast(self.iterations % self.lr_cos, "float32") * (2.0 * math.pi / self.lr_cos)
        return learning_rate * (ops.cos(phase) + 1.0) / 2.0

    def begin_update(self, trainable_variables: list) -> None:
        self._keep_masks = self._draw_keep_masks(trainable_variables)

    def end_update(self) -> None:
        self._keep_masks = {}

    def _draw_keep_masks(self, trainable_variables: list) -> dict:
        """One uniform draw for all weights (cheaper to compile and run), split per variable."""
        if not self.uses_lr_dropout:
            return {}
        shapes = [tuple(v.shape) for v in trainable_variables]
        sizes = [math.prod(shape) for shape in shapes]
        u = keras.random.uniform((sum(sizes),), dtype="float32", seed=self._mask_seed)
        masks = {}
        offset = 0
        for variable, shape, size in zip(trainable_variables, shapes, sizes, strict=True):
            keep = u[offset : offset + size] < self.lr_dropout
            masks[self.variable_index(variable)] = ops.reshape(keep, shape)
            offset += size
        return masks

    def _apply_delta(self, variable: Any, delta: Any) -> None:
        """variable -= delta, with the learning-rate dropout mask applied to delta."""
        if self.uses_lr_dropout:
            keep = self._keep_masks[self.variable_index(variable)]
            delta = ops.where(keep, delta, 0.0)
        self.assign_sub(variable, delta)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            lr_dropout=self.lr_dropout,
            lr_cos=self.lr_cos,
            clipnorm=self.global_clip,
            seed=self.seed,
        )
        config.pop("global_clipnorm", None)
        return config


class RMSprop(DFLOptimizer):
    """DFL RMSprop: a = ρa + (1-ρ)g²; w -= lr·g/(√a + 1e-6)."""

    def __init__(
        self,
        learning_rate: float = RMSPROP_LR,
        rho: float = RMSPROP_RHO,
        name: str = "rmsprop",
        **kwargs: Any,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho = float(rho)

    def build(self, variables: list) -> None:
        if self.built:
            return
        super().build(variables)
        self._accumulators = self.add_optimizer_variables(variables, "acc")

    def slots(self) -> dict[str, list[tuple[Any, Any]]]:
        return {"acc": list(zip(self.trained_variables, self._accumulators, strict=True))}

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        acc = self._accumulators[self.variable_index(variable)]
        new_acc = acc * self.rho + ops.square(g) * (1.0 - self.rho)
        self.assign(acc, new_acc)
        self._apply_delta(variable, lr * g / (ops.sqrt(new_acc) + EPSILON))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(rho=self.rho)
        return config


class AdaBelief(DFLOptimizer):
    """DFL AdaBelief (no bias correction): m, v from the new m; w -= lr·m/(√v + 1e-6)."""

    def __init__(
        self,
        learning_rate: float = ADABELIEF_LR,
        beta_1: float = ADABELIEF_BETA_1,
        beta_2: float = ADABELIEF_BETA_2,
        name: str = "adabelief",
        **kwargs: Any,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)

    def build(self, variables: list) -> None:
        if self.built:
            return
        super().build(variables)
        self._ms, self._vs = self.add_optimizer_variables(variables, ["ms", "vs"])

    def slots(self) -> dict[str, list[tuple[Any, Any]]]:
        trained = self.trained_variables
        return {
            "ms": list(zip(trained, self._ms, strict=True)),
            "vs": list(zip(trained, self._vs, strict=True)),
        }

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        index = self.variable_index(variable)
        m, v = self._ms[index], self._vs[index]
        new_m = m * self.beta_1 + g * (1.0 - self.beta_1)
        new_v = v * self.beta_2 + ops.square(g - new_m) * (1.0 - self.beta_2)
        self.assign(m, new_m)
        self.assign(v, new_v)
        self._apply_delta(variable, lr * new_m / (ops.sqrt(new_v) + EPSILON))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2)
        return config
