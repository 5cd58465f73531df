"""Quick96, 96 px df-ud, after DeepFaceLab's Model_Quick96 (GPL-3.0), written from the facts in
docs/networks.md §4 and docs/training.md §4, §6-7."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from keras import ops

from dfl.backend.step import model_group
from dfl.data.augment import AugmentConfig
from dfl.models.contract import ModelSpec, Training
from dfl.nn import losses
from dfl.nn.archi_networks import Architecture  # re-exported: quick96.Architecture
from dfl.nn.autoencoders import FORWARD_PASSES as AUTOENCODER_FORWARD_PASSES
from dfl.nn.autoencoders import DFAutoencoder
from dfl.nn.optimizers import RMSprop
from dfl.store.weights import OPTIMIZER_KEY
from dfl.training.preview import autoencoder_pages

NAME = "Quick96"
ASKS_OPTIONS = False
GROUP = "src_dst"  # the one loss group; its optimizer is saved under OPTIMIZER_KEY
RESOLUTION = 96  # px
FACE_TYPE = "full_face"
BATCH_SIZE = 4  # in total, split across GPUs
LR = 2e-4
LR_DROPOUT_KEEP = 0.3  # probability that a weight element is updated in a step
REUSE_EVERY = 3  # every 3rd iteration re-trains the previous batch with warped := target
LOSS_WEIGHT = 10.0  # DSSIM, masked MSE and mask MSE are each weighted 10
MASK_BLUR_PER_PX = 32  # mask blur σ = max(1, res // 32)
PREVIEW_ROWS = 4  # sample rows on a preview page


QUICK96 = Architecture(RESOLUTION, 128, 64, 64, 16)
TINY = Architecture(32, 32, 8, 8, 4)  # for tests: same layout, 32 px, about 0.8 M weights
# Quick96 asks nothing; these option keys (not in its option table, so never asked or set with
# --opt) shrink it for tests and `dfl bench --quick`: resolution and dims of the Architecture.
ARCH_KEYS = ("resolution", "ae_dims", "e_dims", "d_dims", "d_mask_dims")
TINY_OPTIONS = {key: getattr(TINY, key) for key in ARCH_KEYS}


def architecture(options: Mapping[str, Any] | None = None) -> Architecture:
    """QUICK96, with any of ARCH_KEYS the options hold (tests: TINY_OPTIONS)."""
    given = {key: int(options[key]) for key in ARCH_KEYS if options and key in options}
    return dataclasses.replace(QUICK96, **given)


def build(
    options: Mapping[str, Any] | None = None, arch: Architecture | None = None
) -> DFAutoencoder:
    """The trainable Quick96 autoencoder (`arch`, else architecture(options))."""
    return DFAutoencoder(arch or architecture(options))


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


def make_optimizer(options: Mapping[str, Any] | None = None) -> RMSprop:
    return RMSprop(learning_rate=LR, lr_dropout=LR_DROPOUT_KEEP)


def make_training(options: Mapping[str, Any], model: DFAutoencoder) -> Training:
    """One loss group (`src_dst`: compute_losses on every weight), its RMSprop saved under
    "optimizer" as in every Quick96 checkpoint."""
    group = model_group(model, compute_losses, make_optimizer(options), name=GROUP)
    return Training.of(model, [group], {GROUP: OPTIMIZER_KEY})


def batch_size(options: Mapping[str, Any] | None, n_devices: int) -> int:
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


def augment_configs(
    options: Mapping[str, Any] | None = None,
) -> tuple[AugmentConfig, AugmentConfig]:
    """Both sides: 96 px full face, always warped, DFL's default affine ranges, no flips."""
    resolution = architecture(options).resolution
    config = AugmentConfig(resolution=resolution, face_type=FACE_TYPE, random_warp=True)
    return config, config


def preview(
    model: DFAutoencoder, inputs: Mapping[str, np.ndarray], fixed: bool = False
) -> list[tuple[str, np.ndarray]]:
    """The "Quick96" and "Quick96 masked" pages, run on the unwarped targets (every row, so
    `fixed`, the preview-history flag, changes nothing)."""
    return autoencoder_pages(NAME, model, dict(inputs))


SPEC = ModelSpec(
    name=NAME,
    build=build,
    make_training=make_training,
    augment_configs=augment_configs,
    batch_size=batch_size,
    preview=preview,
    tiny_options=TINY_OPTIONS,
    asks_options=ASKS_OPTIONS,
    reuses_previous=reuses_previous,
    next_inputs=next_inputs,
    export_layout=lambda options: "df",
    dfl_optimizer_files={OPTIMIZER_KEY: "src_dst_opt"},  # DFL: <name>_Quick96_src_dst_opt.npy
    forward_passes=lambda options: AUTOENCODER_FORWARD_PASSES["df"],
)
