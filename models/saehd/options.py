"""SAEHD's option table and option helpers (docs/dfl-trainer.md §4.2): DFL's prompts with their
defaults, ranges, rounding, conditions and fixed-vs-changeable flags; pretraining's forced values
and the summary order. Imported by models/saehd/model.py, which re-exports them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dfl.nn.autoencoders import ARCHI_OPTS
from dfl.options import (
    COMMON_OPTIONS,
    Option,
    OptionError,
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

RESOLUTION_RANGE = (64, 640)
RESOLUTION_STEP = 16
RESOLUTION_STEP_DEEP = 32  # archi with 'd' or 't' (both go one level deeper)
FACE_TYPES = ("h", "mf", "f", "wf", "head")
MASKED_TRAINING_FACE_TYPES = ("wf", "head")  # masked_training is asked only for these
LAYOUTS = ("df", "liae")
LR_DROPOUT_CHOICES = ("n", "y", "cpu")
CT_MODES = ("none", "rct", "lct", "mkl", "idt", "sot")
GAN_PATCH_PER_RES = 8  # default gan_patch_size = resolution // 8
D_MASK_PER_D = 3  # default d_mask_dims = d_dims // 3, rounded up to even

# The batch suggestion: 8 when the weakest chosen GPU has at least 4 GiB, else 4 (CPU: 4).
BIG_BATCH = 8
SMALL_BATCH = 4
BIG_BATCH_MIN_GPU_BYTES = 4 * 1024**3

PREVIEW_ROWS = 4
PREVIEW_MAX_HEIGHT = 800  # px: rows = min(4, batch, 800 // resolution)
PREVIEW_HISTORY_BASE = 10  # history frame every 10·max(1, res // 64) iterations

ARCHI_RE = re.compile(rf"(?P<layout>{'|'.join(LAYOUTS)})(?:-(?P<opts>[{ARCHI_OPTS}]+))?")


# --------------------------------------------------------------------------- option helpers
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


def _validate_archi(value: str, resolved: Mapping[str, Any]) -> str:
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


def _d_mask_default(resolved: Mapping[str, Any]) -> int:
    third = int(resolved["d_dims"]) // D_MASK_PER_D
    return third + third % 2


def _gan_patch_default(resolved: Mapping[str, Any]) -> int:
    return final_resolution(resolved) // GAN_PATCH_PER_RES


def _gan_on(resolved: Mapping[str, Any]) -> bool:
    return float(resolved.get("gan_power", 0.0)) != 0.0


def _validate_true_face(value: float, resolved: Mapping[str, Any]) -> float:
    if value != 0.0 and not is_df(resolved):
        raise OptionError(
            f"true_face_power: {value} needs a df archi (this model is "
            f"{resolved.get('archi', '?')}); it stays 0.0"
        )
    return value


# ---------------------------------------------------------------------------- option table
# docs/dfl-trainer.md §4.2, in DFL's ask order; F (changeable=False) options are fixed at creation.
SAEHD_OPTIONS: tuple[Option, ...] = (
    Option(
        name="resolution",
        label="Resolution",
        type=int,
        default=128,
        range=RESOLUTION_RANGE,
        multiple_of=resolution_multiple,
        changeable=False,
        group="model",
        help="Side of the square face images the model learns, in pixels. More pixels show "
        "more detail but cost memory and time per iteration. Rounded down to a multiple of 16, "
        "or of 32 when the archi has -d or -t.",
    ),
    Option(
        name="face_type",
        label="Face type",
        type=str,
        default="f",
        choices=FACE_TYPES,
        changeable=False,
        group="model",
        help="How much of the head the model learns: h = half face (sharpest detail, but the "
        "cheeks are cut off), mf = mid-half face (about 30% wider than half), f = full face, "
        "wf = whole face including the forehead, head = the whole head (needs XSeg masks in "
        "both facesets). The facesets should be extracted with this face type or a larger one.",
    ),
    Option(
        name="archi",
        label="AE architecture",
        type=str,
        default="liae-ud",
        validate=_validate_archi,
        changeable=False,
        group="model",
        hint="df/liae[-udtc]",
        help="Network layout. df: one shared encoder and inter with a decoder per person; "
        "keeps more of the src identity but wants src and dst faces of similar shape. liae: "
        "two inter networks and one shared decoder; copes better with different face shapes "
        "and lighting. Optional letters after a dash, in any combination: u = stronger "
        "likeness to src (normalised code); d = double the resolution at about the same cost "
        "(experimental; resolution becomes a multiple of 32); t = one more down/up-scaling "
        "stage (resolution a multiple of 32); c = cosine activation instead of leaky ReLU "
        "(experimental). Examples: liae-ud, df-udt.",
    ),
    Option(
        name="ae_dims",
        label="AutoEncoder dimensions",
        type=int,
        default=256,
        range=(32, 1024),
        changeable=False,
        group="model",
        help="Width of the bottleneck code that carries everything the model knows about a "
        "face. Too small and details such as closed eyes get lost; larger needs more memory.",
    ),
    Option(
        name="e_dims",
        label="Encoder dimensions",
        type=int,
        default=64,
        range=(16, 256),
        multiple_of=2,
        round_up=True,
        changeable=False,
        group="model",
        help="Base channel count of the encoder. More channels learn more facial features and "
        "give a sharper result, at the cost of memory. Rounded up to an even number.",
    ),
    Option(
        name="d_dims",
        label="Decoder dimensions",
        type=int,
        default=64,
        range=(16, 256),
        multiple_of=2,
        round_up=True,
        changeable=False,
        group="model",
        help="Base channel count of the decoder(s). More channels give a sharper, more "
        "detailed result, at the cost of memory. Rounded up to an even number.",
    ),
    Option(
        name="d_mask_dims",
        label="Decoder mask dimensions",
        type=int,
        default=_d_mask_default,
        range=(16, 256),
        multiple_of=2,
        round_up=True,
        changeable=False,
        group="model",
        help="Base channel count of the decoder's mask branch; a third of the decoder "
        "dimensions is usually enough (the default). Raise it when the masks were edited by "
        "hand, e.g. to leave out obstacles, so that the learnt mask can follow them. Rounded "
        "up to an even number.",
    ),
    Option(
        name="masked_training",
        label="Masked training",
        type=bool,
        default=True,
        when=lambda r: r.get("face_type") in MASKED_TRAINING_FACE_TYPES,
        group="training",
        help="Count only the face inside the mask (full-face or XSeg) in the loss, so the "
        "model spends its effort on the face instead of the background. Asked for whole face "
        "and head only; smaller face types always train masked. Turning it off for a while "
        "lets a whole-face or head model learn the surroundings too.",
    ),
    Option(
        name="eyes_mouth_prio",
        label="Eyes and mouth priority",
        type=bool,
        default=False,
        group="training",
        help="Weigh the eyes and mouth much more heavily in the loss. Helps when the eyes look "
        "the wrong way or the teeth stay blurred.",
    ),
    Option(
        name="uniform_yaw",
        label="Uniform yaw distribution of samples",
        type=bool,
        default=False,
        group="augmentation",
        help="Draw samples evenly over head-turn (yaw) angles, so side views, which are rare "
        "in most facesets, are learnt as well as frontal ones instead of staying blurry.",
    ),
    Option(
        name="blur_out_mask",
        label="Blur out mask",
        type=bool,
        default=False,
        group="augmentation",
        help="Blur the background just outside the face mask in training samples, so what "
        "surrounds the face matters less to the model. Needs accurate XSeg masks in both "
        "facesets.",
    ),
    Option(
        name="models_opt_on_gpu",
        label="Place models and optimizer on GPU",
        type=bool,
        default=True,
        group="training",
        help="In DeepFaceLab, n kept the weights and optimizer state in system memory to free "
        "GPU memory. dfl keeps them on the training device on every backend (TensorFlow, JAX, "
        "torch), so this answer is stored for DFL users but changes nothing: neither the "
        "results nor where the variables live. To fit a bigger model, lower the batch size, "
        "resolution or dims.",
    ),
    Option(
        name="adabelief",
        label="Use AdaBelief optimizer?",
        type=bool,
        default=True,
        group="training",
        help="y trains with AdaBelief, n with RMSprop (learning rate 5e-5 either way). "
        "AdaBelief usually reaches a better, more general result and keeps two state tensors "
        "per weight instead of one, so it needs more memory.",
    ),
    Option(
        name="lr_dropout",
        label="Use learning rate dropout",
        type=str,
        default="n",
        choices=LR_DROPOUT_CHOICES,
        group="training",
        help="Learning-rate dropout: each step only a random 30% of every weight is updated, "
        "and the learning rate swings on a 500-iteration cosine. Turn it on late in training "
        "for a sharper face with less shimmer, before switching random warp off and before "
        "using GAN. y = on; n = off; cpu = on as well: DeepFaceLab drew the random masks in "
        "system memory to save GPU memory, while dfl draws them on the training device on "
        "every backend, so cpu and y train the same.",
    ),
    Option(
        name="random_warp",
        label="Enable random warp of samples",
        type=bool,
        default=True,
        group="augmentation",
        help="Randomly warp the input faces so the model learns expressions rather than "
        "copying pixels. Keep it on for most of the training; switching it off near the end "
        "sharpens the detail.",
    ),
    Option(
        name="random_hsv_power",
        label="Random hue/saturation/light intensity",
        type=float,
        default=0.0,
        range=(0.0, 0.3),
        group="augmentation",
        hint="0.0 .. 0.3",
        help="Randomly shift hue, saturation and brightness of the src input faces (not the "
        "targets) by up to this amount, which keeps the face colour steadier in the result. "
        "Needs a src faceset with varied lighting; 0.05 is typical, 0 turns it off.",
    ),
    Option(
        name="gan_power",
        label="GAN power",
        type=float,
        default=0.0,
        range=(0.0, 5.0),
        group="gan",
        hint="0.0 .. 5.0",
        help="Strength of an adversarial (GAN) loss that adds fine skin detail. Start it only "
        "once the face is well trained, with lr_dropout on and random warp off, and keep it "
        "on from then on. It can add artefacts; 0.1 is typical, 0 turns it off.",
    ),
    Option(
        name="gan_patch_size",
        label="GAN patch size",
        type=int,
        default=_gan_patch_default,
        range=(3, 640),
        when=_gan_on,
        group="gan",
        help="Size in pixels of the patches the GAN's discriminator judges. Bigger patches "
        "give better quality and need more memory; resolution / 8 (the default) is typical. "
        "Changing it starts the discriminator afresh.",
    ),
    Option(
        name="gan_dims",
        label="GAN dimensions",
        type=int,
        default=16,
        range=(4, 512),
        when=_gan_on,
        group="gan",
        help="Channel width of the GAN's discriminator; 16 is typical. Changing it starts the "
        "discriminator afresh.",
    ),
    Option(
        name="true_face_power",
        label="'True face' power.",
        type=float,
        default=0.0,
        range=(0.0, 1.0),
        when=is_df,
        validate=_validate_true_face,
        group="gan",
        hint="0.0000 .. 1.0",
        help="Experimental, df archis only: a discriminator on the inter's code pushes the "
        "swapped face toward the src identity. 0.01 is typical; higher values can distort the "
        "face. 0 turns it off.",
    ),
    Option(
        name="face_style_power",
        label="Face style power",
        type=float,
        default=0.0,
        range=(0.0, 100.0),
        group="loss",
        hint="0.0..100.0",
        help="Teach the swapped face the colours of the dst face inside the mask, so skin tone "
        "and lighting match dst. Start very low (about 0.001) and only after some 10k "
        "iterations; higher values risk a model collapse (make a backup first). 0 = off.",
    ),
    Option(
        name="bg_style_power",
        label="Background style power",
        type=float,
        default=0.0,
        range=(0.0, 100.0),
        group="loss",
        hint="0.0..100.0",
        help="Teach the area outside the face mask from dst, so the swap blends into dst's "
        "surroundings and looks more like dst. Risks a model collapse; 2.0 is typical, "
        "0 = off.",
    ),
    Option(
        name="ct_mode",
        label="Color transfer for src faceset",
        type=str,
        default="none",
        choices=CT_MODES,
        group="augmentation",
        help="Recolour each src sample toward a random dst sample, so the model sees dst-like "
        "skin tones. rct, lct, mkl, idt and sot are different colour-transfer methods; try "
        "them and compare the previews. none = off.",
    ),
    Option(
        name="clipgrad",
        label="Enable gradient clipping",
        type=bool,
        default=False,
        group="training",
        help="Limit the global norm of each step's gradient to 1. Makes a model collapse less "
        "likely, at a small cost in speed.",
    ),
    Option(
        name="pretrain",
        label="Enable pretraining mode",
        type=bool,
        default=False,
        group="training",
        help="Train on a large faceset of many different people (--pretraining-data-dir) to "
        "make a reusable starting point for later models. While on: no random warp, both "
        "flips and uniform yaw on, GAN, lr dropout, HSV and style powers off. Switching it off "
        "restarts the iteration count at 0 and the inter network(s) start afresh.",
    ),
)
OPTIONS = SAEHD_OPTIONS  # docs/design.md: added to COMMON_OPTIONS
FIXED_OPTIONS = tuple(o.name for o in SAEHD_OPTIONS if not o.changeable)

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
