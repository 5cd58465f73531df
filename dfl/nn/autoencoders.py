"""DFL's df and liae autoencoders (SAEHD and Quick96) in Keras 3, after docs/networks.md §2-4
(DFL is GPL-3.0; written from those facts), built from the encoder, inter and decoder networks of
dfl/nn/archi_networks.py. Layer names are stable: saved checkpoints map weights by order and name.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import keras
import numpy as np
from keras import ops

from dfl.nn import archi_networks
from dfl.nn import blocks as nn
from dfl.nn.archi_networks import Architecture, build_decoder, build_encoder, build_inter

PREVIEW_CHUNK = 4  # images per forward pass in predict_preview

OUTPUT_KEYS = ("pred_src", "pred_src_mask", "pred_dst", "pred_dst_mask")
# Optional outputs an autoencoder can be asked for (`extra_outputs`):
#   "swap": pred_src_dst, pred_src_dst_mask (dst face through the src path; bg style loss)
#   "swap_no_code_grad": pred_src_dst_no_code_grad, pred_src_dst_no_code_grad_mask (the same
#       with the code's gradient stopped, so only the decoder learns; face style loss)
#   "codes": src_code, dst_code (the inter outputs; df's true-face code discriminator)
EXTRA_OUTPUTS = ("swap", "swap_no_code_grad", "codes")
# Forward passes per src+dst pair of each network in the generator step, per layout, for dfl
# bench's FLOPs estimate (docs/networks.md §7; the swap output and the optional style,
# true-face and GAN terms are not counted).
FORWARD_PASSES: dict[str, dict[str, int]] = {
    "df": {"encoder": 2, "inter": 2, "decoder_src": 1, "decoder_dst": 1},
    "liae": {"encoder": 2, "inter_AB": 2, "inter_B": 1, "decoder": 2},
}


def _check_extras(extra_outputs: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    extras = tuple(extra_outputs)
    unknown = sorted(set(extras) - set(EXTRA_OUTPUTS))
    if unknown:
        raise ValueError(f"unknown extra outputs {unknown}: choose from {EXTRA_OUTPUTS}")
    return extras


class _Autoencoder(keras.Model):
    """Shared parts of the df and liae autoencoders: config, previews, chunked inference."""

    LAYOUT = ""

    def __init__(
        self,
        arch: Architecture | dict,
        extra_outputs: tuple[str, ...] | list[str] = (),
        **kwargs: Any,
    ):
        kwargs.setdefault("name", self.LAYOUT)
        super().__init__(**kwargs)
        self.arch = Architecture(**arch) if isinstance(arch, dict) else arch
        self.extra_outputs = _check_extras(extra_outputs)

    @property
    def networks(self) -> dict[str, keras.Model]:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {
            "arch": asdict(self.arch),
            "extra_outputs": list(self.extra_outputs),
            "name": self.name,
        }

    # The three codes of a batch of encoder outputs; each layout defines them.
    def _codes(self, features: Any, which: tuple[str, ...], training: bool) -> dict[str, Any]:
        raise NotImplementedError

    def _decode(self, code_name: str, code: Any, training: bool) -> tuple[Any, Any]:
        raise NotImplementedError

    def _predict(self, images: np.ndarray, which: tuple[str, ...]) -> list[np.ndarray]:
        """Run unwarped images through the named paths ('src', 'dst', 'swap') in chunks:
        [image, mask] per path, as numpy."""
        results: list[list[np.ndarray]] = [[] for _ in range(2 * len(which))]
        with nn.no_grad():
            for start in range(0, len(images), PREVIEW_CHUNK):
                chunk = np.asarray(images[start : start + PREVIEW_CHUNK], dtype=np.float32)
                features = self.encoder(chunk, training=False)
                codes = self._codes(features, which, training=False)
                for i, path in enumerate(which):
                    img, mask = self._decode(path, codes[path], training=False)
                    results[2 * i].append(ops.convert_to_numpy(img))
                    results[2 * i + 1].append(ops.convert_to_numpy(mask))
        return [np.concatenate(r, axis=0) for r in results]

    def swap(self, target_dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """dst faces through the src path: (image, mask) as numpy."""
        sd, sdm = self._predict(target_dst, ("swap",))
        return sd, sdm

    def predict_preview(
        self, target_src: np.ndarray, target_dst: np.ndarray
    ) -> dict[str, np.ndarray]:
        """ss, ssm, dd, ddm, sd, sdm for unwarped targets (numpy, eager, no training)."""
        ss, ssm = self._predict(target_src, ("src",))
        dd, ddm, sd, sdm = self._predict(target_dst, ("dst", "swap"))
        return {"ss": ss, "ssm": ssm, "dd": dd, "ddm": ddm, "sd": sd, "sdm": sdm}

    def _add_extras(
        self, out: dict, src_code: Any, dst_code: Any, swap_code: Any, training: bool
    ) -> dict:
        if "swap" in self.extra_outputs:
            img, mask = self._decode("swap", swap_code, training)
            out["pred_src_dst"], out["pred_src_dst_mask"] = img, mask
        if "swap_no_code_grad" in self.extra_outputs:
            img, mask = self._decode("swap", ops.stop_gradient(swap_code), training)
            out["pred_src_dst_no_code_grad"] = img
            out["pred_src_dst_no_code_grad_mask"] = mask
        if "codes" in self.extra_outputs:
            out["src_code"], out["dst_code"] = src_code, dst_code
        return out


class DFAutoencoder(_Autoencoder):
    """DFL's df layout: one encoder and inter, decoder_src and decoder_dst (SAEHD df, Quick96).

    Called with a dict holding warped_src and warped_dst, it returns pred_src, pred_src_mask,
    pred_dst and pred_dst_mask (plus any `extra_outputs`). Swap = decoder_src(inter(enc(dst))).
    """

    LAYOUT = "df"

    def __init__(
        self,
        arch: Architecture | dict,
        extra_outputs: tuple[str, ...] | list[str] = (),
        **kwargs: Any,
    ):
        super().__init__(arch, extra_outputs, **kwargs)
        arch = self.arch
        # each network's variables are named under its own scope ("decoder_src/res0/conv1/kernel")
        with keras.name_scope("encoder"):
            self.encoder = build_encoder(arch)
        with keras.name_scope("inter"):
            self.inter = build_inter(arch)
        with keras.name_scope("decoder_src"):
            self.decoder_src = build_decoder(arch, name="decoder_src")
        with keras.name_scope("decoder_dst"):
            self.decoder_dst = build_decoder(arch, name="decoder_dst")
        self.built = True

    @property
    def networks(self) -> dict[str, keras.Model]:
        return {
            "encoder": self.encoder,
            "inter": self.inter,
            "decoder_src": self.decoder_src,
            "decoder_dst": self.decoder_dst,
        }

    def call(self, inputs: dict, training: bool = False) -> dict:
        # src and dst share the encoder and inter: one pass over both halves
        images = ops.concatenate([inputs["warped_src"], inputs["warped_dst"]], axis=0)
        code = self.inter(self.encoder(images, training=training), training=training)
        src_code, dst_code = ops.split(code, 2, axis=0)
        pred_src, pred_src_mask = self.decoder_src(src_code, training=training)
        pred_dst, pred_dst_mask = self.decoder_dst(dst_code, training=training)
        out = {
            "pred_src": pred_src,
            "pred_src_mask": pred_src_mask,
            "pred_dst": pred_dst,
            "pred_dst_mask": pred_dst_mask,
        }
        return self._add_extras(out, src_code, dst_code, dst_code, training)

    def _codes(self, features: Any, which: tuple[str, ...], training: bool) -> dict[str, Any]:
        code = self.inter(features, training=training)
        return dict.fromkeys(which, code)

    def _decode(self, code_name: str, code: Any, training: bool) -> tuple[Any, Any]:
        decoder = self.decoder_dst if code_name == "dst" else self.decoder_src
        img, mask = decoder(code, training=training)
        return img, mask

    # Quick96 and older callers
    def _run(self, images: np.ndarray, decoders: tuple[str, ...]) -> list[np.ndarray]:
        paths = tuple("dst" if name == "decoder_dst" else "src" for name in decoders)
        return self._predict(images, paths)


class LIAEAutoencoder(_Autoencoder):
    """DFL's liae layout: encoder, inter_AB, inter_B (each ae -> 2·ae channels) and one decoder
    (4·ae input channels), docs/networks.md §3:

      src code  = concat(AB(e_src), AB(e_src))
      dst code  = concat(B(e_dst), AB(e_dst))
      swap code = concat(AB(e_dst), AB(e_dst))

    Called with warped_src and warped_dst, it returns pred_src, pred_src_mask, pred_dst and
    pred_dst_mask (plus any `extra_outputs`).
    """

    LAYOUT = "liae"

    def __init__(
        self,
        arch: Architecture | dict,
        extra_outputs: tuple[str, ...] | list[str] = (),
        **kwargs: Any,
    ):
        super().__init__(arch, extra_outputs, **kwargs)
        arch = self.arch
        with keras.name_scope("encoder"):
            self.encoder = build_encoder(arch)
        with keras.name_scope("inter_AB"):
            self.inter_AB = build_inter(arch, 2 * arch.ae_dims, name="inter_AB")
        with keras.name_scope("inter_B"):
            self.inter_B = build_inter(arch, 2 * arch.ae_dims, name="inter_B")
        with keras.name_scope("decoder"):
            self.decoder = build_decoder(arch, 4 * arch.ae_dims, name="decoder")
        self.built = True

    @property
    def networks(self) -> dict[str, keras.Model]:
        return {
            "encoder": self.encoder,
            "inter_AB": self.inter_AB,
            "inter_B": self.inter_B,
            "decoder": self.decoder,
        }

    def call(self, inputs: dict, training: bool = False) -> dict:
        images = ops.concatenate([inputs["warped_src"], inputs["warped_dst"]], axis=0)
        features = self.encoder(images, training=training)
        ab = self.inter_AB(features, training=training)
        ab_src, ab_dst = ops.split(ab, 2, axis=0)
        _, dst_features = ops.split(features, 2, axis=0)
        b_dst = self.inter_B(dst_features, training=training)
        src_code = ops.concatenate([ab_src, ab_src], axis=-1)
        dst_code = ops.concatenate([b_dst, ab_dst], axis=-1)
        # one decoder pass over both halves
        pred, pred_mask = self.decoder(
            ops.concatenate([src_code, dst_code], axis=0), training=training
        )
        pred_src, pred_dst = ops.split(pred, 2, axis=0)
        pred_src_mask, pred_dst_mask = ops.split(pred_mask, 2, axis=0)
        out = {
            "pred_src": pred_src,
            "pred_src_mask": pred_src_mask,
            "pred_dst": pred_dst,
            "pred_dst_mask": pred_dst_mask,
        }
        if self.extra_outputs:
            swap_code = ops.concatenate([ab_dst, ab_dst], axis=-1)
            out = self._add_extras(out, src_code, dst_code, swap_code, training)
        return out

    def _codes(self, features: Any, which: tuple[str, ...], training: bool) -> dict[str, Any]:
        ab = self.inter_AB(features, training=training)
        codes: dict[str, Any] = {}
        for path in which:
            if path == "dst":
                b = self.inter_B(features, training=training)
                codes[path] = ops.concatenate([b, ab], axis=-1)
            else:  # 'src' for src images, 'swap' for dst images: the same AB-only code
                codes[path] = ops.concatenate([ab, ab], axis=-1)
        return codes

    def _decode(self, code_name: str, code: Any, training: bool) -> tuple[Any, Any]:
        img, mask = self.decoder(code, training=training)
        return img, mask


LAYOUTS: dict[str, type[_Autoencoder]] = {"df": DFAutoencoder, "liae": LIAEAutoencoder}


def build_autoencoder(
    layout: str, arch: Architecture, extra_outputs: tuple[str, ...] | list[str] = ()
) -> _Autoencoder:
    """The df or liae autoencoder for an Architecture."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}: choose df or liae")
    return LAYOUTS[layout](arch, extra_outputs)


CUSTOM_OBJECTS = {
    **archi_networks.CUSTOM_OBJECTS,
    **{cls.__name__: cls for cls in (DFAutoencoder, LIAEAutoencoder)},
}
