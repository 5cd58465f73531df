"""Quick96, 96 px df-ud, after DeepFaceLab's Model_Quick96 (GPL-3.0), written from the facts in
docs/networks.md §4 and docs/training.md §4, §6-7."""

from __future__ import annotations

from typing import Any

import numpy as np
from keras import ops

from dfl.data.augment import AugmentConfig
from dfl.nn import losses
from dfl.nn.autoencoders import Architecture, DFAutoencoder  # re-exported: quick96.Architecture
from dfl.nn.optimizers import RMSprop
from dfl.training.preview import autoencoder_pages

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
MASK_BLUR_PER_PX = 32  # mask blur σ = max(1, res // 32)
PREVIEW_ROWS = 4  # sample rows on a preview page
PREVIEW_HISTORY_EVERY = 10  # iterations between preview-history frames (when enabled)


QUICK96 = Architecture(RESOLUTION, 128, 64, 64, 16)
TINY = Architecture(32, 32, 8, 8, 4)  # for tests: same layout, 32 px, a few thousand weights


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


def preview(
    model: DFAutoencoder, inputs: dict[str, np.ndarray], fixed: bool = False
) -> list[tuple[str, np.ndarray]]:
    """The "Quick96" and "Quick96 masked" pages, run on the unwarped targets (every row, so
    `fixed`, the preview-history flag, changes nothing)."""
    return autoencoder_pages(NAME, model, inputs)
