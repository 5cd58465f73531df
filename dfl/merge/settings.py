"""The masked merger's settings: the key helpers of the interactive merger and DFL's
non-interactive question table. The settings themselves (MergeSettings, names, ranges, JSON) live
in dfl.merge.fields and are re-exported here.

Facts (DFL's MergerConfig.py, docs/merge.md "Settings"): the interactive merger starts from the
constructor's defaults; the non-interactive questions offer others (mask dst, no colour transfer,
threshold 255). XSeg mask modes and super resolution are left out: they need networks dfl does
not ship.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from dfl.merge.fields import (
    ALIASES,
    COLOR_TRANSFER_MODES,
    HIST_MATCH_MODES,
    KEY_STEP,
    KEY_STEP_SHIFT,
    MASK_MODES,
    MODES,
    NONE,
    RANGES,
    RAW_MODES,
    SEAMLESS_MODES,
    SHARPEN_MODES,
    XSEG_MASK_MODES,
    XSEG_MESSAGE,
    MergeSettings,
    check_settings,
    parse_value,
)
from dfl.options import Option, OptionError

__all__ = [
    "ALIASES",
    "COLOR_TRANSFER_MODES",
    "HIST_MATCH_MODES",
    "KEY_STEP",
    "KEY_STEP_SHIFT",
    "MASK_MODES",
    "MERGE_OPTIONS",
    "MODES",
    "NONE",
    "NUMBERED_CHOICES",
    "RANGES",
    "RAW_MODES",
    "SEAMLESS_MODES",
    "SHARPEN_MODES",
    "XSEG_MASK_MODES",
    "XSEG_MESSAGE",
    "MergeSettings",
    "check_settings",
    "choice_lines",
    "cycle_color_transfer",
    "cycle_mask_mode",
    "cycle_sharpen_mode",
    "parse_value",
    "questionnaire_defaults",
    "settings_from_options",
    "step",
    "summary_lines",
    "toggle_masked_hist_match",
    "with_mode",
    "workers_option",
]


# --- Keys of the interactive merger (docs/merge.md "Keys") ---------------------------------------


def with_mode(settings: MergeSettings, mode: str | int) -> MergeSettings:
    """Set the mode by name or DFL number (`` ` ``/1-6 keys)."""
    return replace(settings, mode=parse_value("mode", mode))


def _next(choices: tuple[str, ...], current: str | None, with_none: bool) -> str | None:
    cycle: tuple[str | None, ...] = (None, *choices) if with_none else choices
    return cycle[(cycle.index(current) + 1) % len(cycle)]


def cycle_mask_mode(settings: MergeSettings) -> MergeSettings:
    """`x`: the next mask mode, after the last back to `full`."""
    return replace(settings, mask_mode=_next(MASK_MODES, settings.mask_mode, False))


def cycle_color_transfer(settings: MergeSettings) -> MergeSettings:
    """`c`: none -> rct -> lct -> ... -> mix-m -> none."""
    nxt = _next(COLOR_TRANSFER_MODES, settings.color_transfer_mode, True)
    return replace(settings, color_transfer_mode=nxt)


def cycle_sharpen_mode(settings: MergeSettings) -> MergeSettings:
    """`n`: none -> box -> gaussian -> none."""
    return replace(settings, sharpen_mode=_next(SHARPEN_MODES, settings.sharpen_mode, True))


def toggle_masked_hist_match(settings: MergeSettings) -> MergeSettings:
    """`z`: flips masked hist match; only in hist-match mode (as DFL)."""
    if settings.mode != "hist-match":
        return settings
    return replace(settings, masked_hist_match=not settings.masked_hist_match)


def step(settings: MergeSettings, name: str, delta: int) -> MergeSettings:
    """Move an amount by `delta`, clipped to its range. The threshold moves only in the two
    hist-match modes (as DFL)."""
    if name not in RANGES:
        raise OptionError(f"{name} is not a stepped merge setting")
    if name == "hist_match_threshold" and settings.mode not in HIST_MATCH_MODES:
        return settings
    lo, hi = RANGES[name]
    value = min(max(getattr(settings, name) + int(delta), lo), hi)
    return replace(settings, **{name: value})


def summary_lines(settings: MergeSettings, name: str) -> list[str]:
    """DFL's settings summary for one frame, line by line (the UI prints it)."""
    s = settings
    lines = [f"MergerConfig {name}:", f"Mode: {s.mode}"]
    if s.mode == "hist-match":
        lines.append(f"masked_hist_match: {s.masked_hist_match}")
    if s.mode in HIST_MATCH_MODES:
        lines.append(f"hist_match_threshold: {s.hist_match_threshold}")
    lines.append(f"mask_mode: {s.mask_mode}")
    if not s.is_raw:
        lines += [
            f"erode_mask_modifier: {s.erode_mask_modifier}",
            f"blur_mask_modifier: {s.blur_mask_modifier}",
            f"motion_blur_power: {s.motion_blur_power}",
        ]
    lines.append(f"output_face_scale: {s.output_face_scale}")
    if not s.is_raw:
        lines += [
            f"color_transfer_mode: {s.color_transfer_mode or NONE}",
            f"sharpen_mode : {s.sharpen_mode or NONE}",
            f"blursharpen_amount : {s.blur_sharpen_amount}",
            f"image_denoise_power: {s.image_denoise_power}",
            f"bicubic_degrade_power: {s.bicubic_degrade_power}",
            f"color_degrade_power: {s.color_degrade_power}",
        ]
    lines.append("=" * 16)
    return lines


# --- The non-interactive questions (DFL's ask_settings order, labels and prompt defaults) --------


def _numbered(choices: tuple[str, ...], offset: int) -> tuple[str, ...]:
    head = (f"0 {NONE}",) if offset == 1 else ()
    return head + tuple(f"{i + offset} {c}" for i, c in enumerate(choices))


# The lists DFL prints above its numbered questions, "(n) name" per line (the UI prints them).
NUMBERED_CHOICES: dict[str, tuple[str, ...]] = {
    "mode": _numbered(MODES, 0),
    "mask_mode": _numbered(MASK_MODES, 0),
    "sharpen_mode": _numbered(SHARPEN_MODES, 1),
}


def choice_lines(name: str) -> list[str]:
    """DFL's listing before a numbered question, e.g. ['Choose mode:', '(0) original', ...]."""
    title = {"mode": "Choose mode:", "mask_mode": "Choose mask mode:"}
    lines = [title.get(name, "Choose sharpen mode:")]
    for entry in NUMBERED_CHOICES[name]:
        number, _, label = entry.partition(" ")
        lines.append(f"({number}) {'None' if label == NONE else label}")
    return lines


def _validator(name: str) -> Any:
    def validate(value: Any, resolved: Mapping[str, Any]) -> Any:
        parsed = parse_value(name, value)
        return NONE if parsed is None else parsed

    return validate


def _not_raw(resolved: Mapping[str, Any]) -> bool:
    return resolved.get("mode") not in RAW_MODES


def _int_option(name: str, label: str, help_text: str, **extra: Any) -> Option:
    lo, hi = RANGES[name]
    return Option(
        name=name,
        label=label,
        type=int,
        default=0,
        range=(lo, hi),
        hint=f"{lo}..{hi}",
        group="merge",
        help=help_text,
        **{"when": _not_raw, **extra},
    )


MERGE_OPTIONS: tuple[Option, ...] = (
    Option(
        name="mode",
        label="Choose mode",
        type=str,
        default="overlay",
        hint=" / ".join(NUMBERED_CHOICES["mode"]),
        validate=_validator("mode"),
        group="merge",
        help="How the predicted face is put into the frame: original (unchanged frame), overlay, "
        "hist-match, seamless (Poisson clone), seamless-hist-match, raw-rgb (the predicted "
        "square pasted as is), raw-predict (the predicted face alone). A number or a name.",
    ),
    Option(
        name="masked_hist_match",
        label="Masked hist match?",
        type=bool,
        default=True,
        group="merge",
        when=lambda r: r.get("mode") == "hist-match",
        help="Match the histograms inside the face mask only.",
    ),
    Option(
        name="hist_match_threshold",
        label="Hist match threshold",
        type=int,
        default=255,
        range=RANGES["hist_match_threshold"],
        hint="0..255",
        group="merge",
        when=lambda r: r.get("mode") in HIST_MATCH_MODES,
        help="255 is plain histogram matching; lower values map onto the darker part of the "
        "dst face's histogram.",
    ),
    Option(
        name="mask_mode",
        label="Choose mask mode",
        type=str,
        default="dst",
        hint=" / ".join(NUMBERED_CHOICES["mask_mode"]),
        validate=_validator("mask_mode"),
        group="merge",
        help="Which mask blends the face in: full (the whole square), dst (the dst landmarks' "
        "hull), the model's learned masks of the predicted (prd) or the dst face, their product "
        "or their sum. " + XSEG_MESSAGE + ", so DFL's modes 6-9 are not offered.",
    ),
    _int_option(
        "erode_mask_modifier",
        "Choose erode mask modifier",
        "Shrink (positive) or grow (negative) the mask, in pixels at 4x the model resolution.",
    ),
    _int_option(
        "blur_mask_modifier",
        "Choose blur mask modifier",
        "Feather the mask edge with a Gaussian blur of this size (pixels at 4x the model "
        "resolution).",
    ),
    _int_option(
        "motion_blur_power",
        "Choose motion blur power",
        "Blur the face along its motion between the neighbouring frames; 100 = the full motion.",
    ),
    _int_option(
        "output_face_scale",
        "Choose output face scale modifier",
        "Paste the face this many percent smaller (positive) or larger (negative).",
        when=None,
    ),
    Option(
        name="color_transfer_mode",
        label="Color transfer to predicted face",
        type=str,
        default=NONE,
        hint="/".join(COLOR_TRANSFER_MODES),
        validate=_validator("color_transfer_mode"),
        group="merge",
        when=_not_raw,
        help="Recolour the predicted face toward the dst face: rct (Reinhard, Lab statistics), "
        "lct (linear), mkl (Monge-Kantorovich), idt (iterative distribution transfer), sot "
        "(sliced optimal transport), mix (lct lightness, sot colour); '-m' variants use the "
        "masked face only. Enter for none.",
    ),
    Option(
        name="sharpen_mode",
        label="Choose sharpen mode",
        type=str,
        default=NONE,
        hint=" / ".join(NUMBERED_CHOICES["sharpen_mode"]),
        validate=_validator("sharpen_mode"),
        group="merge",
        when=_not_raw,
        help="Enhance details by applying sharpen filter.",
    ),
    _int_option(
        "blur_sharpen_amount",
        "Choose blur/sharpen amount",
        "Positive sharpens with the chosen filter, negative blurs (median).",
        when=lambda r: _not_raw(r) and r.get("sharpen_mode", NONE) != NONE,
    ),
    _int_option(
        "image_denoise_power",
        "Choose image degrade by denoise power",
        "Median-filter the frame around the face (the face itself is kept).",
    ),
    _int_option(
        "bicubic_degrade_power",
        "Choose image degrade by bicubic rescale power",
        "Downscale and upscale the frame around the face to soften it.",
    ),
    _int_option(
        "color_degrade_power",
        "Degrade color power of final image",
        "Blend toward the image reduced to a 256-colour palette.",
    ),
)

# Number of workers (DFL asks it after the settings, also in interactive mode).
WORKERS_LABEL = "Number of workers?"
WORKERS_DEFAULT_MAX = 8


def workers_option(cpu_count: int) -> Option:
    """DFL's worker question; the default is min(8, cpus) (DFL's max(8, cpus) could exceed the
    valid range)."""
    cpus = max(1, int(cpu_count))
    return Option(
        name="workers",
        label=WORKERS_LABEL,
        type=int,
        default=min(WORKERS_DEFAULT_MAX, cpus),
        range=(1, cpus),
        group="merge",
        help="Processes (or threads) doing the image work of the merge in parallel.",
    )


def settings_from_options(
    values: Mapping[str, Any], base: MergeSettings | None = None
) -> MergeSettings:
    """MergeSettings from resolved MERGE_OPTIONS values; keys it does not know are ignored, and
    settings not in `values` come from `base` (default: the interactive defaults)."""
    start = (base or MergeSettings()).to_json()
    known = set(start)
    start.update({k: v for k, v in values.items() if k in known})
    return MergeSettings.from_json(start)


def questionnaire_defaults() -> MergeSettings:
    """The settings a user gets pressing Enter at every non-interactive question."""
    return settings_from_options({o.name: o.default for o in MERGE_OPTIONS})
