"""AMP's loss assembly (docs/training.md §3, §7) as pure functions of (outputs, inputs, config),
built from SAEHD's terms (dfl.models.saehd.losses) where they are the same.

Differences from SAEHD: masked training and eyes/mouth priority are always on; DSSIM always uses
two windows (5·DSSIM_{res/11.6} + 5·DSSIM_{res/23.2}); G adds a weak dst background term and a
total-variation term on the dst background; the patch GAN judges four images per sample (masked
pred and target, src and dst).

Two objectives, one per optimizer (each a per-sample vector summed over the batch,
docs/training.md §1):
- `generator_losses`: L_src + L_dst + background + TV (+ GAN terms); trains encoder + decoder;
- `gan_discriminator_losses`: the UNet patch discriminator `GAN`.
Outputs are those of dfl.models.amp.network.AMPAutoencoder; inputs are `Batch.as_inputs()`
with the em masks (target_*, mask_*, em_*).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keras import ops

from dfl.models.saehd.losses import (
    DSSIM_WEIGHT,
    GAN_BG_WEIGHT,
    GAN_TV_WEIGHT,
    Discriminator,
    LossConfig,
    Side,
    prepare_side,
    reconstruction_terms,
    split_terms,
)
from dfl.nn import losses

BACKGROUND_WEIGHT = 0.1  # weak dst background reconstruction
BACKGROUND_TV_WEIGHT = 1e-6  # total variation of the dst background
GAN_IMAGES = 4  # pred src, pred dst, target src, target dst
D_LOSS_TERMS = 8.0  # the D loss averages 8 BCE terms (centre and pixel logits of 4 images)


@dataclass(frozen=True)
class AMPLossConfig(LossConfig):
    """SAEHD's LossConfig with AMP's fixed choices: masked, eyes/mouth on, two DSSIM windows."""

    masked_training: bool = True
    eyes_mouth_prio: bool = True

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> AMPLossConfig:
        """From a resolved AMP option dict."""
        return cls(
            resolution=int(options["resolution"]),
            blur_out_mask=bool(options.get("blur_out_mask", False)),
            gan_power=float(options.get("gan_power", 0.0)),
        )

    @property
    def dssim_windows(self) -> tuple[tuple[float, int], ...]:
        """5·DSSIM_{int(res/11.6)} + 5·DSSIM_{int(res/23.2)} at every resolution."""
        first = int(self.resolution / losses.DSSIM_RES_PER_WINDOW)
        second = int(self.resolution / losses.DSSIM_RES_PER_SECOND_WINDOW)
        return ((DSSIM_WEIGHT / 2, first), (DSSIM_WEIGHT / 2, second))


def background_terms(dst: Side, pred_dst: Any) -> dict[str, Any]:
    """The weak dst background terms: 0.1·MSE and 1e-6·TV of pred_dst·(1 - mask_blur)."""
    anti = 1.0 - dst.mask_blur
    pred_bg = pred_dst * anti
    return {
        "background": BACKGROUND_WEIGHT * losses.mse(pred_bg, dst.target * anti),
        "background_tv": BACKGROUND_TV_WEIGHT * losses.total_variation_mse(pred_bg),
    }


def _gan_logits(gan: Discriminator, images: list[Any]) -> list[tuple[Any, Any]]:
    """(centre, pixel) logits of each image batch, from one discriminator pass over all."""
    center, pixels = gan(ops.concatenate(images, axis=0))
    n = len(images)
    return list(zip(ops.split(center, n, axis=0), ops.split(pixels, n, axis=0), strict=True))


def generator_terms(
    outputs: Mapping[str, Any],
    inputs: Mapping[str, Any],
    config: AMPLossConfig,
    gan_discriminator: Discriminator | None = None,
) -> dict[str, Any]:
    """Every weighted per-sample G term, shape (B,) each: src_*/dst_* (dssim, mse, eyes_mouth,
    mask), background, background_tv and, with gan_power > 0, gan, gan_tv, gan_bg."""
    src = prepare_side(inputs, "src", config)
    dst = prepare_side(inputs, "dst", config)
    pred_src = ops.convert_to_tensor(outputs["pred_src"])
    pred_dst = ops.convert_to_tensor(outputs["pred_dst"])
    terms: dict[str, Any] = {}
    for name, side, pred, pred_mask in (
        ("src", src, pred_src, outputs["pred_src_mask"]),
        ("dst", dst, pred_dst, outputs["pred_dst_mask"]),
    ):
        for key, value in reconstruction_terms(side, pred, pred_mask, config).items():
            terms[f"{name}_{key}"] = value
    terms.update(background_terms(dst, pred_dst))

    if config.trains_gan:
        if gan_discriminator is None:
            raise ValueError("gan_power > 0 needs the GAN discriminator")
        fakes = _gan_logits(
            gan_discriminator, [src.masked(pred_src, config), dst.masked(pred_dst, config)]
        )
        terms["gan"] = config.gan_weight * sum(
            losses.generator_adversarial_loss(center) + losses.generator_adversarial_loss(pixels)
            for center, pixels in fakes
        )
        terms["gan_tv"] = GAN_TV_WEIGHT * losses.total_variation_mse(pred_src)
        anti = 1.0 - src.mask_blur
        terms["gan_bg"] = GAN_BG_WEIGHT * losses.mse(pred_src * anti, src.target * anti)
    return terms


def generator_losses(
    outputs: Mapping[str, Any],
    inputs: Mapping[str, Any],
    config: AMPLossConfig,
    gan_discriminator: Discriminator | None = None,
) -> dict[str, Any]:
    """The G objective and what to report: `loss` = Σ_batch G; `src_loss`, `dst_loss` (L_src,
    L_dst batch means, without the background and GAN terms)."""
    terms = generator_terms(outputs, inputs, config, gan_discriminator)
    src, dst, total = split_terms(terms)
    return {"loss": ops.sum(total), "src_loss": ops.mean(src), "dst_loss": ops.mean(dst)}


def gan_discriminator_terms(
    gan_discriminator: Discriminator,
    outputs: Mapping[str, Any],
    inputs: Mapping[str, Any],
    config: AMPLossConfig,
) -> Any:
    """Per-sample D loss on the masked images: targets are real, predictions fake; the mean of
    the eight BCE terms (centre and pixel logits of the four images)."""
    src = prepare_side(inputs, "src", config)
    dst = prepare_side(inputs, "dst", config)
    fake_src = src.masked(ops.stop_gradient(outputs["pred_src"]), config)
    fake_dst = dst.masked(ops.stop_gradient(outputs["pred_dst"]), config)
    images = [src.masked(src.target, config), dst.masked(dst.target, config), fake_src, fake_dst]
    logits = _gan_logits(gan_discriminator, images)
    total: Any = 0.0
    for i, (center, pixels) in enumerate(logits):
        label = 1.0 if i < 2 else 0.0  # the two targets first, then the two predictions
        total = total + losses.bce(label, center) + losses.bce(label, pixels)
    return total / D_LOSS_TERMS


def gan_discriminator_losses(
    gan_discriminator: Discriminator,
    outputs: Mapping[str, Any],
    inputs: Mapping[str, Any],
    config: AMPLossConfig,
) -> dict[str, Any]:
    """GAN D objective (`loss`, Σ_batch) and `gan_d_loss` (batch mean). Needs a forward pass
    with the freshly updated generator."""
    per_sample = gan_discriminator_terms(gan_discriminator, outputs, inputs, config)
    return {"loss": ops.sum(per_sample), "gan_d_loss": ops.mean(per_sample)}
