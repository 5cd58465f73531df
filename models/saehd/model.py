"""SAEHD: DeepFaceLab's main model (GPL-3.0), rebuilt from its documented behaviour and numbers
(docs/dfl-trainer.md §4.2, docs/networks.md §2-3, docs/training.md §2, §6-8): the df and liae
networks with any of the archi opts u/d/t/c, the optimizers, the augmentation configs, the full
loss and the three loss groups of a training step (generator `src_dst`, true-face code
discriminator `D_code`, patch GAN `GAN`).
The option table lives in models/saehd/option_definitions.py (helpers in options.py, the rules
between answers in option_rules.py) and is re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from keras import ops

from dfl.backend.step import LossGroup, model_group
from dfl.data.augment import SCALE_RANGE_SAEHD, AugmentConfig
from dfl.data.landmarks import face_type_from_code
from dfl.models.contract import ModelSpec, Training
from dfl.models.saehd import losses as saehd_losses
from dfl.models.saehd.option_definitions import CT_MODES as CT_MODES
from dfl.models.saehd.option_definitions import FACE_TYPES as FACE_TYPES
from dfl.models.saehd.option_definitions import FIXED_OPTIONS as FIXED_OPTIONS
from dfl.models.saehd.option_definitions import OPTIONS as OPTIONS
from dfl.models.saehd.option_definitions import SAEHD_OPTIONS as SAEHD_OPTIONS
from dfl.models.saehd.option_rules import is_df, parse_archi
from dfl.models.saehd.options import (  # the option table and its helpers belong to this model
    ASKS_OPTIONS as ASKS_OPTIONS,
)
from dfl.models.saehd.options import (
    CLIPNORM,
    LR,
    LR_COS_PERIOD,
    LR_DROPOUT_KEEP,
    NAME,
    effective_options,
    full_options,
)
from dfl.models.saehd.options import SUMMARY_ORDER as SUMMARY_ORDER
from dfl.models.saehd.options import display_overrides as display_overrides
from dfl.models.saehd.options import option_table as option_table
from dfl.models.saehd.options import preview_history_every as preview_history_every
from dfl.models.saehd.options import summary_options as summary_options
from dfl.nn.archi_networks import Architecture
from dfl.nn.autoencoders import FORWARD_PASSES as AUTOENCODER_FORWARD_PASSES
from dfl.nn.autoencoders import (
    DFAutoencoder,
    LIAEAutoencoder,
    build_autoencoder,
)
from dfl.nn.optimizers import AdaBelief, RMSprop
from dfl.training.preview import autoencoder_pages


# -------------------------------------------------------------------------------- networks
def architecture(options: Mapping[str, Any]) -> tuple[str, Architecture]:
    """(layout, Architecture) from SAEHD options (missing ones take their defaults)."""
    options = full_options(options)
    layout, opts = parse_archi(options["archi"])
    arch = Architecture(
        resolution=int(options["resolution"]),
        ae_dims=int(options["ae_dims"]),
        e_dims=int(options["e_dims"]),
        d_dims=int(options["d_dims"]),
        d_mask_dims=int(options["d_mask_dims"]),
        opts=opts,
    )
    return layout, arch


def extra_outputs(options: Mapping[str, Any]) -> tuple[str, ...]:
    """The optional outputs the losses of these options need (dfl.nn.autoencoders.EXTRA_OUTPUTS)."""
    options = effective_options(full_options(options))
    extras = []
    if float(options["bg_style_power"]) > 0.0:
        extras.append("swap")
    if float(options["face_style_power"]) > 0.0:
        extras.append("swap_no_code_grad")
    if float(options["true_face_power"]) > 0.0 and is_df(options):
        extras.append("codes")
    return tuple(extras)


SAEHDModel = DFAutoencoder | LIAEAutoencoder


def build(options: Mapping[str, Any] | None = None) -> SAEHDModel:
    """The trainable autoencoder for these options: DFAutoencoder (networks encoder, inter,
    decoder_src, decoder_dst) or LIAEAutoencoder (encoder, inter_AB, inter_B, decoder).

    Its call returns pred_src, pred_src_mask, pred_dst, pred_dst_mask (plus the extra outputs
    the style and true-face losses need); `predict_preview(target_src, target_dst)` returns
    ss, ssm, dd, ddm, sd, sdm.
    """
    options = full_options(options)
    layout, arch = architecture(options)
    model = build_autoencoder(layout, arch, extra_outputs(options))
    model.face_type = options["face_type"]
    return model


def trained_networks(options: Mapping[str, Any]) -> tuple[str, ...]:
    """Names of the networks the generator optimizer updates (docs/training.md §6): for liae with
    random warp off (so also in pretraining), inter_AB is frozen."""
    options = effective_options(full_options(options))
    layout, _ = parse_archi(options["archi"])
    if layout == "df":
        return ("encoder", "inter", "decoder_src", "decoder_dst")
    if options["random_warp"]:
        return ("encoder", "inter_AB", "inter_B", "decoder")
    return ("encoder", "inter_B", "decoder")


def reinitialised_on_pretrain_off(options: Mapping[str, Any]) -> tuple[str, ...]:
    """Networks started afresh when pretraining is switched off (docs/training.md §7)."""
    layout, _ = parse_archi(full_options(options)["archi"])
    return ("inter",) if layout == "df" else ("inter_AB", "inter_B")


def predict_preview(
    model: SAEHDModel, target_src: np.ndarray, target_dst: np.ndarray
) -> dict[str, np.ndarray]:
    return model.predict_preview(target_src, target_dst)


def preview(
    model: SAEHDModel, inputs: dict[str, np.ndarray], fixed: bool = False
) -> list[tuple[str, np.ndarray]]:
    """SAEHD's preview pages (docs/dfl-trainer.md §6), run on the unwarped targets (every row, so
    `fixed`, the preview-history flag, changes nothing)."""
    return autoencoder_pages(NAME, model, inputs, head=getattr(model, "face_type", "f") == "head")


def batch_size(options: Mapping[str, Any], n_devices: int) -> int:
    """The batch in total, split evenly across GPUs: n · max(1, batch_size // n)."""
    n = max(1, n_devices)
    return n * max(1, int(options["batch_size"]) // n)


# ------------------------------------------------------------------------------- optimizer
def optimizer_settings(options: Mapping[str, Any]) -> dict[str, Any]:
    """The class and keyword arguments shared by SAEHD's optimizers (docs/training.md §6): the
    generator's and, with their own counters, the discriminators'."""
    options = effective_options(full_options(options))
    dropout_on = options["lr_dropout"] in ("y", "cpu")
    return {
        "cls": AdaBelief if options["adabelief"] else RMSprop,
        "learning_rate": LR,
        "lr_dropout": LR_DROPOUT_KEEP if dropout_on else 1.0,
        "lr_cos": LR_COS_PERIOD if dropout_on else 0,
        "clipnorm": CLIPNORM if options["clipgrad"] else 0.0,
    }


def make_optimizer(options: Mapping[str, Any], **kwargs: Any) -> AdaBelief | RMSprop:
    """The generator optimizer: AdaBelief or RMSprop, lr 5e-5, lr_dropout 0.3 + cos 500 when
    lr_dropout is y/cpu (not in pretraining), clipnorm 1.0 with clipgrad."""
    settings = optimizer_settings(options)
    cls = settings.pop("cls")
    return cls(**settings, **kwargs)


# ---------------------------------------------------------------------------- augmentation
def augment_configs(options: Mapping[str, Any]) -> tuple[AugmentConfig, AugmentConfig]:
    """(src, dst) sample configs (docs/training.md §8): scale ±0.15, flips from random_src_flip /
    random_dst_flip, random_warp, random HSV and colour transfer on src only, the eyes/mouth
    mask with eyes_mouth_prio, uniform yaw; pretraining forces its settings (§7 there)."""
    o = effective_options(full_options(options))
    ct_mode = o.get("ct_mode", "none")
    if o.get("pretrain") or ct_mode in (None, "", "none"):
        ct_mode = None
    common = {
        "resolution": int(o["resolution"]),
        "face_type": face_type_from_code(str(o["face_type"])),
        "random_warp": bool(o["random_warp"]),
        "scale_range": SCALE_RANGE_SAEHD,
        "eyes_mouth": bool(o["eyes_mouth_prio"]),
        "uniform_yaw": bool(o["uniform_yaw"]),
    }
    src = AugmentConfig(
        **common,
        random_flip=bool(o.get("random_src_flip", False)),
        random_hsv_power=float(o["random_hsv_power"]),
        ct_mode=ct_mode,
    )
    dst = AugmentConfig(**common, random_flip=bool(o.get("random_dst_flip", True)))
    return src, dst


# ---------------------------------------------------------------------------------- losses
REPORTED = ("loss", "src_loss", "dst_loss")


def loss_config(options: Mapping[str, Any]) -> saehd_losses.LossConfig:
    return saehd_losses.LossConfig.from_options(effective_options(full_options(options)))


def make_compute_losses(
    options: Mapping[str, Any],
    gan_discriminator: Any = None,
    code_discriminator: Any = None,
) -> Callable[[dict, dict], dict]:
    """The generator objective (docs/training.md §2, dfl.models.saehd.losses.generator_losses):
    compute_losses(outputs, inputs) -> {loss (Σ over the batch), src_loss, dst_loss}. The GAN
    and true-face terms need their discriminators (skipped when None)."""
    config = loss_config(options)
    gan = gan_discriminator if config.trains_gan else None
    code = code_discriminator if config.uses_true_face else None

    def compute_losses(outputs: dict, inputs: dict) -> dict:
        result = saehd_losses.generator_losses(outputs, inputs, config, gan, code)
        return {key: result[key] for key in REPORTED}

    return compute_losses


# ------------------------------------------------------------------------- training groups
G_GROUP, D_CODE_GROUP, GAN_GROUP = "src_dst", "D_code", "GAN"
OPTIMIZER_KEYS = {G_GROUP: "src_dst_opt", D_CODE_GROUP: "D_code_opt", GAN_GROUP: "GAN_opt"}
CODE_DISCRIMINATOR = "code_discriminator"
GAN_NETWORK = "GAN"
# a change of either re-initialises the GAN (docs/training.md §7)
GAN_SHAPE_OPTIONS = ("gan_patch_size", "gan_dims")
# DFL's TF scope of a network where it differs from its file name (its optimizer files name
# the accumulators by scope: DFL's Model_SAEHD/Model.py); shared with AMP
DFL_SCOPES = {GAN_NETWORK: "D_src", CODE_DISCRIMINATOR: "dis"}
TINY_OPTIONS = {  # the smallest SAEHD the option table allows, for tests and dfl bench --quick
    "resolution": 64,
    "ae_dims": 32,
    "e_dims": 16,
    "d_dims": 16,
    "d_mask_dims": 16,
    "batch_size": 2,
}


def _gan_dims(options: Mapping[str, Any]) -> int:
    return int(options.get("gan_dims", 16))


# Shared with AMP, whose generator and GAN groups are built the same way.
def build_gan(options: Mapping[str, Any]) -> Any:
    """The UNet patch discriminator of these options (gan_patch_size, gan_dims, resolution)."""
    from dfl.nn.discriminators import build_unet_patch_discriminator

    return build_unet_patch_discriminator(
        int(options["gan_patch_size"]),
        base_ch=_gan_dims(options),
        resolution=int(options["resolution"]),
        name=GAN_NETWORK,
    )


def generator_group(
    model: Any, variables: list[Any], compute_losses: Callable[[dict, dict], dict], optimizer: Any
) -> LossGroup:
    """The `src_dst` loss group: the autoencoder's losses on its own outputs."""
    return model_group(model, compute_losses, optimizer, name=G_GROUP, variables=variables)


def gan_group(
    gan: Any, model: Any, discriminator_losses: Callable[..., dict], config: Any, optimizer: Any
) -> LossGroup:
    """The `GAN` loss group: `discriminator_losses(gan, outputs, inputs, config)` on the
    autoencoder's outputs, training the discriminator only."""

    def gan_step(inputs: dict, training: bool) -> dict:
        outputs = model(inputs, training=training)
        return discriminator_losses(gan, outputs, inputs, config)

    return LossGroup(GAN_GROUP, gan.trainable_variables, optimizer, gan_step)


def gan_changes(
    stored: Mapping[str, Any], options: Mapping[str, Any]
) -> tuple[set[str], list[str]]:
    """(checkpoint keys started afresh, notes) when the GAN is on and gan_patch_size or gan_dims
    differ from the stored ones, also after a time with the GAN off: its saved state is kept
    while it is off (DFL's Model_SAEHD/Model.py, gan_model_changed; docs/training.md §7)."""
    if float(options.get("gan_power", 0.0)) <= 0.0:
        return set(), []
    changed = [k for k in GAN_SHAPE_OPTIONS if k in stored and stored[k] != options.get(k)]
    if not changed:
        return set(), []
    return {GAN_NETWORK, OPTIMIZER_KEYS[GAN_GROUP]}, [
        f"{', '.join(changed)} changed: the GAN starts afresh."
    ]


def make_training(options: Mapping[str, Any], model: SAEHDModel) -> Training:
    """The loss groups of one SAEHD iteration (docs/training.md §7): the generator (`src_dst`), then
    the true-face code discriminator (`D_code`, df with true_face_power, not pretraining), then
    the patch GAN (`GAN`, gan_power > 0, not pretraining); each with its own optimizer
    (optimizer_settings, own counters)."""
    from dfl.nn.discriminators import build_code_discriminator

    o = effective_options(full_options(options))
    config = saehd_losses.LossConfig.from_options(o)
    networks: dict[str, Any] = {}
    gan = code = None
    if config.uses_true_face:
        code_shape = model.inter.outputs[0].shape
        code = build_code_discriminator(int(code_shape[-1]), int(code_shape[1]))
        networks[CODE_DISCRIMINATOR] = code
    if config.trains_gan:
        gan = networks[GAN_NETWORK] = build_gan(o)
    g_losses = make_compute_losses(o, gan, code)
    g_vars = [v for n in trained_networks(o) for v in model.networks[n].trainable_variables]
    groups = [generator_group(model, g_vars, g_losses, make_optimizer(o, name="src_dst_opt"))]

    if code is not None and config.trains_code_discriminator:

        def code_step(inputs: dict, training: bool) -> dict:
            images = ops.concatenate([inputs["warped_src"], inputs["warped_dst"]], axis=0)
            codes = model.inter(model.encoder(images, training=training), training=training)
            src_code, dst_code = ops.split(codes, 2, axis=0)
            outputs = {"src_code": src_code, "dst_code": dst_code}
            return saehd_losses.code_discriminator_losses(code, outputs)

        opt = make_optimizer(o, name="D_code_opt")
        groups.append(LossGroup(D_CODE_GROUP, code.trainable_variables, opt, code_step))

    if gan is not None:
        opt = make_optimizer(o, name="GAN_opt")
        groups.append(gan_group(gan, model, saehd_losses.gan_discriminator_losses, config, opt))
    return Training.of(model, groups, OPTIMIZER_KEYS, networks)


def fresh_on_resume(
    stored: Mapping[str, Any], options: Mapping[str, Any]
) -> tuple[set[str], bool, list[str]]:
    """What a resume must not load: (checkpoint keys started afresh, whether the iteration and
    the loss history restart at 0, notes for the user).

    Pretraining switched off re-initialises the inter(s) and restarts the count; a changed
    gan_patch_size or gan_dims re-initialises the GAN and its optimizer (docs/training.md §7)."""
    fresh: set[str] = set()
    notes: list[str] = []
    reset = False
    if stored.get("pretrain") and not options.get("pretrain"):
        reset = True
        inters = reinitialised_on_pretrain_off(options)
        fresh.update(inters)
        notes.append(
            "Pretraining switched off: the iteration count restarts at 0 and "
            f"{', '.join(inters)} start afresh."
        )
    gan_fresh, gan_notes = gan_changes(stored, options)
    return fresh | gan_fresh, reset, notes + gan_notes


def layout(options: Mapping[str, Any]) -> str:
    """ "df" or "liae": how the networks are wired (also for the DeepFaceLive export)."""
    return parse_archi(full_options(options)["archi"])[0]


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
    fresh_on_resume=fresh_on_resume,
    preview_history_every=preview_history_every,
    export_layout=layout,
    dfl_scopes=DFL_SCOPES,
    forward_passes=lambda options: AUTOENCODER_FORWARD_PASSES[layout(options)],
)
