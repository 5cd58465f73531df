"""The training step's shared part: loss groups, group selection, reporting and validation.

One iteration trains one or more loss groups in order (docs/design.md, "Backends"): SAEHD's
generator, its 'true face' code discriminator and its patch GAN; Quick96 has one group. Each group
is its own gradient pass that sees the weights the previous one just updated, as DFL's separate
graph executions do, and changes only its own variables and its own optimizer's state.

    groups = [
        LossGroup("src_dst", ae.trainable_variables, g_opt, g_losses),
        LossGroup("GAN", gan.trainable_variables, gan_opt, gan_losses),
    ]
    step = dfl.backend.make_step(groups, models=[ae, gan])
    result = step(inputs)                    # every group, in order
    result = step(inputs, groups=("GAN",))   # a subset, still in list order

`LossGroup.compute(inputs, training)` runs whatever forward passes it needs (it may call any
model in `models`) and returns a dict of scalar tensors with the objective under "loss". The step
returns Python floats: each group's objective under its `loss_key` ("<name>_loss" unless given)
and its other keys as they are (they must not collide across groups). A group whose objective is
not finite changes nothing (its weights and optimizer state stay as they were); later groups
still run. Each backend module (`dfl/backend/<name>.py`) implements `Step` on this base.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LOSS_KEY = "loss"  # the objective: a sum over the batch; every other value is a batch mean
Losses = Mapping[str, Any]


@dataclass(frozen=True)
class LossGroup:
    """One objective: `compute(inputs, training) -> {"loss": scalar, ...}` trains `variables`
    with `optimizer` (built on exactly these variables, in this order). The step reports the
    objective as `loss_key`, by default "<name>_loss"."""

    name: str
    variables: Sequence[Any]
    optimizer: Any
    compute: Callable[[dict, bool], Losses]
    loss_key: str | None = None

    @property
    def reported_loss(self) -> str:
        return self.loss_key or f"{self.name}_{LOSS_KEY}"


def unique(variables: Sequence[Any]) -> list[Any]:
    """The variables in order, each once (by identity)."""
    seen: set[int] = set()
    out = []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


class StepBase:
    """What every backend's Step shares: checks the groups, builds their optimizers, selects
    groups by name and turns the losses into Python floats.

    Subclasses implement `__call__(inputs, groups=None)` and `evaluate(inputs, groups=None)`;
    a step that keeps state outside the Keras variables (JAX) also `sync()` and `refresh()`."""

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

    def select(self, groups: Sequence[str] | None) -> tuple[int, ...]:
        """Indexes of the named groups in step order (all when None); ValueError if unknown."""
        if groups is None:
            return tuple(range(len(self.groups)))
        known = [g.name for g in self.groups]
        unknown = [n for n in groups if n not in known]
        if unknown:
            raise ValueError(f"unknown loss group(s) {unknown}: choose from {known}")
        return tuple(i for i, name in enumerate(known) if name in groups)

    def report(self, selected: tuple[int, ...], per_group: Sequence[Losses]) -> dict[str, float]:
        """One dict of Python floats from the selected groups' losses (see the module doc)."""
        result: dict[str, float] = {}
        for i, losses in zip(selected, per_group, strict=True):
            group = self.groups[i]
            for key, value in losses.items():
                out = group.reported_loss if key == LOSS_KEY else key
                if out in result:
                    raise ValueError(f"loss key {out!r} of group {group.name!r} is reported twice")
                result[out] = float(value)
        return result

    def sync(self) -> None:
        """Nothing to do unless the step keeps state outside the Keras variables (JAX)."""

    def refresh(self) -> None:
        """Nothing to do unless the step keeps state outside the Keras variables (JAX)."""


def model_group(
    model: Any,
    compute_losses: Callable[[dict, dict], dict],
    optimizer: Any,
    name: str = "src_dst",
    loss_key: str | None = None,
    variables: Sequence[Any] | None = None,
) -> LossGroup:
    """The group of an autoencoder's own objective: `compute_losses(model(inputs), inputs)`
    trains `variables` (default: all the model's trainable variables)."""

    def compute(inputs: dict, training: bool) -> Losses:
        return compute_losses(model(inputs, training=training), inputs)

    chosen = list(model.trainable_variables) if variables is None else list(variables)
    return LossGroup(name, chosen, optimizer, compute, loss_key)
