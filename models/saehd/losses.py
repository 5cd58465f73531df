"""SAEHD's loss assembly (docs/training.md §2, §7) as pure functions of (outputs, inputs, config).

Three objectives, one per optimizer (each a per-sample vector summed over the batch,
docs/training.md §1):
- `generator_losses`: L_src + L_dst (+ true face + GAN terms), trains encoder/inter(s)/decoder(s);
- `code_discriminator_losses`: the 'true face' code discriminator (df only);
- `gan_discriminator_losses`: the UNet patch discriminator on src.

What the model's forward pass must return (keys of `outputs`, NHWC float32; the names are those
of dfl.nn.autoencoders's autoencoders and their `extra_outputs`):

- `pred_src`, `pred_src_mask`, `pred_dst`, `pred_dst_mask`: src→src and dst→dst image (B,R,R,3)
  and mask (B,R,R,1). Always.
- `pred_src_dst`: the src decoder on the swap code *with* gradient (df: decoder_src(dst_code);
  liae: decoder(concat(AB(e_d), AB(e_d)))). When bg_style_power > 0 (extra "swap").
- `pred_src_dst_no_code_grad`, `pred_src_dst_no_code_grad_mask`: the same decoder on
  stop_gradient(swap code), so only the decoder learns from face style (docs/training.md §2).
  When face_style_power > 0 (extra "swap_no_code_grad").
- `src_code`, `dst_code`: the inter outputs for warped_src / warped_dst, (B, r, r, ae), df only.
  When true_face_power > 0 (extra "codes"; src_code for the G term, both for the D_code step).

`required_outputs(config)` lists them, so the model can skip the swap passes (DFL lets TensorFlow
prune them). Inputs are `Batch.as_inputs()` keys: target_*, mask_*, and em_* with eyes_mouth_prio.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from keras import ops

from dfl.nn import losses

# weights (docs/training.md §2)
DSSIM_WEIGHT = 10.0  # split 5 + 5 over two windows at res >= 256
TWO_WINDOW_MIN_RES = 256
MSE_WEIGHT = 10.0
EYES_MOUTH_WEIGHT = 300.0
MASK_WEIGHT = 10.0
STYLE_POWER_SCALE = 100.0  # face/bg style options are 0..100 and used /100
FACE_STYLE_WEIGHT = 10000.0
BG_STYLE_WEIGHT = 10.0
GAN_TV_WEIGHT = 1e-6
GAN_BG_WEIGHT = 0.02
# resolutions
MASK_BLUR_PER_PX = 32  # loss mask blur σ = max(1, res // 32)
BLUR_OUT_PER_PX = 128  # blur_out_mask σ = res / 128
FACE_STYLE_BLUR_PER_PX = 8  # face style blur radius = res // 8

Discriminator = Callable[[Any], Any]


@dataclass(frozen=True)
class LossConfig:
    """The options that shape SAEHD's losses (DFL's option names and ranges)."""

    resolution: int
    masked_training: bool = True
    eyes_mouth_prio: bool = False
    blur_out_mask: bool = False
    face_style_power: float = 0.0  # 0..100
    bg_style_power: float = 0.0  # 0..100
    true_face_power: float = 0.0  # 0..1, df archis only
    gan_power: float = 0.0  # 0..5
    pretrain: bool = False

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> LossConfig:
        """From a resolved SAEHD option dict; true_face_power is 0 unless the archi is df."""
        archi_type = str(options.get("archi", "liae-ud")).split("-")[0]
        return cls(
            resolution=int(options["resolution"]),
            masked_training=bool(options.get("masked_training", True)),
            eyes_mouth_prio=bool(options.get("eyes_mouth_prio", False)),
            blur_out_mask=bool(options.get("blur_out_mask", False)),
            face_style_power=float(options.get("face_style_power", 0.0)),
            bg_style_power=float(options.get("bg_style_power", 0.0)),
            true_face_power=(
                float(options.get("true_face_power", 0.0)) if archi_type == "df" else 0.0
            ),
            gan_power=float(options.get("gan_power", 0.0)),
            pretrain=bool(options.get("pretrain", False)),
        )

    # ------------------------------------------------------------------ derived
    @property
    def mask_blur_radius(self) -> int:
        return max(1, self.resolution // MASK_BLUR_PER_PX)

    @property
    def blur_out_sigma(self) -> float:
        return self.resolution / BLUR_OUT_PER_PX

    @property
    def face_style_blur(self) -> int:
        return self.resolution // FACE_STYLE_BLUR_PER_PX

    @property
    def dssim_windows(self) -> tuple[tuple[float, int], ...]:
        """(weight, window) pairs: 10·DSSIM_{res/11.6} below 256, else 5·res/11.6 + 5·res/23.2."""
        first = int(self.resolution / losses.DSSIM_RES_PER_WINDOW)
        if self.resolution < TWO_WINDOW_MIN_RES:
            return ((DSSIM_WEIGHT, first),)
        second = int(self.resolution / losses.DSSIM_RES_PER_SECOND_WINDOW)
        return ((DSSIM_WEIGHT / 2, first), (DSSIM_WEIGHT / 2, second))

    @property
    def face_style_weight(self) -> float:
        """10000 · power/100; 0 while pretraining."""
        if self.pretrain:
            return 0.0
        return FACE_STYLE_WEIGHT * self.face_style_power / STYLE_POWER_SCALE

    @property
    def bg_style_weight(self) -> float:
        """10 · power/100; 0 while pretraining."""
        if self.pretrain:
            return 0.0
        return BG_STYLE_WEIGHT * self.bg_style_power / STYLE_POWER_SCALE

    @property
    def gan_weight(self) -> float:
        """gan_power, forced to 0 while pretraining."""
        return 0.0 if self.pretrain else self.gan_power

    @property
    def uses_true_face(self) -> bool:
        """The G-side true-face term (DFL adds it even while pretraining)."""
        return self.true_face_power > 0.0

    @property
    def trains_code_discriminator(self) -> bool:
        """The D_code step runs: true face on and not pretraining."""
        return self.true_face_power > 0.0 and not self.pretrain

    @property
    def trains_gan(self) -> bool:
        return self.gan_weight > 0.0

    def required_inputs(self) -> tuple[str, ...]:
        keys = ["target_src", "mask_src", "target_dst", "mask_dst"]
        if self.eyes_mouth_prio:
            keys += ["em_src", "em_dst"]
        return tuple(keys)

    def required_outputs(self) -> tuple[str, ...]:
        """Forward-pass outputs the G step needs (the D steps: see their functions)."""
        keys = ["pred_src", "pred_src_mask", "pred_dst", "pred_dst_mask"]
        if self.face_style_weight > 0.0:
            keys += ["pred_src_dst_no_code_grad", "pred_src_dst_no_code_grad_mask"]
        if self.bg_style_weight > 0.0:
            keys += ["pred_src_dst"]
        if self.uses_true_face:
            keys += ["src_code"]
        return tuple(keys)


@dataclass(frozen=True)
class Side:
    """One side's loss targets: target (blurred out if asked), raw mask, loss mask, em mask."""

    target: Any
    mask: Any
    mask_blur: Any
    em: Any = None

    def masked(self, image: Any, config: LossConfig) -> Any:
        """The 'masked_opt' image: image·mask_blur with masked training, else the image."""
        return image * self.mask_blur if config.masked_training else image


def prepare_side(inputs: Mapping[str, Any], side: str, config: LossConfig) -> Side:
    """Loss targets for 'src' or 'dst' (docs/training.md §1: blur_out_mask, clipped mask blur)."""
    target = ops.convert_to_tensor(inputs[f"target_{side}"])
    mask = ops.convert_to_tensor(inputs[f"mask_{side}"])
    if config.blur_out_mask:
        target = losses.blur_out_mask(target, mask, config.blur_out_sigma)
    mask_blur = losses.clipped_mask_blur(mask, config.mask_blur_radius)
    em = ops.convert_to_tensor(inputs[f"em_{side}"]) if config.eyes_mouth_prio else None
    return Side(target, mask, mask_blur, em)


def _dssim(a: Any, b: Any, windows: tuple[tuple[float, int], ...]) -> Any:
    total = 0.0
    for weight, size in windows:
        total = total + weight * ops.mean(losses.dssim(a, b, size), axis=-1)
    return total


def reconstruction_terms(
    side: Side, pred: Any, pred_mask: Any, config: LossConfig
) -> dict[str, Any]:
    """Weighted per-sample terms of one side: dssim, mse, (eyes_mouth), mask; each (B,)."""
    t = side.masked(side.target, config)
    p = side.masked(pred, config)
    terms = {
        "dssim": _dssim(t, p, config.dssim_windows),
        "mse": MSE_WEIGHT * losses.mse(t, p),
    }
    if config.eyes_mouth_prio:
        terms["eyes_mouth"] = EYES_MOUTH_WEIGHT * losses.mae(side.target * side.em, pred * side.em)
    terms["mask"] = MASK_WEIGHT * losses.mse(side.mask, pred_mask)
    return terms


def style_terms(
    outputs: Mapping[str, Any], src: Side, dst: Side, config: LossConfig
) -> dict[str, Any]:
    """face_style and bg_style (part of L_src) when their powers are on, shape (B,) each."""
    terms: dict[str, Any] = {}
    if config.face_style_weight > 0.0:
        swap_mask = ops.stop_gradient(outputs["pred_src_dst_no_code_grad_mask"])
        dst_face = ops.stop_gradient(outputs["pred_dst"] * outputs["pred_dst_mask"])
        terms["face_style"] = losses.style_loss(
            outputs["pred_src_dst_no_code_grad"] * swap_mask,
            dst_face,
            blur_radius=config.face_style_blur,
            weight=config.face_style_weight,
        )
    if config.bg_style_weight > 0.0:
        # DFL builds this mask from the *src* target's mask blur
        anti = 1.0 - ops.stop_gradient(ops.clip(src.mask_blur, 0.0, 1.0))
        swap_bg = outputs["pred_src_dst"] * anti
        dst_bg = dst.target * anti
        w = config.bg_style_weight
        window = int(config.resolution / losses.DSSIM_RES_PER_WINDOW)
        terms["bg_style"] = w * ops.mean(losses.dssim(swap_bg, dst_bg, window), axis=-1) + (
            w * losses.mse(swap_bg, dst_bg)
        )
    return terms


def generator_terms(
    outputs: Mapping[str, Any],
    inputs: Mapping[str, Any],
    config: LossConfig,
    gan_discriminator: Discriminator | None = None,
    code_discriminator: Discriminator | None = None,
) -> dict[str, Any]:
    """Every weighted per-sample G term, shape (B,) each.

    Keys: src_dssim, src_mse, [src_eyes_mouth], src_mask, the same for dst, and when on:
    face_style and bg_style (part of L_src), true_face, gan, gan_tv, gan_bg.
    """
    src = prepare_side(inputs, "src", config)
    dst = prepare_side(inputs, "dst", config)
    pred_src = ops.convert_to_tensor(outputs["pred_src"])
    terms: dict[str, Any] = {}
    for name, side, pred, pred_mask in (
        ("src", src, pred_src, outputs["pred_src_mask"]),
        ("dst", dst, outputs["pred_dst"], outputs["pred_dst_mask"]),
    ):
        for key, value in reconstruction_terms(side, pred, pred_mask, config).items():
            terms[f"{name}_{key}"] = value

    terms.update(style_terms(outputs, src, dst, config))

    if config.uses_true_face:
        if code_discriminator is None:
            raise ValueError("true_face_power > 0 needs the code discriminator")
        logits = code_discriminator(outputs["src_code"])
        terms["true_face"] = config.true_face_power * losses.generator_adversarial_loss(logits)

    if config.trains_gan:
        if gan_discriminator is None:
            raise ValueError("gan_power > 0 needs the GAN discriminator")
        center, pixels = gan_discriminator(src.masked(pred_src, config))
        terms["gan"] = config.gan_weight * (
            losses.generator_adversarial_loss(center) + losses.generator_adversarial_loss(pixels)
        )
        if config.masked_training:
            terms["gan_tv"] = GAN_TV_WEIGHT * losses.total_variation_mse(pred_src)
            anti = 1.0 - src.mask_blur
            terms["gan_bg"] = GAN_BG_WEIGHT * losses.mse(pred_src * anti, src.target * anti)
    return terms


SRC_EXTRA_TERMS = ("face_style", "bg_style")  # style terms count towards L_src (the status line)


def split_terms(terms: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """(L_src, L_dst, G) per-sample vectors from generator_terms' output."""
    src: Any = 0.0
    dst: Any = 0.0
    other: Any = 0.0
    for key, value in terms.items():
        if key.startswith("src_") or key in SRC_EXTRA_TERMS:
            src = src + value
        elif key.startswith("dst_"):
            dst = dst + value
        else:
            other = other + value
    return src, dst, src + dst + other


def generator_losses(
    outputs: Mapping[str, Any],
    inputs: Mapping[str, Any],
    config: LossConfig,
    gan_discriminator: Discriminator | None = None,
    code_discriminator: Discriminator | None = None,
) -> dict[str, Any]:
    """The G objective and what to report: `loss` = Σ_batch G; `src_loss`, `dst_loss` and every
    term of generator_terms as batch means (scalars)."""
    terms = generator_terms(outputs, inputs, config, gan_discriminator, code_discriminator)
    src, dst, total = split_terms(terms)
    result = {"loss": ops.sum(total), "src_loss": ops.mean(src), "dst_loss": ops.mean(dst)}
    result.update({k: ops.mean(v) for k, v in terms.items()})
    return result


# -------------------------------------------------------------------------- discriminator steps
def code_discriminator_terms(code_discriminator: Discriminator, outputs: Mapping[str, Any]) -> Any:
    """Per-sample D_code loss 0.5·(BCE(1, D(dst_code)) + BCE(0, D(src_code))): dst is 'real'."""
    real = code_discriminator(ops.stop_gradient(outputs["dst_code"]))
    fake = code_discriminator(ops.stop_gradient(outputs["src_code"]))
    return losses.discriminator_loss(real, fake)


def code_discriminator_losses(
    code_discriminator: Discriminator, outputs: Mapping[str, Any]
) -> dict[str, Any]:
    """D_code objective (`loss`, Σ_batch) and `d_code_loss` (batch mean). Needs src_code and
    dst_code: the inter outputs of warped_src and warped_dst."""
    per_sample = code_discriminator_terms(code_discriminator, outputs)
    return {"loss": ops.sum(per_sample), "d_code_loss": ops.mean(per_sample)}


def gan_discriminator_terms(
    gan_discriminator: Discriminator,
    outputs: Mapping[str, Any],
    inputs: Mapping[str, Any],
    config: LossConfig,
) -> Any:
    """Per-sample patch-GAN D loss on the masked_opt src images:
    0.5·(BCE(1,rc) + BCE(0,fc)) + 0.5·(BCE(1,rp) + BCE(0,fp))."""
    src = prepare_side(inputs, "src", config)
    fake_center, fake_pixels = gan_discriminator(
        src.masked(ops.stop_gradient(outputs["pred_src"]), config)
    )
    real_center, real_pixels = gan_discriminator(src.masked(src.target, config))
    return losses.discriminator_loss(real_center, fake_center) + losses.discriminator_loss(
        real_pixels, fake_pixels
    )


def gan_discriminator_losses(
    gan_discriminator: Discriminator,
    outputs: Mapping[str, Any],
    inputs: Mapping[str, Any],
    config: LossConfig,
) -> dict[str, Any]:
    """GAN D objective (`loss`, Σ_batch) and `gan_d_loss` (batch mean). Needs pred_src from a
    forward pass with the freshly updated generator, target_src and mask_src."""
    per_sample = gan_discriminator_terms(gan_discriminator, outputs, inputs, config)
    return {"loss": ops.sum(per_sample), "gan_d_loss": ops.mean(per_sample)}
