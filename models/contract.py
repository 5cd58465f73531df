"""The model contract: what every model package gives the trainer, the start-up, the importer,
the exporter and the benchmark (docs/design.md, "Models").

Each `models/<name>/model.py` exposes `SPEC: ModelSpec`; `models/registry.py` lists the names.
Every hook is a field here, so nothing is probed: a model sets the required ones and whichever
optional ones differ from the defaults below. Options are the resolved option dict
(dfl.options); `inputs` is the batch dict of `dfl.data.batcher.Batch.as_inputs()`.

Importing this module does not import Keras (the start-up lists models before the backend is
chosen); `registry.load(name)` imports the model's package, and with it Keras.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dfl.common_options import COMMON_OPTIONS
from dfl.options import Option

if TYPE_CHECKING:
    from dfl.backend.step import LossGroup
    from dfl.data.augment import AugmentConfig

Options = Mapping[str, Any]
Inputs = Mapping[str, np.ndarray]
Pages = list[tuple[str, np.ndarray]]  # (page name, uint8 BGR image)
ResumePlan = tuple[set[str], bool, list[str]]  # (keys started afresh, restart at 0, notes)
DEFAULT_PREVIEW_HISTORY_EVERY = 10  # iterations between preview-history frames


@dataclass
class Training:
    """What one model trains, from `ModelSpec.make_training(options, model)`.

    groups: the loss groups of one iteration, in step order (dfl.backend.step.LossGroup).
    networks: networks beside `model.networks` that are saved as files (discriminators).
    optimizers: each group's optimizer under its checkpoint key (built for its variables).
    models: every Keras model a group's compute reads (the autoencoder first)."""

    groups: list[LossGroup]
    networks: dict[str, Any] = field(default_factory=dict)
    optimizers: dict[str, Any] = field(default_factory=dict)
    models: list[Any] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        model: Any,
        groups: Sequence[LossGroup],
        optimizer_keys: Mapping[str, str],
        networks: Mapping[str, Any] | None = None,
    ) -> Training:
        """From the groups in step order: each optimizer built for its group's variables and
        saved under `optimizer_keys[group.name]`."""
        for group in groups:
            if not group.optimizer.built:
                group.optimizer.build(list(group.variables))
        optimizers = {optimizer_keys[group.name]: group.optimizer for group in groups}
        extra = dict(networks or {})
        return cls(list(groups), extra, optimizers, [model, *extra.values()])


# ------------------------------------------------------------------- defaults of the hooks
def common_option_table(gpu_memory_bytes: int | None = None) -> tuple[Option, ...]:
    """The options every model has (dfl.common_options.COMMON_OPTIONS) and no others."""
    return tuple(COMMON_OPTIONS)


def same_options(options: Options) -> Options:
    return options


def no_display_overrides(options: Options) -> Mapping[str, Any] | None:
    return None


def never_reuses(iteration: int, previous: Inputs | None) -> bool:
    return False


def fresh_inputs(iteration: int, fresh: Inputs | None, previous: Inputs | None) -> Inputs:
    if fresh is None:
        raise ValueError("this model needs a fresh batch every iteration")
    return fresh


def same_step_inputs(options: Options, inputs: Inputs, iteration: int) -> Inputs:
    return inputs


def nothing_fresh(stored: Options, options: Options) -> ResumePlan:
    return set(), False, []


def default_history_every(options: Options) -> int:
    return DEFAULT_PREVIEW_HISTORY_EVERY


@dataclass(frozen=True)
class ModelSpec:
    """One model. Required fields first; every optional hook has a documented default."""

    name: str  # as users and DFL know it: "SAEHD"
    # options -> the trainable Keras model; `.networks: dict[str, keras.Model]` names the parts
    # saved as files; called with the inputs dict it returns a dict of predictions
    build: Callable[[Options], Any]
    # (options, model) -> Training: the loss groups, extra networks and optimizers by key
    make_training: Callable[[Options, Any], Training]
    # options -> (src, dst) configs of the batcher's samples
    augment_configs: Callable[[Options], tuple[AugmentConfig, AugmentConfig]]
    # (options, n_devices) -> the batch in total (split evenly across the devices)
    batch_size: Callable[[Options, int], int]
    # (model, inputs, fixed) -> preview pages; fixed=True for the preview history
    preview: Callable[[Any, Inputs, bool], Pages]
    # a configuration with the fewest weights the model allows, for tests and `dfl bench
    # --quick`: applied on top of the resolved options
    tiny_options: Mapping[str, Any]

    # --------------------------------------------------------------------------- options
    # gpu_memory_bytes -> the whole option table in ask order (COMMON_OPTIONS included)
    option_table: Callable[[int | None], Sequence[Option]] = common_option_table
    asks_options: bool = True  # False: no prompts and no override gate (--opt still works)
    summary_options: Callable[[Options], Options] = same_options  # shown in the summary box
    display_overrides: Callable[[Options], Mapping[str, Any] | None] = no_display_overrides

    # ---------------------------------------------------------------------- each iteration
    # (iteration, previous inputs) -> True when this iteration draws no fresh batch
    reuses_previous: Callable[[int, Inputs | None], bool] = never_reuses
    # (iteration, fresh batch or None, previous inputs) -> what this iteration trains on
    next_inputs: Callable[[int, Inputs | None, Inputs | None], Inputs] = fresh_inputs
    # (options, inputs, iteration) -> what the step is fed (inputs made on the host)
    step_inputs: Callable[[Options, Inputs, int], Inputs] = same_step_inputs

    # ------------------------------------------------------------------ resume, previews
    # (stored options, options) -> (checkpoint keys started afresh, restart at 0, notes)
    fresh_on_resume: Callable[[Options, Options], ResumePlan] = nothing_fresh
    preview_history_every: Callable[[Options], int] = default_history_every

    # ---------------------------------------------------------------------------- interop
    # options -> the DeepFaceLive wiring of the networks ("df", "liae", "amp":
    # dfl.interop.deepfacelive.wiring.LAYOUTS); None: the model cannot be exported
    export_layout: Callable[[Options], str] | None = None
    # network -> {project layer name: DFL layer name} where DFL's weight names differ
    dfl_layer_renames: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # network -> DFL's TF scope where it differs from the network's file name
    dfl_scopes: Mapping[str, str] = field(default_factory=dict)
    # optimizer checkpoint key -> DFL's optimizer file part where they differ
    dfl_optimizer_files: Mapping[str, str] = field(default_factory=dict)

    # --------------------------------------------------------------------------- benchmark
    # options -> forward passes per src+dst pair of each network in the generator step
    # (for dfl bench's FLOPs estimate); None: no estimate
    forward_passes: Callable[[Options], Mapping[str, int]] | None = None
