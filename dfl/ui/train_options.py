"""The options step of `dfl train`: the override gate, the prompts (with DFL's preview-history
sample question), --opt and --pretrained-model-dir, and what a new model is told first."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dfl.ui import text

if TYPE_CHECKING:
    from dfl.models.contract import ModelSpec
    from dfl.options import Option
    from dfl.store.model_store import Loaded

PRETRAIN_OPTION = "pretrain"  # SAEHD's pretraining mode
# said before a new SAEHD model's first iteration, as DFL does (docs/dfl-trainer.md)
FROM_SCRATCH_TIP = (
    "You are training the model from scratch. Starting from a pretrained model "
    "(--pretrained-model-dir, or a model of your own trained with pretrain on) trains faster "
    "and gives better quality."
)


@dataclass
class ChosenOptions:
    """The outcome of the options step of the start-up dialogue."""

    options: dict[str, Any]
    pretrained: Loaded | None  # --pretrained-model-dir weights for a new model
    choose_history_sample: bool  # "Choose image for the preview history" answered yes
    tips: tuple[str, ...]  # said before a new model's first iteration


def choose_options(
    args: argparse.Namespace,
    spec: ModelSpec,
    loaded: Loaded | None,
    model_type: str,
    gpu_memory: int | None,
) -> ChosenOptions:
    """DFL's options step: the override gate on resume, the prompts, --opt and the
    --pretrained-model-dir options; notes said as they come."""
    from dfl.options import parse_assignments, resolve_options
    from dfl.ui.history_sample import HistorySampleQuestion
    from dfl.ui.prompts import answer_from_console, override_gate

    table = tuple(spec.option_table(gpu_memory))  # SAEHD: device-aware batch default
    ask_changeable = False
    if loaded is not None and spec.asks_options:
        ask_changeable = args.override or override_gate()
    answer = None
    if spec.asks_options:
        answer = HistorySampleQuestion(answer_from_console(), window_possible=not args.no_preview)
    overrides = parse_assignments(args.opt)
    source = None  # --pretrained-model-dir: its architecture options are this model's too
    if args.pretrained_model_dir and loaded is None:
        from dfl.ui.import_command import pretrained_overrides, pretrained_source

        source = pretrained_source(args.pretrained_model_dir, model_type, spec)
        overrides = {**pretrained_overrides(source, table), **overrides}
    resolved = resolve_options(
        table,
        stored=loaded.state.options if loaded else None,
        overrides=overrides,
        answer=answer,
        ask_changeable=ask_changeable,
    )
    for note in resolved.notes:
        text.note(note)
    pretrained = None
    if source is not None:
        from dfl.ui.import_command import pretrained_weights

        pretrained = pretrained_weights(source, resolved.options, table)
    from_scratch = loaded is None and pretrained is None
    return ChosenOptions(
        options=resolved.options,
        pretrained=pretrained,
        choose_history_sample=answer is not None and answer.choose,
        tips=new_model_tips(table, resolved.options) if from_scratch else (),
    )


def new_model_tips(table: Sequence[Option], options: Mapping[str, Any]) -> tuple[str, ...]:
    """What DFL says before a model's first iteration when it starts from nothing: a model that
    can be pretrained (SAEHD) gets the advice to start from a pretrained one."""
    pretrainable = any(option.name == PRETRAIN_OPTION for option in table)
    if pretrainable and not options.get(PRETRAIN_OPTION):
        return (FROM_SCRATCH_TIP,)
    return ()
