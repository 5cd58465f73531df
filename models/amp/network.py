"""AMP's networks in Keras 3 after docs/networks.md §5 (DFL is GPL-3.0; written from those facts):
an encoder ending in its own Dense, two inters (`inter_src`, `inter_dst`: Dense -> (C,H,W)
reshape) and one shared decoder with the 2x pixel-shuffle RGB head and a mask branch.

Each network is a functional Keras model of dfl.nn.blocks blocks plus Dense/Concatenate/
Activation, so an exporter can walk its layers. Layer names are stable
(`decoder/res0/conv1/kernel`): saved checkpoints map weights by order and name, so do
not rename or reorder layers.

Morphing (docs/networks.md §5): the code has `inter_dims` channels. In training each src sample
takes a random channel subset from inter_src(enc(src)) and the rest from inter_dst(enc(src));
the swap at a morph value v takes the first int(inter_dims·v) channels from inter_src(enc(dst))
and the rest from inter_dst(enc(dst)).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

from dfl.nn import blocks as nn

ENCODER_KERNEL = 5
ENCODER_STRIDE_TOTAL = 32  # five stride-2 downscales: the inter works at res / 32
MORPH_INPUT = "morph_mask"  # (B, inter_dims) 0/1 float: 1 = take the channel from inter_src
PREVIEW_CHUNK = 4  # images per forward pass in predict_*
NETWORK_NAMES = ("encoder", "inter_src", "inter_dst", "decoder")
# Forward passes per src+dst pair of each network in the generator step (docs/networks.md §7):
# dfl bench's FLOPs estimate.
FORWARD_PASSES = {"encoder": 2, "inter_src": 1, "inter_dst": 2, "decoder": 2}
OUTPUT_DTYPE = "float32"  # images and masks leave the decoder as float32 (bf16 or not)


@dataclass(frozen=True)
class AMPArchitecture:
    """AMP's network sizes: resolution (px, a multiple of 32) and the dims options."""

    resolution: int = 224
    ae_dims: int = 256
    inter_dims: int = 1024
    e_dims: int = 64
    d_dims: int = 64
    d_mask_dims: int = 22

    def __post_init__(self) -> None:
        if self.resolution < ENCODER_STRIDE_TOTAL or self.resolution % ENCODER_STRIDE_TOTAL:
            raise ValueError(
                f"AMP resolution {self.resolution} must be a multiple of {ENCODER_STRIDE_TOTAL}"
            )

    @property
    def inter_res(self) -> int:
        return self.resolution // ENCODER_STRIDE_TOTAL

    @property
    def encoder_flat_dims(self) -> int:
        return self.inter_res**2 * self.e_dims * 8


def morph_channels(inter_dims: int, value: float) -> int:
    """How many leading code channels come from inter_src at morph value `value`."""
    return int(inter_dims * value)


# ------------------------------------------------------------------------------ networks
def _sigmoid_output(name: str) -> keras.layers.Activation:
    """The decoder's final sigmoid, float32 even under bf16 mixed precision (the losses' dtype)."""
    return keras.layers.Activation("sigmoid", name=name, dtype=OUTPUT_DTYPE)


def build_encoder(arch: AMPArchitecture, name: str = "encoder") -> keras.Model:
    """Image (res, res, 3) -> code (ae_dims,): five downscales with two residual blocks,
    (C,H,W) flatten, pixel norm, Dense."""
    e = arch.e_dims
    image = keras.Input((arch.resolution, arch.resolution, 3), name="image")
    x = nn.Downscale(e, ENCODER_KERNEL, name="down1")(image)
    x = nn.ResidualBlock(e, name="res1")(x)
    x = nn.Downscale(e * 2, ENCODER_KERNEL, name="down2")(x)
    x = nn.Downscale(e * 4, ENCODER_KERNEL, name="down3")(x)
    x = nn.Downscale(e * 8, ENCODER_KERNEL, name="down4")(x)
    x = nn.Downscale(e * 8, ENCODER_KERNEL, name="down5")(x)
    x = nn.ResidualBlock(e * 8, name="res5")(x)
    x = nn.FlattenCHW(name="flatten")(x)
    x = nn.PixelNorm(name="pixel_norm")(x)
    x = nn.dense(arch.ae_dims, name="dense1")(x)
    return keras.Model(image, x, name=name)


def build_inter(arch: AMPArchitecture, name: str) -> keras.Model:
    """Code (ae_dims,) -> Dense -> (inter_res, inter_res, inter_dims); no activation."""
    r = arch.inter_res
    code = keras.Input((arch.ae_dims,), name="code")
    x = nn.dense(r * r * arch.inter_dims, name="dense1")(code)
    x = nn.ReshapeCHW(r, r, arch.inter_dims, name="reshape")(x)
    return keras.Model(code, x, name=name)


def build_decoder(arch: AMPArchitecture, name: str = "decoder") -> keras.Model:
    """Code (inter_res, inter_res, inter_dims) -> [image (res, res, 3), mask (res, res, 1)]."""
    d, dm = arch.d_dims, arch.d_mask_dims
    r = arch.inter_res
    z = keras.Input((r, r, arch.inter_dims), name="code")
    x = z
    for i, ch in enumerate((8 * d, 8 * d, 4 * d, 2 * d)):
        x = nn.Upscale(ch, name=f"upscale{i}")(x)
        x = nn.ResidualBlock(ch, name=f"res{i}")(x)
    heads = [nn.Conv2D(3, 1, name="out_conv")(x)]
    heads += [nn.Conv2D(3, 3, name=f"out_conv{i}")(x) for i in (1, 2, 3)]
    x = keras.layers.Concatenate(axis=-1, name="out_concat")(heads)
    x = nn.DepthToSpace(name="out_d2s")(x)
    image = _sigmoid_output("image")(x)

    m = z
    for i, ch in enumerate((8 * dm, 8 * dm, 4 * dm, 2 * dm, dm)):
        m = nn.Upscale(ch, name=f"upscalem{i}")(m)
    m = nn.Conv2D(1, 1, name="out_convm")(m)
    mask = _sigmoid_output("mask")(m)
    return keras.Model(z, [image, mask], name=name)


def parameter_count(arch: AMPArchitecture) -> dict[str, int]:
    """Weights + biases per network, computed from the sizes (nothing is allocated)."""

    def conv(k: int, cin: int, cout: int) -> int:
        return k * k * cin * cout + cout

    def up(cin: int, cout: int) -> int:
        return conv(3, cin, 4 * cout)

    def res(ch: int) -> int:
        return 2 * conv(3, ch, ch)

    e, d, dm, idims = arch.e_dims, arch.d_dims, arch.d_mask_dims, arch.inter_dims
    encoder = conv(5, 3, e) + res(e) + conv(5, e, 2 * e) + conv(5, 2 * e, 4 * e)
    encoder += conv(5, 4 * e, 8 * e) + conv(5, 8 * e, 8 * e) + res(8 * e)
    encoder += arch.encoder_flat_dims * arch.ae_dims + arch.ae_dims
    inter_out = arch.inter_res**2 * idims
    inter = arch.ae_dims * inter_out + inter_out
    chain = (idims, 8 * d, 8 * d, 4 * d, 2 * d)
    decoder = sum(up(a, b) + res(b) for a, b in itertools.pairwise(chain))
    decoder += conv(1, 2 * d, 3) + 3 * conv(3, 2 * d, 3)
    mchain = (idims, 8 * dm, 8 * dm, 4 * dm, 2 * dm, dm)
    decoder += sum(up(a, b) for a, b in itertools.pairwise(mchain)) + conv(1, dm, 1)
    return {"encoder": encoder, "inter_src": inter, "inter_dst": inter, "decoder": decoder}


# ---------------------------------------------------------------------------- autoencoder
def _as_mask(morph_mask: Any, like: Any) -> Any:
    """(B, C) channel choice -> (B, 1, 1, C) in the dtype of the code `like` (bf16 or float32),
    broadcast over the code's H and W."""
    mask = ops.stop_gradient(ops.cast(ops.convert_to_tensor(morph_mask), like.dtype))
    return ops.expand_dims(ops.expand_dims(mask, 1), 1)


class AMPAutoencoder(keras.Model):
    """AMP: encoder, inter_src, inter_dst and one decoder (docs/networks.md §5).

    Called with a dict holding warped_src, warped_dst and morph_mask ((B, inter_dims), 0/1), it
    returns pred_src, pred_src_mask (the src code randomly mixed from both inters) and pred_dst,
    pred_dst_mask (the dst code from inter_dst alone).
    """

    def __init__(self, arch: AMPArchitecture | dict, **kwargs: Any):
        kwargs.setdefault("name", "amp")
        super().__init__(**kwargs)
        self.arch = AMPArchitecture(**arch) if isinstance(arch, dict) else arch
        arch = self.arch
        # each network's variables are named under its own scope ("decoder/res0/conv1/kernel")
        with keras.name_scope("encoder"):
            self.encoder = build_encoder(arch)
        with keras.name_scope("inter_src"):
            self.inter_src = build_inter(arch, "inter_src")
        with keras.name_scope("inter_dst"):
            self.inter_dst = build_inter(arch, "inter_dst")
        with keras.name_scope("decoder"):
            self.decoder = build_decoder(arch)
        self.built = True

    @property
    def networks(self) -> dict[str, keras.Model]:
        return {name: getattr(self, name) for name in NETWORK_NAMES}

    def get_config(self) -> dict:
        return {"arch": asdict(self.arch), "name": self.name}

    def call(self, inputs: dict, training: bool = False) -> dict:
        if MORPH_INPUT not in inputs:
            raise KeyError(
                f"AMP needs the {MORPH_INPUT!r} input (dfl.models.amp.model.with_morph_mask)"
            )
        # src and dst share the encoder: one pass over both halves
        images = ops.concatenate([inputs["warped_src"], inputs["warped_dst"]], axis=0)
        features = self.encoder(images, training=training)
        src_features, _ = ops.split(features, 2, axis=0)
        both_dst = self.inter_dst(features, training=training)
        src_from_dst, dst_code = ops.split(both_dst, 2, axis=0)
        src_own = self.inter_src(src_features, training=training)
        b = _as_mask(inputs[MORPH_INPUT], src_own)
        src_code = src_own * b + src_from_dst * (1.0 - b)
        pred, pred_mask = self.decoder(
            ops.concatenate([src_code, dst_code], axis=0), training=training
        )
        pred_src, pred_dst = ops.split(pred, 2, axis=0)
        pred_src_mask, pred_dst_mask = ops.split(pred_mask, 2, axis=0)
        return {
            "pred_src": pred_src,
            "pred_src_mask": pred_src_mask,
            "pred_dst": pred_dst,
            "pred_dst_mask": pred_dst_mask,
        }

    # ----------------------------------------------------------------- inference (numpy)
    def _chunks(self, images: np.ndarray) -> list[np.ndarray]:
        images = np.asarray(images, dtype=np.float32)
        return [images[i : i + PREVIEW_CHUNK] for i in range(0, len(images), PREVIEW_CHUNK)]

    def _decode(self, code: Any) -> tuple[np.ndarray, np.ndarray]:
        image, mask = self.decoder(code, training=False)
        return ops.convert_to_numpy(image), ops.convert_to_numpy(mask)

    def morph_codes(self, images: np.ndarray, values: tuple[float, ...]) -> list[Any]:
        """The swap codes of `images` at each morph value (first int(inter_dims·v) channels
        from inter_src, the rest from inter_dst), for one chunk of images."""
        features = self.encoder(np.asarray(images, dtype=np.float32), training=False)
        src = self.inter_src(features, training=False)
        dst = self.inter_dst(features, training=False)
        codes = []
        for value in values:
            k = morph_channels(self.arch.inter_dims, value)
            codes.append(ops.concatenate([src[..., :k], dst[..., k:]], axis=-1))
        return codes

    def predict_morph(
        self, images: np.ndarray, values: tuple[float, ...]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(image, mask) as numpy for every morph value; value 0 is dst -> dst."""
        per_value: list[tuple[list, list]] = [([], []) for _ in values]
        with nn.no_grad():
            for chunk in self._chunks(images):
                for (imgs, masks), code in zip(
                    per_value, self.morph_codes(chunk, values), strict=True
                ):
                    image, mask = self._decode(code)
                    imgs.append(image)
                    masks.append(mask)
        return [(np.concatenate(i), np.concatenate(m)) for i, m in per_value]

    def predict_mixed(
        self, images: np.ndarray, morph_mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """src -> src as in training: each image's code mixed by its row of `morph_mask`."""
        imgs, masks = [], []
        with nn.no_grad():
            for start, chunk in zip(
                range(0, len(images), PREVIEW_CHUNK), self._chunks(images), strict=True
            ):
                features = self.encoder(chunk, training=False)
                src = self.inter_src(features, training=False)
                dst = self.inter_dst(features, training=False)
                b = _as_mask(morph_mask[start : start + len(chunk)], src)
                image, mask = self._decode(src * b + dst * (1.0 - b))
                imgs.append(image)
                masks.append(mask)
        return np.concatenate(imgs), np.concatenate(masks)

    def swap(self, target_dst: np.ndarray, morph_value: float = 1.0) -> tuple[np.ndarray, ...]:
        """dst faces swapped at `morph_value`: (image, mask) as numpy."""
        return self.predict_morph(target_dst, (morph_value,))[0]


def build_autoencoder(arch: AMPArchitecture) -> AMPAutoencoder:
    return AMPAutoencoder(arch)


CUSTOM_OBJECTS = {**nn.CUSTOM_OBJECTS, "AMPAutoencoder": AMPAutoencoder}
