"""dfl.backend.make_step: several loss groups (generator, discriminators) in one step; each group
changes only its own weights and optimizer state. The toy checks (tests/backend_checks.py) run on
every backend in tests/test_backends.py; here the refusals and SAEHD-like groups."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from dfl.backend import make_step
from dfl.backend.step import LossGroup
from dfl.models.quick96 import model as quick96
from dfl.models.saehd import losses as sl
from dfl.nn import discriminators
from dfl.nn.optimizers import RMSprop
from tests.backend_checks import toy_groups


def values(model) -> list[np.ndarray]:
    return [np.array(ops.convert_to_numpy(v)) for v in model.weights]


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_bad_groups_are_refused():
    gen, dis, _, d_opt, groups, inputs = toy_groups()
    with pytest.raises(ValueError, match="unique"):
        make_step([groups[0], groups[0]], [gen, dis])
    shared = LossGroup("other", gen.trainable_variables, d_opt, groups[1].compute)
    with pytest.raises(ValueError, match="one loss group"):
        make_step([groups[0], shared], [gen, dis])
    step = make_step(groups, [gen, dis])
    with pytest.raises(ValueError, match="unknown loss group"):
        step(inputs, groups=("gan",))
    clash = LossGroup(
        "d",
        dis.trainable_variables,
        RMSprop(),
        lambda i, t: {"loss": ops.sum(dis(i["real"])), "rec": ops.mean(dis(i["real"]))},
    )
    with pytest.raises(ValueError, match="reported twice"):
        make_step([groups[0], clash], [gen, dis])(inputs)


def saehd_df_groups(arch: quick96.Architecture, cfg: sl.LossConfig):
    """The three SAEHD groups on a tiny df autoencoder (as models/saehd/model.py assembles)."""
    ae = quick96.build({}, arch)
    gan = discriminators.build_unet_patch_discriminator(
        arch.resolution // 8, base_ch=4, resolution=arch.resolution
    )
    code_d = discriminators.build_code_discriminator(arch.ae_dims, arch.code_res, base_ch=8)

    def codes(inputs: dict, training: bool):
        images = ops.concatenate([inputs["warped_src"], inputs["warped_dst"]], axis=0)
        code = ae.inter(ae.encoder(images, training=training), training=training)
        return ops.split(code, 2, axis=0)

    def g_losses(inputs: dict, training: bool) -> dict:
        src_code, dst_code = codes(inputs, training)
        out = {"src_code": src_code}
        out["pred_src"], out["pred_src_mask"] = ae.decoder_src(src_code, training=training)
        out["pred_dst"], out["pred_dst_mask"] = ae.decoder_dst(dst_code, training=training)
        return sl.generator_losses(out, inputs, cfg, gan, code_d)

    def d_code_losses(inputs: dict, training: bool) -> dict:
        src_code, dst_code = codes(inputs, training)
        return sl.code_discriminator_losses(code_d, {"src_code": src_code, "dst_code": dst_code})

    def gan_losses(inputs: dict, training: bool) -> dict:
        src_code, _ = codes(inputs, training)
        pred_src, _ = ae.decoder_src(src_code, training=training)
        return sl.gan_discriminator_losses(gan, {"pred_src": pred_src}, inputs, cfg)

    groups = [
        LossGroup("src_dst", ae.trainable_variables, RMSprop(1e-3), g_losses),
        LossGroup("code_discriminator", code_d.trainable_variables, RMSprop(1e-3), d_code_losses),
        LossGroup("gan_discriminator", gan.trainable_variables, RMSprop(1e-3), gan_losses),
    ]
    return (ae, code_d, gan), groups


def test_saehd_groups_on_tiny_networks():
    keras.utils.set_random_seed(0)
    arch = quick96.TINY
    cfg = sl.LossConfig(arch.resolution, true_face_power=0.1, gan_power=0.1)
    nets, groups = saehd_df_groups(arch, cfg)
    rng = np.random.default_rng(0)
    r = arch.resolution
    inputs = {
        f"{kind}_{side}": rng.random((2, r, r, 3 if kind != "mask" else 1)).astype(np.float32)
        for kind in ("warped", "target", "mask")
        for side in ("src", "dst")
    }
    step = make_step(groups, models=list(nets))
    before = [values(n) for n in nets]
    out = step(inputs, groups=("gan_discriminator",))
    assert set(out) == {"gan_discriminator_loss", "gan_d_loss"}
    after = [values(n) for n in nets]
    assert same(after[0], before[0]) and same(after[1], before[1]) and not same(after[2], before[2])

    out = step(inputs)
    assert {"src_dst_loss", "src_loss", "dst_loss", "true_face", "gan", "d_code_loss"} <= set(out)
    assert all(np.isfinite(v) for v in out.values())
    final = [values(n) for n in nets]
    assert not any(same(f, a) for f, a in zip(final, after, strict=True))
