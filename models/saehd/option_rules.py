"""How SAEHD's options depend on one another (docs/dfl-trainer.md §4.2): the archi string, the
resolution's rounding for the archi, and the defaults and checks derived from other answers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dfl.nn.archi_networks import ARCHI_OPTS
from dfl.options import OptionError

RESOLUTION_RANGE = (64, 640)
RESOLUTION_STEP = 16
RESOLUTION_STEP_DEEP = 32  # archi with 'd' or 't' (both go one level deeper)
LAYOUTS = ("df", "liae")
GAN_PATCH_PER_RES = 8  # default gan_patch_size = resolution // 8
D_DIMS_DEFAULT = 64  # d_dims offered to a new model
D_MASK_PER_D = 3  # default d_mask_dims = d_dims // 3, rounded up to even

ARCHI_RE = re.compile(rf"(?P<layout>{'|'.join(LAYOUTS)})(?:-(?P<opts>[{ARCHI_OPTS}]+))?")


def parse_archi(archi: str) -> tuple[str, str]:
    """'liae-ud' -> ('liae', 'ud'); raises OptionError for anything DFL would not accept."""
    text = str(archi).strip().lower()
    match = ARCHI_RE.fullmatch(text)
    if match is None:
        raise OptionError(
            f"archi: {archi!r} is not df or liae, optionally followed by '-' and letters "
            f"from {ARCHI_OPTS} (e.g. liae-ud, df-udt)"
        )
    return match["layout"], match["opts"] or ""


def validate_archi(value: str, resolved: Mapping[str, Any]) -> str:
    layout, opts = parse_archi(value)
    return f"{layout}-{opts}" if opts else layout


def archi_opts(resolved: Mapping[str, Any]) -> str:
    """The opts letters of the archi resolved so far ('' when none or not resolved yet)."""
    archi = resolved.get("archi")
    if not archi:
        return ""
    try:
        return parse_archi(archi)[1]
    except OptionError:
        return ""


def is_df(resolved: Mapping[str, Any]) -> bool:
    return str(resolved.get("archi", "")).strip().lower().startswith("df")


def resolution_multiple(resolved: Mapping[str, Any]) -> int:
    """16, or 32 when the archi has 'd' or 't' (decision 10; DFL rounds to 32 for 'd' only)."""
    return RESOLUTION_STEP_DEEP if {"d", "t"} & set(archi_opts(resolved)) else RESOLUTION_STEP


def final_resolution(resolved: Mapping[str, Any]) -> int:
    """The resolution after the archi's rounding (what the model will be built with)."""
    res = int(resolved["resolution"])
    step = resolution_multiple(resolved)
    rounded = (res // step) * step
    return max(rounded, -(-RESOLUTION_RANGE[0] // step) * step)


def d_mask_default(resolved: Mapping[str, Any]) -> int:
    """DFL derives it from the d_dims default offered before the prompt, not from the answer
    (Model_SAEHD/Model.py): 64 gives 21, rounded up to even, 22, whatever d_dims is typed."""
    third = D_DIMS_DEFAULT // D_MASK_PER_D
    return third + third % 2


def gan_patch_default(resolved: Mapping[str, Any]) -> int:
    return final_resolution(resolved) // GAN_PATCH_PER_RES


def gan_on(resolved: Mapping[str, Any]) -> bool:
    return float(resolved.get("gan_power", 0.0)) != 0.0


def validate_true_face(value: float, resolved: Mapping[str, Any]) -> float:
    if value != 0.0 and not is_df(resolved):
        raise OptionError(
            f"true_face_power: {value} needs a df archi (this model is "
            f"{resolved.get('archi', '?')}); it stays 0.0"
        )
    return value
