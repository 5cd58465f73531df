"""The questions of `dfl merge`: AMP's morph factor, "Use interactive merger?", DFL's settings
questionnaire (labels, order, defaults and ranges from dfl.merge.settings.MERGE_OPTIONS, with the
remembered settings as defaults) and "Number of workers?". `--opt key=value` answers any of them
without a prompt; invalid answers re-ask; at end of input the defaults are taken."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from dfl.merge.settings import (
    MERGE_OPTIONS,
    NONE,
    MergeSettings,
    choice_lines,
    questionnaire_defaults,
    settings_from_options,
    workers_option,
)
from dfl.options import Option, OptionError, resolve_options, with_defaults
from dfl.ui.prompts import INPUT_CLOSED_MESSAGE, InputClosed, InputFn, PrintFn, ask_option

MORPH_KEY = "morph_factor"
WORKERS_KEY = "workers"
INTERACTIVE_KEY = "interactive"
SAVED_SESSION_KEY = "use_saved_session"
LISTED = ("mode", "mask_mode", "sharpen_mode")  # DFL prints a numbered list before these

MORPH_OPTION = Option(
    name=MORPH_KEY,
    label="Morph factor",
    type=float,
    default=1.0,
    range=(0.0, 1.0),
    hint="0.0 .. 1.0",
    group="merge",
    help="How much of the src identity the swapped face takes: 1.0 is the src person, lower "
    "values morph toward the dst person.",
)
INTERACTIVE_OPTION = Option(
    name=INTERACTIVE_KEY,
    label="Use interactive merger?",
    type=bool,
    default=True,
    group="merge",
    help="The interactive merger shows each merged frame in a window and lets you tune the "
    "settings per frame with DFL's keys; no: answer the settings once for every frame.",
)
SAVED_SESSION_OPTION = Option(
    name=SAVED_SESSION_KEY,
    label="Use saved session?",
    type=bool,
    default=True,
    group="merge",
    help="Continue the interactive merge where it stopped, with each frame's settings; no: "
    "start again from the first frame with the default settings.",
)


class Asker:
    """Asks options on the console; after the input closes, answers every remaining question
    with its default (saying so once)."""

    def __init__(self, input_fn: InputFn = input, print_fn: PrintFn = print) -> None:
        self.input_fn = input_fn
        self.print_fn = print_fn
        self.closed = False

    def __call__(self, option: Option, default: Any, resolved: Mapping[str, Any]) -> Any:
        if self.closed:
            return default
        if option.name in LISTED:
            for line in choice_lines(option.name):
                self.print_fn(line)
        try:
            return ask_option(option, default, self.input_fn, self.print_fn, resolved=resolved)
        except InputClosed:
            self.closed = True
            self.print_fn(INPUT_CLOSED_MESSAGE)
            return default


def ask_one(asker: Asker, option: Option, overrides: Mapping[str, str]) -> Any:
    """One question, unless --opt answered it (checked like an answer)."""
    resolved = resolve_options((option,), overrides=_pick(overrides, (option.name,)), answer=asker)
    return resolved.options[option.name]


def _pick(overrides: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    return {k: v for k, v in overrides.items() if k in names}


def option_values(settings: MergeSettings) -> dict[str, Any]:
    """Settings as answers to MERGE_OPTIONS (None lists as 'none')."""
    values = settings.to_json()
    names = {option.name for option in MERGE_OPTIONS}
    return {k: (NONE if v is None else v) for k, v in values.items() if k in names}


def check_overrides(overrides: Mapping[str, str], model_type: str) -> None:
    """OptionError for an --opt key that `dfl merge` does not know."""
    known = [o.name for o in MERGE_OPTIONS] + [WORKERS_KEY, INTERACTIVE_KEY, SAVED_SESSION_KEY]
    if model_type == "AMP":
        known.append(MORPH_KEY)
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise OptionError(
            f"unknown merge option {', '.join(unknown)}; valid options: {', '.join(known)}"
        )


def ask_settings(
    asker: Asker, remembered: MergeSettings | None, overrides: Mapping[str, str]
) -> tuple[MergeSettings, list[str]]:
    """DFL's questionnaire with the remembered settings (else DFL's answers-by-Enter) as
    defaults; returns the settings and notes (roundings) to show."""
    base = remembered or questionnaire_defaults()
    table = with_defaults(MERGE_OPTIONS, **option_values(base))
    names = tuple(option.name for option in MERGE_OPTIONS)
    resolved = resolve_options(table, overrides=_pick(overrides, names), answer=asker)
    # Questions skipped (raw modes, no sharpen) keep the remembered values, as DFL keeps its own.
    return settings_from_options(resolved.options, base), resolved.notes


def ask_workers(asker: Asker, remembered: int | None, overrides: Mapping[str, str]) -> int:
    cpus = os.cpu_count() or 1
    option = workers_option(cpus)
    if remembered is not None and 1 <= remembered <= cpus:
        option = with_defaults((option,), workers=remembered)[0]
    return int(ask_one(asker, option, overrides))


def ask_morph(asker: Asker, remembered: float | None, overrides: Mapping[str, str]) -> float:
    option = MORPH_OPTION
    if remembered is not None and 0.0 <= remembered <= 1.0:
        option = with_defaults((option,), morph_factor=remembered)[0]
    return float(ask_one(asker, option, overrides))


def ask_interactive(asker: Asker, flag: bool | None, overrides: Mapping[str, str]) -> bool:
    if flag is not None:
        return flag
    return bool(ask_one(asker, INTERACTIVE_OPTION, overrides))


def ask_saved_session(asker: Asker, overrides: Mapping[str, str]) -> bool:
    """DFL's "Use saved session?" (asked when the interactive merger has a saved session)."""
    return bool(ask_one(asker, SAVED_SESSION_OPTION, overrides))
