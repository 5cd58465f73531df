"""SAEHD's and AMP's discriminators in Keras 3 (docs/networks.md §6): the UNet patch GAN and the
code discriminator for 'true face', built from DFL's facts (GPL-3.0), not its code."""

from __future__ import annotations

from typing import Any

import keras

from dfl.nn import blocks

# UNet patch discriminator
PATCH_KERNEL = 3  # every layer of the searched archi is 3×3
PATCH_FIRST_STRIDE = 2  # the first layer always has stride 2
PATCH_MAX_LAYERS = 9
PATCH_MAX_CHANNELS = 512
GAN_SLOPE = 0.2  # leaky ReLU slope everywhere in the UNet discriminator
LOGITS_DTYPE = "float32"  # the logits stay float32 under bf16 mixed precision
DEFAULT_GAN_DIMS = 16
GAN_PATCH_PER_RES = 8  # default gan_patch_size = resolution // 8

# code discriminator
CODE_BASE_CHANNELS = 256
CODE_MAX_MULT = 8
CODE_FIRST_KERNEL = 4  # pad 2, stride 2: a 16×16 code becomes 9×9 (docs/networks.md §1)
CODE_KERNEL = 3
CODE_RES_PER_LAYER = 8  # layers = 1 + code_res // 8
CODE_SLOPE = 0.1


# ----------------------------------------------------------------------- UNet patch discriminator
def receptive_field(layers: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> int:
    """rf = k0 + Σ_{i≥1} (k_i - 1) · Π_{j<i} s_j for a list of (kernel, stride)."""
    rf = 0
    total_stride = 1
    for i, (kernel, stride) in enumerate(layers):
        rf = kernel if i == 0 else rf + (kernel - 1) * total_stride
        total_stride *= stride
    return rf


def find_patch_layers(patch_size: int, max_layers: int = PATCH_MAX_LAYERS) -> list[tuple[int, int]]:
    """DFL's layer search for a patch size: a list of (3, stride) layers, the first of stride 2.

    Every list of 1..max_layers layers whose later strides are 1 or 2 is considered; for each
    receptive field the fewest layers win, then the largest total stride (no two lists tie on
    both up to 9 layers). The list whose receptive field is closest to `patch_size` is returned
    (the smaller field when two are equally close).
    """
    best: dict[int, tuple[int, int, list[tuple[int, int]]]] = {}
    for count in range(1, max_layers + 1):
        n_free = count - 1
        for mask in range((1 << n_free) - 1, -1, -1):
            layers = [(PATCH_KERNEL, PATCH_FIRST_STRIDE)]
            layers += [(PATCH_KERNEL, 2 if mask >> i & 1 else 1) for i in range(n_free)]
            rf = receptive_field(layers)
            total = sum(s for _, s in layers)
            known = best.get(rf)
            if known is None or count < known[0] or (count == known[0] and total > known[1]):
                best[rf] = (count, total, layers)
    closest = min(sorted(best), key=lambda rf: abs(rf - patch_size))
    return best[closest][2]


def unet_level_channels(n_layers: int, base_ch: int = DEFAULT_GAN_DIMS) -> dict[int, int]:
    """Channels per level: level -1 is base_ch, level i is min(base_ch · 2^(i+1), 512)."""
    return {i - 1: min(base_ch * 2**i, PATCH_MAX_CHANNELS) for i in range(n_layers + 1)}


def _conv_transpose(filters: int, kernel_size: int, strides: int, name: str) -> Any:
    """DFL's Conv2DTranspose: 'same' padding (output = input · stride), Glorot kernel
    (k, k, out, in), zero bias."""
    return keras.layers.Conv2DTranspose(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        kernel_initializer=blocks.GlorotUniform(),
        bias_initializer="zeros",
        name=name,
    )


def _lrelu(slope: float, name: str) -> keras.layers.Layer:
    return keras.layers.LeakyReLU(negative_slope=slope, name=name)


def build_unet_patch_discriminator(
    patch_size: int,
    in_ch: int = 3,
    base_ch: int = DEFAULT_GAN_DIMS,
    resolution: int | None = None,
    name: str = "GAN",
) -> keras.Model:
    """DFL's UNetPatchDiscriminator: image (B, R, R, in_ch) -> [center_logits, pixel_logits].

    center_logits is (B, R/S, R/S, 1) at the deepest level (S = product of the strides) and
    pixel_logits is (B, R, R, 1). The decoder concatenates [skip, upsampled] (skip first).
    `resolution` None accepts any size divisible by S.
    """
    layers = find_patch_layers(patch_size)
    n = len(layers)
    chs = unet_level_channels(n, base_ch)
    total_stride = 1
    for _, s in layers:
        total_stride *= s
    if resolution is not None and resolution % total_stride:
        raise ValueError(
            f"GAN patch size {patch_size} needs a resolution divisible by {total_stride}, "
            f"got {resolution}"
        )
    image = keras.Input((resolution, resolution, in_ch), name="image")
    x = _lrelu(GAN_SLOPE, "in_act")(blocks.Conv2D(chs[-1], 1, name="in_conv")(image))
    skips = []
    for i, (kernel, stride) in enumerate(layers):
        skips.append(x)
        x = blocks.Conv2D(chs[i], kernel, strides=stride, name=f"convs_{i}")(x)
        x = _lrelu(GAN_SLOPE, f"convs_{i}_act")(x)
    center_logits = blocks.Conv2D(1, 1, name="center_out", dtype=LOGITS_DTYPE)(x)
    x = _lrelu(GAN_SLOPE, "center_act")(blocks.Conv2D(chs[n - 1], 1, name="center_conv")(x))
    # DFL lists the transposed convs deepest first: upconvs_0 undoes the last down layer
    for j, i in enumerate(reversed(range(n))):
        kernel, stride = layers[i]
        x = _conv_transpose(chs[i - 1], kernel, stride, name=f"upconvs_{j}")(x)
        x = _lrelu(GAN_SLOPE, f"upconvs_{j}_act")(x)
        x = keras.layers.Concatenate(axis=-1, name=f"skip_{j}")([skips[i], x])
    pixel_logits = blocks.Conv2D(1, 1, name="out_conv", dtype=LOGITS_DTYPE)(x)
    return keras.Model(image, [center_logits, pixel_logits], name=name)


def default_gan_patch_size(resolution: int) -> int:
    return resolution // GAN_PATCH_PER_RES


# ---------------------------------------------------------------------------- code discriminator
def code_discriminator_layers(code_res: int) -> int:
    """Number of strided convs: 1 + code_res // 8 (code_res: the inter's output size)."""
    return 1 + code_res // CODE_RES_PER_LAYER


def build_code_discriminator(
    in_ch: int,
    code_res: int,
    base_ch: int = CODE_BASE_CHANNELS,
    name: str = "code_discriminator",
) -> keras.Model:
    """DFL's CodeDiscriminator: code (B, r, r, in_ch) -> logit map (B, r', r', 1).

    1 + code_res//8 convs of stride 2 (k4 pad 2 first, then k3 pad 1), base_ch·min(2^i, 8)
    channels, each followed by leaky ReLU 0.1; then a 1×1 conv to one logit per position.
    """
    code = keras.Input((code_res, code_res, in_ch), name="code")
    x = code
    for i in range(code_discriminator_layers(code_res)):
        kernel = CODE_FIRST_KERNEL if i == 0 else CODE_KERNEL
        ch = base_ch * min(2**i, CODE_MAX_MULT)
        x = blocks.Conv2D(ch, kernel, strides=2, name=f"convs_{i}")(x)
        x = _lrelu(CODE_SLOPE, f"convs_{i}_act")(x)
    logits = blocks.Conv2D(1, 1, name="out_conv", dtype=LOGITS_DTYPE)(x)
    return keras.Model(code, logits, name=name)


__all__ = [
    "build_code_discriminator",
    "build_unet_patch_discriminator",
    "code_discriminator_layers",
    "default_gan_patch_size",
    "find_patch_layers",
    "receptive_field",
    "unet_level_channels",
]
