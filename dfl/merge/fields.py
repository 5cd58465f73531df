"""The masked merger's settings as data: names, ranges, parsing, MergeSettings and its JSON.

Facts (DFL's MergerConfig.py, docs/merge.md "Settings"): two sets of defaults exist. The interactive
merger starts from the constructor's (overlay, mask learned-prd*learned-dst, rct, threshold 238);
the non-interactive questions offer others (mask dst, no colour transfer, threshold 255). XSeg mask
modes and super resolution are left out: they need networks dfl does not ship.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from dfl.options import OptionError

# Modes, in DFL's numbering (the number is the index; `1`..`6` and `` ` `` keys pick them).
MODES: tuple[str, ...] = (
    "original",
    "overlay",
    "hist-match",
    "seamless",
    "seamless-hist-match",
    "raw-rgb",
    "raw-predict",
)
RAW_MODES = frozenset({"raw-rgb", "raw-predict"})
HIST_MATCH_MODES = frozenset({"hist-match", "seamless-hist-match"})
SEAMLESS_MODES = frozenset({"seamless", "seamless-hist-match"})

# Mask modes 0-5 of DFL (6-9 are XSeg modes, not supported).
MASK_MODES: tuple[str, ...] = (
    "full",
    "dst",
    "learned-prd",
    "learned-dst",
    "learned-prd*learned-dst",
    "learned-prd+learned-dst",
)
XSEG_MASK_MODES: tuple[str, ...] = (
    "XSeg-prd",
    "XSeg-dst",
    "XSeg-prd*XSeg-dst",
    "learned-prd*learned-dst*XSeg-prd*XSeg-dst",
)

# Colour transfer: DFL's number n is index n - 1 here; number 0 is "none" (None).
COLOR_TRANSFER_MODES: tuple[str, ...] = (
    "rct",
    "lct",
    "mkl",
    "mkl-m",
    "idt",
    "idt-m",
    "sot-m",
    "mix-m",
)
SHARPEN_MODES: tuple[str, ...] = ("box", "gaussian")  # DFL 1, 2; 0 is "none" (None)
NONE = "none"

# Inclusive ranges of the integer settings (DFL's clip limits).
RANGES: dict[str, tuple[int, int]] = {
    "hist_match_threshold": (0, 255),
    "erode_mask_modifier": (-400, 400),
    "blur_mask_modifier": (0, 400),
    "motion_blur_power": (0, 100),
    "output_face_scale": (-50, 50),
    "blur_sharpen_amount": (-100, 100),
    "image_denoise_power": (0, 500),
    "bicubic_degrade_power": (0, 100),
    "color_degrade_power": (0, 100),
}
KEY_STEP = 1  # an amount key moves by 1
KEY_STEP_SHIFT = 5  # with Shift by 5

# DFL's own names for settings whose names differ here (accepted when reading JSON).
ALIASES: dict[str, str] = {"blursharpen_amount": "blur_sharpen_amount"}
XSEG_MESSAGE = "XSeg mask modes need an XSeg network, which dfl does not ship"


@dataclass(frozen=True)
class MergeSettings:
    """One frame's merge settings; the defaults are the interactive merger's starting values."""

    mode: str = "overlay"
    mask_mode: str = "learned-prd*learned-dst"
    masked_hist_match: bool = True
    hist_match_threshold: int = 238
    erode_mask_modifier: int = 0
    blur_mask_modifier: int = 0
    motion_blur_power: int = 0
    output_face_scale: int = 0
    color_transfer_mode: str | None = "rct"
    sharpen_mode: str | None = None
    blur_sharpen_amount: int = 0
    image_denoise_power: int = 0
    bicubic_degrade_power: int = 0
    color_degrade_power: int = 0

    def __post_init__(self) -> None:
        check_settings(self)

    @property
    def is_raw(self) -> bool:
        return self.mode in RAW_MODES

    def to_json(self) -> dict[str, Any]:
        """A plain dict (JSON types only); None stays null."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MergeSettings:
        """Settings from a dict; missing keys take the defaults, bad values raise OptionError."""
        if not isinstance(data, Mapping):
            raise OptionError(f"merge settings must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in data.items():
            name = ALIASES.get(key, key)
            if name not in known:
                raise OptionError(
                    f"unknown merge setting {key!r}; valid settings: {', '.join(sorted(known))}"
                )
            values[name] = parse_value(name, raw)
        return cls(**values)


def _choice(name: str, raw: object, choices: tuple[str, ...], offset: int) -> str | None:
    """A choice by name or by DFL's number (index + offset; number 0 is None when offset is 1)."""
    if isinstance(raw, bool):
        raise OptionError(f"{name}: expected a name or a number, got {raw!r}")
    if raw is None or str(raw).strip().lower() in ("", NONE, "0" if offset == 1 else NONE):
        if offset == 1:
            return None
        raise OptionError(f"{name}: a value is required")
    text = str(raw).strip()
    for choice in choices:
        if text.lower() == choice.lower():
            return choice
    if text.lstrip("-").isdigit():
        index = int(text) - offset
        if 0 <= index < len(choices):
            return choices[index]
    if name == "mask_mode" and (text in XSEG_MASK_MODES or text in ("6", "7", "8", "9")):
        raise OptionError(f"mask_mode {text}: {XSEG_MESSAGE}")
    numbered = ", ".join(f"{i + offset} {c}" for i, c in enumerate(choices))
    extra = f", 0 {NONE}" if offset == 1 else ""
    raise OptionError(f"{name}: {raw!r} is not one of {numbered}{extra}")


def _integer(name: str, raw: object) -> int:
    if isinstance(raw, bool):
        raise OptionError(f"{name}: expected a whole number, got {raw!r}")
    try:
        value = int(str(raw).strip()) if isinstance(raw, str) else raw
    except ValueError:
        value = None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise OptionError(f"{name}: expected a whole number, got {raw!r}")
    lo, hi = RANGES[name]
    if not lo <= value <= hi:
        raise OptionError(f"{name}: {value} is out of range; it must be in the range {lo}..{hi}")
    return value


def _boolean(name: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    word = str(raw).strip().lower()
    if word in ("y", "yes", "true", "1"):
        return True
    if word in ("n", "no", "false", "0"):
        return False
    raise OptionError(f"{name}: expected y or n, got {raw!r}")


def parse_value(name: str, raw: object) -> Any:
    """One setting's value from JSON or user text: names or DFL's numbers for the lists."""
    if name == "mode":
        return _choice(name, raw, MODES, 0)
    if name == "mask_mode":
        return _choice(name, raw, MASK_MODES, 0)
    if name == "color_transfer_mode":
        return _choice(name, raw, COLOR_TRANSFER_MODES, 1)
    if name == "sharpen_mode":
        return _choice(name, raw, SHARPEN_MODES, 1)
    if name == "masked_hist_match":
        return _boolean(name, raw)
    if name in RANGES:
        return _integer(name, raw)
    raise OptionError(f"unknown merge setting {name!r}")


def check_settings(settings: MergeSettings) -> None:
    """Raise OptionError when a field is not canonical (unknown name, wrong type, out of range)."""
    for f in fields(settings):
        value = getattr(settings, f.name)
        canonical = parse_value(f.name, value)
        if canonical != value or type(canonical) is not type(value):
            raise OptionError(f"{f.name}: {value!r} is not a valid value (use {canonical!r})")
