"""AMP's option table and option helpers (docs/dfl-trainer.md §4.3-4.6): DFL's prompts in its ask
order after the shared ones, with defaults, ranges, rounding, conditions and fixed-vs-changeable
flags. Options that behave exactly as SAEHD's reuse SAEHD's Option objects
(models/saehd/option_definitions.py).
Imported by models/amp/model.py, which re-exports them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from dfl.common_options import COMMON_OPTIONS
from dfl.models.saehd import options as saehd_options
from dfl.models.saehd.option_definitions import CT_MODES as CT_MODES
from dfl.models.saehd.option_definitions import SAEHD_OPTIONS
from dfl.models.saehd.options import preview_history_every as preview_history_every
from dfl.options import (
    Option,
    complete_options,
    ordered_options,
    with_defaults,
)

NAME = "AMP"
ASKS_OPTIONS = True

RESOLUTION_RANGE = (64, 640)
RESOLUTION_STEP = 32  # the encoder goes five levels deep: res / 32 at the inter
FACE_TYPES = ("f", "wf", "head")
INTER_DIMS_RANGE = (32, 2048)
MORPH_FACTOR_RANGE = (0.1, 0.5)
BATCH_SIZE = 8  # AMP suggests 8 whatever the device

_SAEHD = {option.name: option for option in SAEHD_OPTIONS}


def _same_as_saehd(name: str, **changes: Any) -> Option:
    """SAEHD's option `name`, with `changes` (help texts, defaults) where AMP differs."""
    return replace(_SAEHD[name], **changes)


# docs/dfl-trainer.md §4.3, in DFL's ask order; F (changeable=False) options are fixed at creation.
AMP_OPTIONS: tuple[Option, ...] = (
    Option(
        name="resolution",
        label="Resolution",
        type=int,
        default=224,
        range=RESOLUTION_RANGE,
        multiple_of=RESOLUTION_STEP,
        changeable=False,
        group="model",
        help="Side of the square face images the model learns, in pixels. More pixels show "
        "more detail but cost memory and time per iteration. Always rounded down to a "
        "multiple of 32.",
    ),
    Option(
        name="face_type",
        label="Face type",
        type=str,
        default="wf",
        choices=FACE_TYPES,
        changeable=False,
        group="model",
        help="How much of the head the model learns: f = full face, wf = whole face "
        "including the forehead, head = the whole head (needs XSeg masks in both facesets).",
    ),
    _same_as_saehd("ae_dims"),
    Option(
        name="inter_dims",
        label="Inter dimensions",
        type=int,
        default=1024,
        range=INTER_DIMS_RANGE,
        changeable=False,
        group="model",
        help="Channels of the code the two inter networks make from the encoder's output; "
        "the morph mixes these channels between src and dst. Should be at least the "
        "AutoEncoder dimensions.",
    ),
    _same_as_saehd("e_dims"),
    _same_as_saehd("d_dims"),
    _same_as_saehd("d_mask_dims"),
    Option(
        name="morph_factor",
        label="Morph factor.",
        type=float,
        default=0.5,
        range=MORPH_FACTOR_RANGE,
        changeable=False,
        group="model",
        hint="0.1 .. 0.5",
        help="Share of the code channels that come from the src inter during training; the "
        "rest come from the dst inter, a fresh random choice for every sample. The larger "
        "it is, the more the swapped face looks like src at the morph value used later "
        "(export, merge). 0.5 is typical. As in DeepFaceLab's last version, both inter "
        "networks keep their random starting weights and are never trained.",
    ),
    _same_as_saehd("uniform_yaw"),
    _same_as_saehd("blur_out_mask"),
    _same_as_saehd("lr_dropout"),
    _same_as_saehd("models_opt_on_gpu"),
    _same_as_saehd("random_warp"),
    _same_as_saehd(
        "gan_power",
        help="Strength of an adversarial (GAN) loss that adds fine skin detail. Start it only "
        "once the face is well trained, and keep it on from then on. It can add artefacts; "
        "0.1 is typical, 0 turns it off.",
    ),
    _same_as_saehd("gan_patch_size"),
    _same_as_saehd("gan_dims"),
    _same_as_saehd(
        "ct_mode",
        help="Recolour each src sample toward a random dst sample, so the model sees dst-like "
        "skin tones. rct, lct, mkl, idt and sot are different colour-transfer methods; lct "
        "usually does well when the src faceset is varied. none = off.",
    ),
    _same_as_saehd("clipgrad"),
)
OPTIONS = AMP_OPTIONS  # docs/design.md: added to COMMON_OPTIONS
FIXED_OPTIONS = tuple(o.name for o in AMP_OPTIONS if not o.changeable)

# DFL's summary lists the options in its dict's insertion order, not ask order
# (docs/dfl-trainer.md §4.5).
SUMMARY_ORDER = (
    "resolution",
    "face_type",
    "models_opt_on_gpu",
    "ae_dims",
    "inter_dims",
    "e_dims",
    "d_dims",
    "d_mask_dims",
    "morph_factor",
    "uniform_yaw",
    "blur_out_mask",
    "lr_dropout",
    "random_warp",
    "ct_mode",
    "clipgrad",
    "autobackup_hour",
    "autobackup_keep",
    "write_preview_history",
    "target_iter",
    "random_src_flip",
    "random_dst_flip",
    "batch_size",
    "gan_power",
    "gan_patch_size",
    "gan_dims",
)

# The constants AMP shares with SAEHD (docs/training.md §6: lr, lr_dropout, lr_cos, clipnorm).
LR = saehd_options.LR
LR_DROPOUT_KEEP = saehd_options.LR_DROPOUT_KEEP
LR_COS_PERIOD = saehd_options.LR_COS_PERIOD
CLIPNORM = saehd_options.CLIPNORM


def common_options(gpu_memory_bytes: int | None = None) -> tuple[Option, ...]:
    """COMMON_OPTIONS with AMP's batch-size suggestion (8 on any device)."""
    return with_defaults(COMMON_OPTIONS, batch_size=BATCH_SIZE)


def option_table(gpu_memory_bytes: int | None = None) -> tuple[Option, ...]:
    """The whole table in DFL's ask order: the shared prompts, then AMP's own."""
    return common_options(gpu_memory_bytes) + AMP_OPTIONS


def full_options(options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """AMP's options with every missing one at its (derived) default; checks the values."""
    return complete_options(AMP_OPTIONS, options)


def display_overrides(options: Mapping[str, Any]) -> dict[str, Any]:
    """AMP has no pretraining: the summary shows the stored values."""
    return {}


def summary_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options in DFL's summary order; keys it does not know follow in their own order."""
    return ordered_options(options, SUMMARY_ORDER)
