"""The options every model shares (docs/dfl-trainer.md §4.1), in DFL's ask order: autobackups,
preview history, target iteration, flips, batch size, and dfl's own bf16, sample cache and seed.
Each model's option table starts with these (models/<name>/options.py)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from dfl.options import Option

NEW_SEED_BOUND = 2**31  # a drawn seed stays below it (the batch seed adds the iteration)


def random_seed(resolved: Mapping[str, Any]) -> int:
    """A new model's seed: drawn once when its options are first resolved (docs/training.md,
    "Seed"), then stored; `resolved` is not used."""
    return secrets.randbelow(NEW_SEED_BOUND)


COMMON_OPTIONS: tuple[Option, ...] = (
    Option(
        name="autobackup_hour",
        label="Autobackup every N hour",
        type=int,
        default=2,
        range=(0, 24),
        hint="0..24",
        group="saving",
        help="Every N hours of training, copy the current model state into the autobackups "
        "folder (newest is 01). 0 turns autobackups off.",
    ),
    Option(
        name="autobackup_keep",
        label="Number of autobackups to keep",
        type=int,
        default=8,
        range=(1, 100),
        group="saving",
        when=lambda r: r.get("autobackup_hour", 0) != 0,
        help="How many autobackups are kept; when a new one is made the oldest beyond this "
        "count is removed.",
    ),
    Option(
        name="write_preview_history",
        label="Write preview history",
        type=bool,
        default=False,
        group="saving",
        help="Save a preview image every few iterations into the model's history folder, to "
        "watch progress over time.",
    ),
    Option(
        name="target_iter",
        label="Target iteration",
        type=int,
        default=0,
        range=(0, None),
        group="training",
        help="Training stops once the model reaches this iteration, after a save. 0: no "
        "target, train until you stop it. Change it on resume with --override or "
        "--opt target_iter=N.",
    ),
    Option(
        name="random_src_flip",
        label="Flip SRC faces randomly",
        type=bool,
        default=False,
        group="augmentation",
        help="Mirror src samples at random. Gives more angles to learn from, but faces are "
        "not symmetric, so the result can look less like the person.",
    ),
    Option(
        name="random_dst_flip",
        label="Flip DST faces randomly",
        type=bool,
        default=True,
        group="augmentation",
        help="Mirror dst samples at random. Helps the model generalise from src to dst when "
        "src flipping is off.",
    ),
    Option(
        name="batch_size",
        label="Batch_size",
        type=int,
        default=4,
        range=(1, None),
        group="training",
        help="Samples per iteration. Bigger batches generalise better but need more memory; "
        "lower it if training runs out of memory.",
    ),
    Option(
        name="bf16",
        label="Use bf16 mixed precision",
        type=bool,
        default=False,
        group="training",
        help="Compute in bfloat16 while weights, optimizer state and losses stay float32. Faster "
        "on GPUs with bf16 tensor cores (NVIDIA Ampere and newer), usually slower on a CPU. "
        "If a step gives NaN in bf16, it is turned off for this model and the step is done "
        "again in float32.",
    ),
    Option(
        name="sample_cache_mb",
        label="Sample cache (MB)",
        type=int,
        default=1024,
        range=(0, None),
        group="training",
        ask=False,
        help="Memory for decoded faces kept between uses, so each face is read and decoded "
        "once; 0 decodes every time. Set it with --opt sample_cache_mb=N.",
    ),
    Option(
        name="seed",
        label="Random seed",
        type=int,
        default=random_seed,  # a new model draws its own; stored with its options
        range=(0, 2**32 - 1),
        group="training",
        ask=False,
        help="Seed for the first weights, the sample order and augmentation. A new model draws "
        "a random one and keeps it in its state, so a run started again with the same seed "
        "(--opt seed=N) repeats it; set it with --opt seed=N.",
    ),
)
