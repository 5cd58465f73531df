"""Quick96, 96 px df-ud, after DeepFaceLab's Model_Quick96 (GPL-3.0), written from its numerics."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

from dfl import losses, nn
from dfl.augment import AugmentConfig
from dfl.optimizers import RMSprop
from dfl.preview import model_pages

NAME = "Quick96"
OPTIONS: tuple = ()
ASKS_OPTIONS = False
RESOLUTION = 96  # px
FACE_TYPE = "full_face"
BATCH_SIZE = 4  # in total, split across GPUs
LR = 2e-4
LR_DROPOUT_KEEP = 0.3  # probability that a weight element is updated in a step
REUSE_EVERY = 3  # every 3rd iteration re-trains the previous batch with warped := target
LOSS_WEIGHT = 10.0  # DSSIM, masked MSE and mask MSE are each weighted 10
ENCODER_KERNEL = 5
ENCODER_DOWNSCALES = 4
MASK_BLUR_PER_PX = 32  # mask blur σ = max(1, res // 32)
PREVIEW_CHUNK = 4  # images per forward pass in predict_preview
PREVIEW_ROWS = 4  # sample rows on a preview page
PREVIEW_HISTORY_EVERY = 10  # iterations between preview-history frames (when enabled)


@dataclass(frozen=True)
class Architecture:
    """A df-layout autoencoder: resolution (px), dims, and DFL archi opts ('u', 'd', 't')."""

    resolution: int
    ae_dims: int
    e_dims: int
    d_dims: int
    d_mask_dims: int
    opts: str = "ud"

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


QUICK96 = Architecture(RESOLUTION, 128, 64, 64, 16)
TINY = Architecture(32, 32, 8, 8, 4)  # for tests: same layout, 32 px, a few thousand weights


def build_encoder(arch: Architecture, name: str = "encoder") -> keras.Model:
    image = keras.Input((arch.resolution, arch.resolution, 3), name="image")
    e = arch.e_dims
    if "t" in arch.opts:
        x = nn.Downscale(e, ENCODER_KERNEL, name="down1")(image)
        x = nn.ResidualBlock(e, name="res1")(x)
        x = nn.Downscale(e * 2, ENCODER_KERNEL, name="down2")(x)
        x = nn.Downscale(e * 4, ENCODER_KERNEL, name="down3")(x)
        x = nn.Downscale(e * 8, ENCODER_KERNEL, name="down4")(x)
        x = nn.Downscale(e * 8, ENCODER_KERNEL, name="down5")(x)
        x = nn.ResidualBlock(e * 8, name="res5")(x)
    else:
        x = nn.DownscaleBlock(e, ENCODER_DOWNSCALES, ENCODER_KERNEL, name="down1")(image)
    x = nn.FlattenCHW(name="flatten")(x)
    if "u" in arch.opts:
        x = nn.PixelNorm(name="pixel_norm")(x)
    return keras.Model(image, x, name=name)


def build_inter(
    arch: Architecture, ae_out_dims: int | None = None, name: str = "inter"
) -> keras.Model:
    ae_out = ae_out_dims or arch.ae_dims
    ldr = arch.lowest_dense_res
    code = keras.Input((arch.encoder_out_dims,), name="code")
    x = nn.dense(arch.ae_dims, name="dense1")(code)
    x = nn.dense(ldr * ldr * ae_out, name="dense2")(x)
    x = nn.ReshapeCHW(ldr, ldr, ae_out, name="reshape")(x)
    if "t" not in arch.opts:
        x = nn.Upscale(ae_out, name="upscale1")(x)
    return keras.Model(code, x, name=name)


def build_decoder(
    arch: Architecture, in_dims: int | None = None, name: str = "decoder"
) -> keras.Model:
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
        x = nn.Upscale(ch, name=f"upscale{i}")(x)
        x = nn.ResidualBlock(ch, name=f"res{i}")(x)
    if "d" in arch.opts:
        heads = [nn.Conv2D(3, 1, name="out_conv")(x)]
        heads += [nn.Conv2D(3, 3, name=f"out_conv{i}")(x) for i in (1, 2, 3)]
        x = keras.layers.Concatenate(axis=-1, name="out_concat")(heads)
        x = nn.DepthToSpace(name="out_d2s")(x)
    else:
        x = nn.Conv2D(3, 1, name="out_conv")(x)
    image = keras.layers.Activation("sigmoid", name="image")(x)

    m = z
    for i, ch in enumerate(mask_dims):
        m = nn.Upscale(ch, name=f"upscalem{i}")(m)
    m = nn.Conv2D(1, 1, name="out_convm")(m)
    mask = keras.layers.Activation("sigmoid", name="mask")(m)
    return keras.Model(z, [image, mask], name=name)


class DFAutoencoder(keras.Model):
    """DFL's df layout: one encoder and inter, decoder_src and decoder_dst (also SAEHD df; opts
    'u', 'd', 't' as in DFL's DeepFakeArchi).

    Called with a dict holding warped_src and warped_dst, it returns pred_src, pred_src_mask,
    pred_dst and pred_dst_mask.
    """

    def __init__(self, arch: Architecture | dict, **kwargs: Any):
        kwargs.setdefault("name", "df")
        super().__init__(**kwargs)
        arch = Architecture(**arch) if isinstance(arch, dict) else arch
        self.arch = arch
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
        return {
            "pred_src": pred_src,
            "pred_src_mask": pred_src_mask,
            "pred_dst": pred_dst,
            "pred_dst_mask": pred_dst_mask,
        }

    def _run(self, images: np.ndarray, decoders: tuple[str, ...]) -> list[np.ndarray]:
        """Encode images in chunks and decode with each named decoder: [img, mask] per decoder."""
        results: list[list[np.ndarray]] = [[] for _ in range(2 * len(decoders))]
        with nn.no_grad():
            for start in range(0, len(images), PREVIEW_CHUNK):
                chunk = np.asarray(images[start : start + PREVIEW_CHUNK], dtype=np.float32)
                code = self.inter(self.encoder(chunk, training=False), training=False)
                for i, name in enumerate(decoders):
                    img, mask = self.networks[name](code, training=False)
                    results[2 * i].append(ops.convert_to_numpy(img))
                    results[2 * i + 1].append(ops.convert_to_numpy(mask))
        return [np.concatenate(r, axis=0) for r in results]

    def swap(self, target_dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """dst faces through decoder_src: (image, mask) as numpy."""
        sd, sdm = self._run(target_dst, ("decoder_src",))
        return sd, sdm

    def predict_preview(
        self, target_src: np.ndarray, target_dst: np.ndarray
    ) -> dict[str, np.ndarray]:
        """ss, ssm, dd, ddm, sd, sdm for unwarped targets (numpy, eager, no training)."""
        ss, ssm = self._run(target_src, ("decoder_src",))
        dd, ddm, sd, sdm = self._run(target_dst, ("decoder_dst", "decoder_src"))
        return {"ss": ss, "ssm": ssm, "dd": dd, "ddm": ddm, "sd": sd, "sdm": sdm}

    def get_config(self) -> dict:
        return {"arch": asdict(self.arch), "name": self.name}


def build(options: dict | None = None, arch: Architecture = QUICK96) -> DFAutoencoder:
    """The trainable Quick96 autoencoder (options are ignored: Quick96 asks nothing)."""
    return DFAutoencoder(arch)


def predict_preview(
    model: DFAutoencoder, target_src: np.ndarray, target_dst: np.ndarray
) -> dict[str, np.ndarray]:
    return model.predict_preview(target_src, target_dst)


def _side_loss(target: Any, mask: Any, pred: Any, pred_mask: Any) -> Any:
    """Per-sample 10·DSSIM + 10·MSE on the blurred-mask-weighted images + 10·mask MSE."""
    target, mask, pred, pred_mask = (
        ops.convert_to_tensor(x) for x in (target, mask, pred, pred_mask)
    )
    res = int(target.shape[1])
    blurred = losses.gaussian_blur(mask, max(1, res // MASK_BLUR_PER_PX))
    t = target * blurred
    p = pred * blurred
    dssim = ops.mean(losses.dssim(t, p, losses.dssim_filter_size(res)), axis=-1)
    return LOSS_WEIGHT * (dssim + losses.mse(t, p) + losses.mse(mask, pred_mask))


def compute_losses(outputs: dict, inputs: dict) -> dict:
    """loss: Σ over the batch of (L_src + L_dst); src_loss, dst_loss: batch means."""
    src = _side_loss(
        inputs["target_src"], inputs["mask_src"], outputs["pred_src"], outputs["pred_src_mask"]
    )
    dst = _side_loss(
        inputs["target_dst"], inputs["mask_dst"], outputs["pred_dst"], outputs["pred_dst_mask"]
    )
    return {"loss": ops.sum(src + dst), "src_loss": ops.mean(src), "dst_loss": ops.mean(dst)}


def make_optimizer(options: dict | None = None) -> RMSprop:
    return RMSprop(learning_rate=LR, lr_dropout=LR_DROPOUT_KEEP)


def batch_size(options: dict | None, n_devices: int) -> int:
    """4 in total: n_gpu · max(1, 4 // n_gpu) (4 on the CPU or one GPU)."""
    n = max(1, n_devices)
    return n * max(1, BATCH_SIZE // n)


def reuses_previous(iteration: int, previous_inputs: dict[str, np.ndarray] | None) -> bool:
    """True on the iterations that re-train the previous batch (no fresh samples needed)."""
    return iteration % REUSE_EVERY == 0 and previous_inputs is not None


def next_inputs(
    iteration: int,
    inputs: dict[str, np.ndarray] | None,
    previous_inputs: dict[str, np.ndarray] | None,
) -> dict[str, np.ndarray]:
    """Every 3rd iteration (iteration % 3 == 0, `iteration` = steps done so far) re-train the
    previous fresh batch with its unwarped targets as inputs; otherwise train `inputs`."""
    if reuses_previous(iteration, previous_inputs):
        reused = dict(previous_inputs)
        reused["warped_src"] = previous_inputs["target_src"]
        reused["warped_dst"] = previous_inputs["target_dst"]
        return reused
    if inputs is None:
        raise ValueError("a fresh batch is needed on this iteration")
    return inputs


def augment_configs(options: dict | None = None) -> tuple[AugmentConfig, AugmentConfig]:
    """Both sides: 96 px full face, always warped, DFL's default affine ranges, no flips."""
    config = AugmentConfig(resolution=RESOLUTION, face_type=FACE_TYPE, random_warp=True)
    return config, config


def preview(model: DFAutoencoder, inputs: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """The "Quick96" and "Quick96 masked" pages, run on the unwarped targets."""
    rows = min(PREVIEW_ROWS, inputs["target_src"].shape[0])
    target_src = inputs["target_src"][:rows]
    target_dst = inputs["target_dst"][:rows]
    p = model.predict_preview(target_src, target_dst)
    return model_pages(
        NAME,
        target_src,
        p["ss"],
        target_dst,
        p["dd"],
        p["sd"],
        inputs["mask_src"][:rows],
        inputs["mask_dst"][:rows],
        p["ddm"],
        p["sdm"],
        rows=rows,
    )
