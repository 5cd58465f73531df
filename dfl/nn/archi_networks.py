"""One DeepFakeArchi (SAEHD and Quick96) in Keras 3: the Architecture (resolution, dims, archi
opts) and its encoder, inter and decoder networks, after docs/networks.md §2-4 (DFL is GPL-3.0;
written from those facts). dfl/nn/autoencoders.py wires them into the df and liae autoencoders.

Archi opts, as in DFL's archi strings (`liae-udt`):
  u  pixel-normalise the encoder's flat output;
  d  the inter works at res/32 and the decoder ends in a 2x pixel-shuffle head (double resolution
     at about the same cost), plus one more mask upscale;
  t  one more down/up-scale stage (the encoder goes to res/32, the inter has no upscale);
  c  x·cos(x) instead of leaky ReLU in every Downscale, Upscale and ResidualBlock.

Layer names are DFL-like and stable (`decoder_src/res0/conv1/kernel`): saved checkpoints map
weights by order and name, so do not rename or reorder layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
from keras import ops

from dfl.nn import blocks as nn

ARCHI_OPTS = "udtc"  # the letters DFL's SAEHD accepts after "df-" / "liae-"
ENCODER_KERNEL = 5
ENCODER_DOWNSCALES = 4


@dataclass(frozen=True)
class Architecture:
    """One DeepFakeArchi: resolution (px), dims, and DFL archi opts (letters of 'udtc')."""

    resolution: int
    ae_dims: int
    e_dims: int
    d_dims: int
    d_mask_dims: int
    opts: str = "ud"

    def __post_init__(self) -> None:
        bad = sorted(set(self.opts) - set(ARCHI_OPTS))
        if bad:
            raise ValueError(f"unknown archi opts {''.join(bad)!r}: use letters of {ARCHI_OPTS!r}")
        step = self.resolution_multiple
        if self.resolution < step or self.resolution % step:
            raise ValueError(
                f"resolution {self.resolution} must be a multiple of {step} for opts {self.opts!r}"
            )

    @property
    def resolution_multiple(self) -> int:
        """32 when 'd' or 't' is in the opts (both go one level deeper), else 16."""
        return 32 if {"d", "t"} & set(self.opts) else 16

    @property
    def cosine(self) -> bool:
        return "c" in self.opts

    @property
    def lowest_dense_res(self) -> int:
        return self.resolution // (32 if "d" in self.opts else 16)

    @property
    def encoder_res(self) -> int:
        return self.resolution // (32 if "t" in self.opts else 16)

    @property
    def encoder_out_dims(self) -> int:
        return self.encoder_res**2 * self.e_dims * 8

    @property
    def code_res(self) -> int:
        """Spatial size of the inter's output (the decoders' input)."""
        return self.lowest_dense_res * (1 if "t" in self.opts else 2)


# ----------------------------------------------------------------- 'c': x·cos(x) activation
def cos_activation(x: Any) -> Any:
    """DFL's 'c' archi activation: x·cos(x) (the leaky-ReLU slope is ignored)."""
    return x * ops.cos(x)


class CosDownscale(nn.Downscale):
    """Downscale with x·cos(x) instead of leaky ReLU."""

    def call(self, x: Any) -> Any:
        return cos_activation(self.conv1(x))


class CosDownscaleBlock(nn.DownscaleBlock):
    """DownscaleBlock made of CosDownscales (same layer names and shapes)."""

    def __init__(self, filters: int, n_downscales: int, kernel_size: int = 5, **kwargs: Any):
        super().__init__(filters, 0, kernel_size, **kwargs)
        self.n_downscales = n_downscales
        self.downs = [
            CosDownscale(filters * min(2**i, 8), kernel_size, name=f"downs_{i}")
            for i in range(n_downscales)
        ]


class CosUpscale(nn.Upscale):
    """Upscale with x·cos(x) before the pixel shuffle."""

    def call(self, x: Any) -> Any:
        return nn.depth_to_space(cos_activation(self.conv1(x)))


class CosResidualBlock(nn.ResidualBlock):
    """ResidualBlock with x·cos(x) in both places."""

    def call(self, x: Any) -> Any:
        y = self.conv2(cos_activation(self.conv1(x)))
        return cos_activation(x + y)


@dataclass(frozen=True)
class _Blocks:
    downscale: type
    downscale_block: type
    upscale: type
    residual: type


_LEAKY = _Blocks(nn.Downscale, nn.DownscaleBlock, nn.Upscale, nn.ResidualBlock)
_COSINE = _Blocks(CosDownscale, CosDownscaleBlock, CosUpscale, CosResidualBlock)


def _blocks(arch: Architecture) -> _Blocks:
    return _COSINE if arch.cosine else _LEAKY


# ------------------------------------------------------------------------------ networks
def build_encoder(arch: Architecture, name: str = "encoder") -> keras.Model:
    """Image (res, res, 3) -> flat code of length arch.encoder_out_dims, (C, H, W) order."""
    blocks = _blocks(arch)
    image = keras.Input((arch.resolution, arch.resolution, 3), name="image")
    e = arch.e_dims
    if "t" in arch.opts:
        x = blocks.downscale(e, ENCODER_KERNEL, name="down1")(image)
        x = blocks.residual(e, name="res1")(x)
        x = blocks.downscale(e * 2, ENCODER_KERNEL, name="down2")(x)
        x = blocks.downscale(e * 4, ENCODER_KERNEL, name="down3")(x)
        x = blocks.downscale(e * 8, ENCODER_KERNEL, name="down4")(x)
        x = blocks.downscale(e * 8, ENCODER_KERNEL, name="down5")(x)
        x = blocks.residual(e * 8, name="res5")(x)
    else:
        x = blocks.downscale_block(e, ENCODER_DOWNSCALES, ENCODER_KERNEL, name="down1")(image)
    x = nn.FlattenCHW(name="flatten")(x)
    if "u" in arch.opts:
        x = nn.PixelNorm(name="pixel_norm")(x)
    return keras.Model(image, x, name=name)


def build_inter(
    arch: Architecture, ae_out_dims: int | None = None, name: str = "inter"
) -> keras.Model:
    """Flat code -> Dense(ae) -> Dense(ldr²·ae_out) -> (ldr, ldr, ae_out) [-> Upscale, no 't'].

    ae_out_dims: ae_dims for df, 2·ae_dims for liae's inter_AB and inter_B.
    """
    ae_out = ae_out_dims or arch.ae_dims
    ldr = arch.lowest_dense_res
    code = keras.Input((arch.encoder_out_dims,), name="code")
    x = nn.dense(arch.ae_dims, name="dense1")(code)
    x = nn.dense(ldr * ldr * ae_out, name="dense2")(x)
    x = nn.ReshapeCHW(ldr, ldr, ae_out, name="reshape")(x)
    if "t" not in arch.opts:
        x = _blocks(arch).upscale(ae_out, name="upscale1")(x)
    return keras.Model(code, x, name=name)


def build_decoder(
    arch: Architecture, in_dims: int | None = None, name: str = "decoder"
) -> keras.Model:
    """Code (code_res, code_res, in_dims) -> [image (res, res, 3), mask (res, res, 1)], sigmoid.

    in_dims: ae_dims for df's decoders, 4·ae_dims for liae's one decoder.
    """
    blocks = _blocks(arch)
    in_ch = in_dims or arch.ae_dims
    d, dm = arch.d_dims, arch.d_mask_dims
    z = keras.Input((arch.code_res, arch.code_res, in_ch), name="code")
    if "t" in arch.opts:
        rgb_dims = (8 * d, 8 * d, 4 * d, 2 * d)
        mask_dims = [8 * dm, 8 * dm, 4 * dm, 2 * dm]
    else:
        rgb_dims = (8 * d, 4 * d, 2 * d)
        mask_dims = [8 * dm, 4 * dm, 2 * dm]
    if "d" in arch.opts:
        mask_dims.append(dm)

    x = z
    for i, ch in enumerate(rgb_dims):
        x = blocks.upscale(ch, name=f"upscale{i}")(x)
        x = blocks.residual(ch, name=f"res{i}")(x)
    if "d" in arch.opts:
        heads = [nn.Conv2D(3, 1, name="out_conv")(x)]
        heads += [nn.Conv2D(3, 3, name=f"out_conv{i}")(x) for i in (1, 2, 3)]
        x = keras.layers.Concatenate(axis=-1, name="out_concat")(heads)
        x = nn.DepthToSpace(name="out_d2s")(x)
    else:
        x = nn.Conv2D(3, 1, name="out_conv")(x)
    image = nn.sigmoid_output("image")(x)

    m = z
    for i, ch in enumerate(mask_dims):
        m = blocks.upscale(ch, name=f"upscalem{i}")(m)
    m = nn.Conv2D(1, 1, name="out_convm")(m)
    mask = nn.sigmoid_output("mask")(m)
    return keras.Model(z, [image, mask], name=name)


CUSTOM_OBJECTS = {
    **nn.CUSTOM_OBJECTS,
    **{
        cls.__name__: cls for cls in (CosDownscale, CosDownscaleBlock, CosUpscale, CosResidualBlock)
    },
}
