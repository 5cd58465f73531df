"""AMP: DeepFaceLab's morphable model for real-time use (GPL-3.0), rebuilt from its documented
behaviour and numbers (docs/dfl-trainer.md §4.3, §6; docs/networks.md §5; docs/training.md
§3, §6-8): the networks (network.py), morph mixing, the losses (losses.py), the optimizers,
the augmentation configs, the generator and GAN loss groups and the three morph preview pages. The
option table lives in models/amp/options.py and is re-exported here.

As in DFL's last version, inter_src and inter_dst are never trained: they keep their random
initial weights, and the generator optimizer covers the encoder and the decoder only.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from dfl.data.augment import SCALE_RANGE_SAEHD, AugmentConfig
from dfl.data.landmarks import face_type_from_code
from dfl.models.amp import losses as amp_losses
from dfl.models.amp.network import (
    FORWARD_PASSES,
    MORPH_INPUT,
    AMPArchitecture,
    AMPAutoencoder,
    morph_channels,
)
from dfl.models.amp.options import ASKS_OPTIONS as ASKS_OPTIONS
from dfl.models.amp.options import (
    CLIPNORM,
    LR,
    LR_COS_PERIOD,
    LR_DROPOUT_KEEP,
    NAME,
    full_options,
)
from dfl.models.amp.options import CT_MODES as CT_MODES
from dfl.models.amp.options import FACE_TYPES as FACE_TYPES
from dfl.models.amp.options import FIXED_OPTIONS as FIXED_OPTIONS
from dfl.models.amp.options import OPTIONS as OPTIONS
from dfl.models.amp.options import SUMMARY_ORDER as SUMMARY_ORDER
from dfl.models.amp.options import display_overrides as display_overrides
from dfl.models.amp.options import option_table as option_table
from dfl.models.amp.options import preview_history_every as preview_history_every
from dfl.models.amp.options import summary_options as summary_options
from dfl.models.contract import ModelSpec, Training
from dfl.models.saehd.model import (
    DFL_SCOPES,
    GAN_NETWORK,
    OPTIMIZER_KEYS,
    build_gan,
    gan_changes,
    gan_group,
    generator_group,
)
from dfl.models.saehd.model import batch_size as batch_size
from dfl.nn.optimizers import AdaBelief
from dfl.training.preview import amp_pages

TRAINED_NETWORKS = ("encoder", "decoder")  # the inters stay at their random initial weights
FROZEN_NETWORKS = ("inter_src", "inter_dst")
MORPH_SEED_KEY = 0xA3F  # spawn key of the morph-mask stream (numpy SeedSequence)
PREVIEW_SEED = 0  # the preview's src -> src morph mask
EXPORT_LAYOUT = "amp"  # DeepFaceLive wiring with the morph_value input
# DFL's Model_AMP/Model.py names the dense layer of each inter "dense2" (it has no dense1)
DFL_LAYER_RENAMES = {"inter_src": {"dense1": "dense2"}, "inter_dst": {"dense1": "dense2"}}
TINY_OPTIONS = {  # the smallest AMP the option table allows, for tests and dfl bench --quick
    "resolution": 64,
    "ae_dims": 32,
    "inter_dims": 32,
    "e_dims": 16,
    "d_dims": 16,
    "d_mask_dims": 16,
    "batch_size": 2,
}


# -------------------------------------------------------------------------------- networks
def architecture(options: Mapping[str, Any]) -> AMPArchitecture:
    """The network sizes from AMP options (missing ones take their defaults)."""
    o = full_options(options)
    return AMPArchitecture(
        resolution=int(o["resolution"]),
        ae_dims=int(o["ae_dims"]),
        inter_dims=int(o["inter_dims"]),
        e_dims=int(o["e_dims"]),
        d_dims=int(o["d_dims"]),
        d_mask_dims=int(o["d_mask_dims"]),
    )


def build(options: Mapping[str, Any] | None = None) -> AMPAutoencoder:
    """The AMP autoencoder (networks encoder, inter_src, inter_dst, decoder). Its call needs
    warped_src, warped_dst and morph_mask (see `with_morph_mask`)."""
    o = full_options(options)
    model = AMPAutoencoder(architecture(o))
    model.morph_factor = float(o["morph_factor"])
    return model


# ----------------------------------------------------------------------------- morph mask
def morph_mask(
    rng: np.random.Generator, batch: int, inter_dims: int, morph_factor: float
) -> np.ndarray:
    """(batch, inter_dims) float32 rows of 0/1, each with exactly int(inter_dims·morph_factor)
    ones at random places (1 = the code channel comes from inter_src)."""
    ones = morph_channels(inter_dims, morph_factor)
    keys = rng.random((batch, inter_dims))
    # the `ones` smallest random keys of each row: a uniformly random subset of that size
    chosen = np.argsort(keys, axis=1)[:, :ones]
    mask = np.zeros((batch, inter_dims), dtype=np.float32)
    np.put_along_axis(mask, chosen, 1.0, axis=1)
    return mask


def _batch_rng(iteration: int, inputs: Mapping[str, np.ndarray]) -> np.random.Generator:
    """A generator fixed by the iteration and the batch content (so by the batch seed)."""
    digest = zlib.crc32(np.ascontiguousarray(inputs["warped_src"]).tobytes())
    return np.random.default_rng(np.random.SeedSequence([MORPH_SEED_KEY, iteration, digest]))


def with_morph_mask(
    options: Mapping[str, Any], inputs: Mapping[str, np.ndarray], iteration: int = 0
) -> dict[str, np.ndarray]:
    """The inputs with a fresh `morph_mask`, drawn on the host so every backend sees the same."""
    o = full_options(options)
    batch = int(np.asarray(inputs["warped_src"]).shape[0])
    mask = morph_mask(
        _batch_rng(iteration, inputs), batch, int(o["inter_dims"]), float(o["morph_factor"])
    )
    return {**inputs, MORPH_INPUT: mask}


# ------------------------------------------------------------------------------- previews
def preview(
    model: AMPAutoencoder, inputs: dict[str, np.ndarray], fixed: bool = False
) -> list[tuple[str, np.ndarray]]:
    """AMP's three morph pages (docs/dfl-trainer.md §6) for one sample: a random one of the shown
    rows for the live preview, the first for the history (`fixed`)."""
    rng = np.random.default_rng(None if not fixed else PREVIEW_SEED)
    factor = getattr(model, "morph_factor", 0.5)
    mask = morph_mask(rng, 1, model.arch.inter_dims, factor)
    return amp_pages(NAME, model, inputs, mask, index=0 if fixed else None, rng=rng)


# ------------------------------------------------------------------------------- optimizer
def make_optimizer(options: Mapping[str, Any], **kwargs: Any) -> AdaBelief:
    """AdaBelief (always), lr 5e-5; lr_dropout 0.3 + cos 500 with lr_dropout y or cpu (the same
    here), clipnorm 1.0 with clipgrad (docs/training.md §6)."""
    o = full_options(options)
    dropout_on = o["lr_dropout"] in ("y", "cpu")
    return AdaBelief(
        learning_rate=LR,
        lr_dropout=LR_DROPOUT_KEEP if dropout_on else 1.0,
        lr_cos=LR_COS_PERIOD if dropout_on else 0,
        clipnorm=CLIPNORM if o["clipgrad"] else 0.0,
        **kwargs,
    )


# ---------------------------------------------------------------------------- augmentation
def augment_configs(options: Mapping[str, Any]) -> tuple[AugmentConfig, AugmentConfig]:
    """(src, dst) sample configs (docs/training.md §8): scale ±0.15, flips from random_src_flip /
    random_dst_flip, random_warp, colour transfer on src, uniform yaw, eyes/mouth mask always."""
    o = full_options(options)
    ct_mode = o.get("ct_mode", "none")
    common = {
        "resolution": int(o["resolution"]),
        "face_type": face_type_from_code(str(o["face_type"])),
        "random_warp": bool(o["random_warp"]),
        "scale_range": SCALE_RANGE_SAEHD,
        "eyes_mouth": True,
        "uniform_yaw": bool(o["uniform_yaw"]),
    }
    src = AugmentConfig(
        **common,
        random_flip=bool(o.get("random_src_flip", False)),
        ct_mode=None if ct_mode in (None, "", "none") else ct_mode,
    )
    dst = AugmentConfig(**common, random_flip=bool(o.get("random_dst_flip", True)))
    return src, dst


def step_inputs(
    options: Mapping[str, Any], inputs: dict[str, np.ndarray], iteration: int
) -> dict[str, np.ndarray]:
    """What the training step is fed: the batch with its morph mask (the trainer calls this)."""
    return with_morph_mask(options, inputs, iteration)


# ---------------------------------------------------------------------------------- losses
def make_compute_losses(
    options: Mapping[str, Any], gan_discriminator: Any = None
) -> Callable[[dict, dict], dict]:
    """compute_losses(outputs, inputs) -> {loss (Σ over the batch), src_loss, dst_loss}."""
    config = amp_losses.AMPLossConfig.from_options(full_options(options))
    gan = gan_discriminator if config.trains_gan else None

    def compute_losses(outputs: dict, inputs: dict) -> dict:
        return amp_losses.generator_losses(outputs, inputs, config, gan)

    return compute_losses


# ------------------------------------------------------------------------- training groups
def make_training(options: Mapping[str, Any], model: AMPAutoencoder) -> Training:
    """The loss groups of one AMP iteration (docs/training.md §7): the generator (`src_dst`: encoder
    and decoder), then the patch GAN (`GAN`) when gan_power > 0, each with its own AdaBelief."""
    o = full_options(options)
    config = amp_losses.AMPLossConfig.from_options(o)
    networks: dict[str, Any] = {}
    gan = None
    if config.trains_gan:
        gan = networks[GAN_NETWORK] = build_gan(o)
    g_losses = make_compute_losses(o, gan)
    g_vars = [v for n in TRAINED_NETWORKS for v in model.networks[n].trainable_variables]
    groups = [generator_group(model, g_vars, g_losses, make_optimizer(o, name="src_dst_opt"))]
    if gan is not None:
        opt = make_optimizer(o, name="GAN_opt")
        groups.append(gan_group(gan, model, amp_losses.gan_discriminator_losses, config, opt))
    return Training.of(model, groups, OPTIMIZER_KEYS, networks)


def fresh_on_resume(
    stored: Mapping[str, Any], options: Mapping[str, Any]
) -> tuple[set[str], bool, list[str]]:
    """What a resume must not load: a changed gan_patch_size or gan_dims re-initialises the GAN
    and its optimizer (docs/training.md §7); AMP never restarts its iteration count."""
    fresh, notes = gan_changes(stored, options)
    return fresh, False, notes


SPEC = ModelSpec(
    name=NAME,
    build=build,
    make_training=make_training,
    augment_configs=augment_configs,
    batch_size=batch_size,
    preview=preview,
    tiny_options=TINY_OPTIONS,
    option_table=option_table,
    asks_options=ASKS_OPTIONS,
    summary_options=summary_options,
    display_overrides=display_overrides,
    step_inputs=step_inputs,
    fresh_on_resume=fresh_on_resume,
    preview_history_every=preview_history_every,
    export_layout=lambda options: EXPORT_LAYOUT,
    dfl_layer_renames=DFL_LAYER_RENAMES,
    dfl_scopes=DFL_SCOPES,
    forward_passes=lambda options: FORWARD_PASSES,
)
