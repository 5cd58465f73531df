"""dfl.backend.make_step: several loss groups (generator, discriminators) in one step; each group
changes only its own weights and optimizer state. TensorFlow in-process; JAX and torch in child
processes running the same checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from dfl.backend import make_step
from dfl.backend.step import LossGroup
from dfl.models.quick96 import model as quick96
from dfl.models.saehd import losses as sl
from dfl.nn import blocks, discriminators, losses
from dfl.nn.optimizers import RMSprop

HERE = Path(__file__).resolve().parent


def values(model) -> list[np.ndarray]:
    return [np.array(ops.convert_to_numpy(v)) for v in model.weights]


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def toy_setup():
    """A 4->4 dense generator and a 4->1 dense discriminator, with their two loss groups."""
    keras.utils.set_random_seed(0)
    gen = keras.Sequential([keras.Input((4,)), blocks.dense(4, "g1")], name="gen")
    dis = keras.Sequential([keras.Input((4,)), blocks.dense(1, "d1")], name="dis")

    def g_losses(inputs: dict, training: bool) -> dict:
        fake = gen(inputs["x"], training=training)
        rec = ops.mean(ops.square(fake - inputs["real"]), axis=1)
        per = rec + 0.5 * losses.generator_adversarial_loss(dis(fake))
        return {"loss": ops.sum(per) * inputs["scale_g"][0], "rec": ops.mean(rec)}

    def d_losses(inputs: dict, training: bool) -> dict:
        fake = ops.stop_gradient(gen(inputs["x"], training=training))
        per = losses.discriminator_loss(dis(inputs["real"]), dis(fake))
        return {"loss": ops.sum(per) * inputs["scale_d"][0], "d_mean": ops.mean(per)}

    g_opt, d_opt = RMSprop(learning_rate=0.01), RMSprop(learning_rate=0.01)
    groups = [
        LossGroup("generator", gen.trainable_variables, g_opt, g_losses),
        LossGroup("discriminator", dis.trainable_variables, d_opt, d_losses),
    ]
    rng = np.random.default_rng(0)
    inputs = {
        "x": rng.standard_normal((3, 4)).astype(np.float32),
        "real": rng.standard_normal((3, 4)).astype(np.float32),
        "scale_g": np.ones(1, np.float32),
        "scale_d": np.ones(1, np.float32),
    }
    return gen, dis, g_opt, d_opt, groups, inputs


def check_groups_touch_only_their_own_weights() -> None:
    gen, dis, g_opt, d_opt, groups, inputs = toy_setup()
    step = make_step(groups, models=[gen, dis])
    g0, d0 = values(gen), values(dis)

    out = step(inputs, groups=("discriminator",))
    assert set(out) == {"discriminator_loss", "d_mean"}
    step.sync()
    assert same(values(gen), g0) and not same(values(dis), d0)
    assert int(ops.convert_to_numpy(g_opt.iterations)) == 0
    assert int(ops.convert_to_numpy(d_opt.iterations)) == 1

    d1 = values(dis)
    out = step(inputs, groups=("generator",))
    assert set(out) == {"generator_loss", "rec"}
    step.sync()
    assert same(values(dis), d1) and not same(values(gen), g0)
    assert int(ops.convert_to_numpy(g_opt.iterations)) == 1


def check_groups_run_in_order_on_updated_weights() -> None:
    gen, dis, _, _, groups, inputs = toy_setup()
    step = make_step(groups, models=[gen, dis])
    step.sync()
    d0 = values(dis)
    out = step(inputs)
    assert set(out) == {"generator_loss", "rec", "discriminator_loss", "d_mean"}
    step.sync()
    # the D pass saw the generator after its update and the discriminator before its own
    updated_d = values(dis)
    for variable, value in zip(dis.weights, d0, strict=True):
        variable.assign(value)
    step.refresh()
    again = step.evaluate(inputs, groups=("discriminator",))
    np.testing.assert_allclose(again["discriminator_loss"], out["discriminator_loss"], rtol=1e-5)
    assert not same(updated_d, d0)


def check_a_non_finite_group_changes_nothing() -> None:
    gen, dis, g_opt, d_opt, groups, inputs = toy_setup()
    step = make_step(groups, models=[gen, dis])
    step.sync()
    g0, d0 = values(gen), values(dis)
    g_opt_0 = values_of(g_opt)
    out = step({**inputs, "scale_g": np.full(1, np.nan, np.float32)})
    assert np.isnan(out["generator_loss"]) and np.isfinite(out["discriminator_loss"])
    step.sync()
    assert same(values(gen), g0) and same(values_of(g_opt), g_opt_0)
    assert not same(values(dis), d0)  # the other group still trained
    assert int(ops.convert_to_numpy(d_opt.iterations)) == 1


def values_of(optimizer) -> list[np.ndarray]:
    return [np.array(ops.convert_to_numpy(v)) for v in optimizer.variables]


def check_all() -> None:
    check_groups_touch_only_their_own_weights()
    check_groups_run_in_order_on_updated_weights()
    check_a_non_finite_group_changes_nothing()


# --------------------------------------------------------------------------------- TensorFlow
tf_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="in-process checks run on TensorFlow"
)


@tf_only
def test_groups_touch_only_their_own_weights():
    check_groups_touch_only_their_own_weights()


@tf_only
def test_groups_run_in_order_on_updated_weights():
    check_groups_run_in_order_on_updated_weights()


@tf_only
def test_a_non_finite_group_changes_nothing():
    check_a_non_finite_group_changes_nothing()


@tf_only
def test_bad_groups_are_refused():
    gen, dis, _, d_opt, groups, inputs = toy_setup()
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


@tf_only
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


# ------------------------------------------------------------------------------ JAX and torch
@pytest.mark.parametrize("name", ["jax", "torch"])
def test_other_backends_in_a_child_process(name):
    env = {**os.environ, "KERAS_BACKEND": name, "CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); "
        "import keras, test_step as t; "
        f"assert keras.backend.backend() == {name!r}; t.check_all(); print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
