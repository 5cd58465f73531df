"""DFL's stored options -> the project's: same names (decision 10), Python values, checked by the
model's own option table; project-only options take their defaults."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dfl.models.contract import ModelSpec
from dfl.options import Option, resolve_options

# Old DFL versions stored lr_dropout as a bool; DFL itself maps it to its choices.
LR_DROPOUT_FROM_BOOL = {True: "y", False: "n"}
# DFL bookkeeping kept in the options dict that the project does not have.
DFL_ONLY = frozenset({"choosed_gpu_indexes"})
NOT_STORED = " was not stored with the model; using "  # dfl.options.resolve_options' note


def option_table(spec: ModelSpec) -> tuple[Option, ...]:
    """The model's whole option table, as `dfl train` uses it (CPU batch-size suggestion)."""
    return tuple(spec.option_table(None))


def convert_options(
    spec: ModelSpec, dfl_options: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """(the project's options, notes) from DFL's options of a model of `spec`.

    Values are checked as a resumed model's stored options are: a bad changeable value falls back
    to its default with a note, a bad fixed one (resolution, archi, dims) raises OptionError.
    """
    table = option_table(spec)
    known = {option.name for option in table}
    converted: dict[str, Any] = {}
    notes: list[str] = []
    for key, value in dfl_options.items():
        if key in DFL_ONLY:
            continue
        if key not in known:
            notes.append(f"DFL option {key!r} is not used by this version of dfl; left out")
            continue
        if key == "lr_dropout" and isinstance(value, bool):
            value = LR_DROPOUT_FROM_BOOL[value]
        converted[key] = value
    resolved = resolve_options(table, stored=converted)
    notes += [note for note in resolved.notes if NOT_STORED not in note]
    defaults = [f"{k} {resolved.options[k]}" for k in resolved.options if k not in converted]
    if defaults:
        notes.append(f"not in DFL's options, so at their defaults: {', '.join(defaults)}")
    return dict(resolved.options), notes
