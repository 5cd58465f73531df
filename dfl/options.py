"""Model options as data: typed coercion, validation, derived defaults and the resolve rules."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

OptionValue = int | float | bool | str
Resolver = Callable[[Mapping[str, Any]], Any]

# Where a resolved value came from (Resolved.sources).
SOURCE_DEFAULT = "default"
SOURCE_OVERRIDE = "override"
SOURCE_ANSWER = "answer"
SOURCE_STORED = "stored"

TRUE_WORDS = frozenset({"y", "yes", "true", "1"})
FALSE_WORDS = frozenset({"n", "no", "false", "0"})
SUPPORTED_TYPES = (int, float, bool, str)


class OptionError(ValueError):
    """An option value, name or table is invalid; the message is one line meant for the user."""


@dataclass(frozen=True)
class Option:
    """One model option: how it is asked, checked, defaulted and whether it may change on resume."""

    name: str  # DFL's key; also the JSON key in state.json
    label: str  # DFL's prompt label
    type: type  # int, float, bool or str
    default: Any  # a value, or callable(resolved_so_far) -> value
    help: str = ""
    range: tuple[float | None, float | None] | None = None  # inclusive; None = unbounded side
    choices: tuple[str, ...] | None = None
    multiple_of: int | Callable[[Mapping[str, Any]], int | None] | None = None
    round_up: bool = False  # round to the next multiple instead of the previous one
    changeable: bool = True  # True = C (may change on resume), False = F (fixed at creation)
    when: Callable[[Mapping[str, Any]], bool] | None = None  # ask only when this holds
    group: str = "training"
    hint: str | None = None  # replaces the automatic range/choices text in the prompt
    ask: bool = True  # False = never asked; takes the default or an override
    # validate(value, resolved) -> accepted (possibly normalised) value; raises OptionError.
    validate: Callable[[Any, Mapping[str, Any]], Any] | None = None

    def __post_init__(self) -> None:
        if self.type not in SUPPORTED_TYPES:
            raise OptionError(f"{self.name}: unsupported option type {self.type!r}")
        if self.choices is not None and self.type is not str:
            raise OptionError(f"{self.name}: choices need type str")
        if self.range is not None and self.type not in (int, float):
            raise OptionError(f"{self.name}: a range needs type int or float")
        if not callable(self.default):
            coerce(self, self.default)  # a table error shows at import time


@dataclass
class Resolved:
    """The outcome of resolve_options: values in table order plus what the user should be told."""

    options: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # name -> SOURCE_*
    unknown: dict[str, Any] = field(default_factory=dict)  # stored keys this table does not know


def _format_bounds(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"in the range {lo}..{hi}"
    if lo is not None:
        return f"at least {lo}"
    return f"at most {hi}"


def _check_range(option: Option, value: float) -> None:
    if option.range is None:
        return
    lo, hi = option.range
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise OptionError(
            f"{option.name}: {value} is out of range; it must be {_format_bounds(lo, hi)}"
        )


def _coerce_bool(option: Option, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, numbers.Integral) and int(raw) in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise OptionError(f"{option.name}: expected y or n (or yes/no, true/false, 1/0), got {raw!r}")


def _coerce_int(option: Option, raw: object) -> int:
    if isinstance(raw, bool):
        raise OptionError(f"{option.name}: expected a whole number, got {raw!r}")
    if isinstance(raw, numbers.Integral):
        return int(raw)
    if isinstance(raw, numbers.Real) and float(raw).is_integer():
        return int(raw)
    if isinstance(raw, str):
        try:
            return int(raw.strip())
        except ValueError:
            pass
    raise OptionError(f"{option.name}: expected a whole number, got {raw!r}")


def _coerce_float(option: Option, raw: object) -> float:
    value: float | None = None
    if isinstance(raw, numbers.Real) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            value = None
    if value is None or not math.isfinite(value):
        raise OptionError(f"{option.name}: expected a number, got {raw!r}")
    return value


def _coerce_str(option: Option, raw: object) -> str:
    if not isinstance(raw, str):
        raise OptionError(f"{option.name}: expected text, got {raw!r}")
    text = raw.strip()
    if option.choices is None:
        if not text:
            raise OptionError(f"{option.name}: a value is required")
        return text
    for choice in option.choices:
        if text.lower() == choice.lower():
            return choice
    raise OptionError(f"{option.name}: {raw!r} is not one of {'/'.join(option.choices)}")


def coerce(option: Option, raw: object) -> OptionValue:
    """Turn user text or a JSON value into the option's type; check range and choices.

    No rounding to a multiple and no `validate` hook here (see `normalize`).
    """
    if option.type is bool:
        return _coerce_bool(option, raw)
    if option.type is int:
        value: OptionValue = _coerce_int(option, raw)
    elif option.type is float:
        value = _coerce_float(option, raw)
    else:
        return _coerce_str(option, raw)
    _check_range(option, value)
    return value


def multiple_for(option: Option, resolved: Mapping[str, Any]) -> int | None:
    """The multiple an int option must be rounded to, given the options resolved so far."""
    step = option.multiple_of
    if callable(step):
        step = step(resolved)
    return step if step and step > 1 else None


def round_to_multiple(
    option: Option, value: OptionValue, resolved: Mapping[str, Any] | None = None
) -> tuple[OptionValue, str | None]:
    """Round an int to the option's required multiple, staying in range.

    Returns (value, note); the note (e.g. "resolution 130 -> 128 (multiple of 16)") is None when
    nothing changed.
    """
    if option.type is not int or isinstance(value, bool) or not isinstance(value, int):
        return value, None
    step = multiple_for(option, resolved or {})
    if step is None or value % step == 0:
        return value, None
    rounded = -(-value // step) * step if option.round_up else (value // step) * step
    if option.range is not None:
        lo, hi = option.range
        if lo is not None and rounded < lo:
            rounded += step
        if hi is not None and rounded > hi:
            rounded -= step
    return rounded, f"{option.name} {value} -> {rounded} (multiple of {step})"


def normalize(
    option: Option, raw: object, resolved: Mapping[str, Any] | None = None
) -> tuple[OptionValue, str | None]:
    """Coerce, round to the multiple and run the validate hook; returns (value, note)."""
    resolved = resolved or {}
    value, note = round_to_multiple(option, coerce(option, raw), resolved)
    if option.validate is not None:
        value = option.validate(value, resolved)
    return value, note


def default_of(option: Option, resolved: Mapping[str, Any]) -> OptionValue:
    """The option's default, derived from the options resolved so far when it is callable."""
    if not callable(option.default):
        return option.default
    raw = option.default(resolved)
    if option.type in (int, float) and option.range is not None:
        lo, hi = option.range  # a derived default is clamped, never refused
        raw = max(raw, lo) if lo is not None else raw
        raw = min(raw, hi) if hi is not None else raw
    value, _ = normalize(option, raw, resolved)
    return value


def is_relevant(option: Option, resolved: Mapping[str, Any]) -> bool:
    """Whether the option would be asked now (its `ask` flag and `when` condition hold)."""
    return option.ask and (option.when is None or bool(option.when(resolved)))


def with_defaults(table: Sequence[Option], **defaults: Any) -> tuple[Option, ...]:
    """A copy of `table` with defaults replaced: with_defaults(COMMON_OPTIONS, batch_size=8)."""
    names = {option.name for option in table}
    unknown = sorted(set(defaults) - names)
    if unknown:
        raise OptionError(f"no such option: {', '.join(unknown)}")
    return tuple(
        replace(option, default=defaults[option.name]) if option.name in defaults else option
        for option in table
    )


def check_table(table: Sequence[Option]) -> None:
    """Raise OptionError when a table names an option twice."""
    seen: set[str] = set()
    for option in table:
        if option.name in seen:
            raise OptionError(f"option {option.name!r} appears twice in the table")
        seen.add(option.name)


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """Parse `--opt name=value` strings into a dict (the last one of a name wins)."""
    result: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise OptionError(f"expected name=value, got {item!r}")
        result[name.strip()] = value.strip()
    return result


def _stored_value(
    option: Option, raw: object, resolved: Mapping[str, Any], notes: list[str]
) -> tuple[OptionValue, str]:
    """A stored value, checked; a bad changeable value falls back to the default with a note."""
    try:
        value = coerce(option, raw)
        if option.validate is not None:
            value = option.validate(value, resolved)
        return value, SOURCE_STORED
    except OptionError as error:
        if not option.changeable:
            raise OptionError(
                f"stored option {error} (a fixed option cannot fall back to a default)"
            ) from None
        default = default_of(option, resolved)
        notes.append(f"stored value of {error}; using the default {default}")
        return default, SOURCE_DEFAULT


def resolve_options(
    table: Sequence[Option],
    *,
    stored: Mapping[str, Any] | None = None,
    overrides: Mapping[str, object] | None = None,
    answer: Callable[[Option, Any, Mapping[str, Any]], Any] | None = None,
    ask_changeable: bool = False,
) -> Resolved:
    """Resolve every option of `table`, in table order.

    New model (`stored` is None): default (derived from earlier values), replaced by an override,
    else by `answer(option, default, resolved_so_far)` when the option is relevant.
    Resume: fixed options come from `stored` and are never asked; overriding one with a different
    value raises OptionError. Changeable ones come from `stored`, then overrides, then answers when
    `ask_changeable`. Unknown stored keys go to `Resolved.unknown` with a note. Overrides are
    checked here, so invalid headless values raise OptionError.
    """
    check_table(table)
    overrides = dict(overrides or {})
    _check_override_names(table, overrides)
    resume = stored is not None
    stored = dict(stored or {})
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    notes: list[str] = []
    for option in table:
        name = option.name
        if name in overrides:
            value = _override_value(
                option, overrides[name], stored if resume else None, values, notes
            )
            source = SOURCE_OVERRIDE
        else:
            value, source = _stored_or_default(option, stored if resume else None, values, notes)
            may_ask = not resume or (ask_changeable and option.changeable)
            if answer is not None and may_ask and is_relevant(option, values):
                value, _ = normalize(option, answer(option, value, values), values)
                source = SOURCE_ANSWER
        values[name] = value
        sources[name] = source
    _round_late_multiples(table, values, sources, notes)
    kept = {key: value for key, value in stored.items() if key not in values}
    notes.extend(f"stored option {key!r} is not known to this version; kept aside" for key in kept)
    return Resolved(options=values, notes=notes, sources=sources, unknown=kept)


def _check_override_names(table: Sequence[Option], overrides: Mapping[str, object]) -> None:
    names = [option.name for option in table]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        valid = ", ".join(names) if names else "(none)"
        raise OptionError(f"unknown option {', '.join(unknown)}; valid options: {valid}")


def _override_value(
    option: Option,
    raw: object,
    stored: Mapping[str, Any] | None,
    values: Mapping[str, Any],
    notes: list[str],
) -> OptionValue:
    """An override, checked; on resume a fixed option may only be "overridden" with its value."""
    value, note = normalize(option, raw, values)
    if note:
        notes.append(note)
    if stored is not None and not option.changeable and option.name in stored:
        old, _ = _stored_value(option, stored[option.name], values, notes)
        if value != old:
            raise OptionError(
                f"{option.name} is fixed when the model is created (stored: {old}); "
                "it cannot be changed on resume"
            )
    return value


def _stored_or_default(
    option: Option,
    stored: Mapping[str, Any] | None,
    values: Mapping[str, Any],
    notes: list[str],
) -> tuple[OptionValue, str]:
    """(value, source) before any answer: the stored value on resume, else the default."""
    if stored is not None and option.name in stored:
        return _stored_value(option, stored[option.name], values, notes)
    value = default_of(option, values)
    if stored is not None:
        notes.append(f"{option.name} was not stored with the model; using {value}")
    return value, SOURCE_DEFAULT


def _round_late_multiples(
    table: Sequence[Option], values: dict[str, Any], sources: Mapping[str, str], notes: list[str]
) -> None:
    """Multiples that depend on options asked later (SAEHD: resolution vs archi) are checked
    again once every option is known."""
    for option in table:
        if callable(option.multiple_of) and sources[option.name] != SOURCE_STORED:
            rounded, note = round_to_multiple(option, values[option.name], values)
            if note:
                values[option.name] = rounded
                notes.append(note)


def complete_options(
    table: Sequence[Option], options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """`options` with every option of `table` that is missing at its (derived) default; the
    table's values are checked, keys it does not know are kept as they are."""
    options = dict(options or {})
    names = {o.name for o in table}
    given = {k: v for k, v in options.items() if k in names}
    resolved = resolve_options(table, overrides=given).options
    return {**options, **resolved}


def ordered_options(options: Mapping[str, Any], order: Sequence[str]) -> dict[str, Any]:
    """The options with the keys of `order` first, in that order; the rest follow as they are."""
    ordered = {key: options[key] for key in order if key in options}
    ordered.update((key, value) for key, value in options.items() if key not in ordered)
    return ordered
