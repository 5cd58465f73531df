"""SAEHD's option helpers (docs/dfl-trainer.md §4.2): training constants, the batch-size
suggestion, pretraining's forced values and the summary order. The table itself is in
models/saehd/option_definitions.py, the rules between answers in models/saehd/option_rules.py.
Imported by models/saehd/model.py, which re-exports what the model contract needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dfl.common_options import COMMON_OPTIONS
from dfl.models.saehd.option_definitions import SAEHD_OPTIONS
from dfl.options import (
    Option,
    complete_options,
    ordered_options,
    with_defaults,
)

NAME = "SAEHD"
ASKS_OPTIONS = True

LR = 5e-5
LR_DROPOUT_KEEP = 0.3  # with lr_dropout y/cpu: each weight element is updated with p = 0.3
LR_COS_PERIOD = 500  # iterations of the cosine learning-rate swing while lr_dropout is on
CLIPNORM = 1.0  # global gradient norm limit when clipgrad is on

# The batch suggestion: 8 when the weakest chosen GPU has at least 4 GiB, else 4 (CPU: 4).
BIG_BATCH = 8
SMALL_BATCH = 4
BIG_BATCH_MIN_GPU_BYTES = 4 * 1024**3

PREVIEW_ROWS = 4
PREVIEW_MAX_HEIGHT = 800  # px: rows = min(4, batch, 800 // resolution)
PREVIEW_HISTORY_BASE = 10  # history frame every 10·max(1, res // 64) iterations


# What pretraining forces while it is on (the stored options stay unchanged).
PRETRAIN_DISPLAY_OVERRIDES: dict[str, Any] = {
    "lr_dropout": "n",
    "random_warp": False,
    "gan_power": 0.0,
    "random_hsv_power": 0.0,
    "face_style_power": 0.0,
    "bg_style_power": 0.0,
    "uniform_yaw": True,
}
PRETRAIN_OVERRIDES: dict[str, Any] = {
    **PRETRAIN_DISPLAY_OVERRIDES,
    "random_src_flip": True,
    "random_dst_flip": True,
}

# DFL's summary lists the options in its dict's insertion order, not ask order
# (docs/dfl-trainer.md §4.5).
SUMMARY_ORDER = (
    "resolution",
    "face_type",
    "models_opt_on_gpu",
    "archi",
    "ae_dims",
    "e_dims",
    "d_dims",
    "d_mask_dims",
    "masked_training",
    "eyes_mouth_prio",
    "uniform_yaw",
    "blur_out_mask",
    "adabelief",
    "lr_dropout",
    "random_warp",
    "random_hsv_power",
    "true_face_power",
    "face_style_power",
    "bg_style_power",
    "ct_mode",
    "clipgrad",
    "pretrain",
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


def suggested_batch_size(gpu_memory_bytes: int | None) -> int:
    """8 when the weakest chosen GPU has >= 4 GiB, else 4; None (the CPU) gives 4."""
    if gpu_memory_bytes is not None and gpu_memory_bytes >= BIG_BATCH_MIN_GPU_BYTES:
        return BIG_BATCH
    return SMALL_BATCH


def common_options(gpu_memory_bytes: int | None = None) -> tuple[Option, ...]:
    """COMMON_OPTIONS with SAEHD's batch-size suggestion for the chosen device."""
    return with_defaults(COMMON_OPTIONS, batch_size=suggested_batch_size(gpu_memory_bytes))


def option_table(gpu_memory_bytes: int | None = None) -> tuple[Option, ...]:
    """The whole table in DFL's ask order: the shared prompts, then SAEHD's own."""
    return common_options(gpu_memory_bytes) + SAEHD_OPTIONS


def full_options(options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """SAEHD's options with every missing one at its (derived) default; checks the values."""
    return complete_options(SAEHD_OPTIONS, options)


def effective_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options training actually uses: pretraining's forced values applied."""
    options = dict(options)
    if options.get("pretrain"):
        options.update(PRETRAIN_OVERRIDES)
    return options


def display_overrides(options: Mapping[str, Any]) -> dict[str, Any]:
    """For summary_text: what pretraining shows instead of the stored values."""
    return dict(PRETRAIN_DISPLAY_OVERRIDES) if options.get("pretrain") else {}


def summary_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options in DFL's summary order; keys it does not know follow in their own order."""
    return ordered_options(options, SUMMARY_ORDER)


def preview_history_every(options: Mapping[str, Any]) -> int:
    """Iterations between preview-history frames: 10·max(1, resolution // 64)."""
    return PREVIEW_HISTORY_BASE * max(1, int(options["resolution"]) // 64)
