"""Tests for dfl.nn.optimizers against numpy references, in each backend's compiled mode."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from keras import ops

from dfl.nn.optimizers import AdaBelief, RMSprop

SHAPES = ((3, 4), (5,))
LR = 0.01


def values(variables) -> list[np.ndarray]:
    return [np.array(ops.convert_to_numpy(v.value)) for v in variables]


def make_variables(rng: np.random.Generator, shapes=SHAPES, prefix: str = "w") -> list:
    return [
        keras.Variable(rng.standard_normal(s).astype(np.float32), name=f"{prefix}{i}")
        for i, s in enumerate(shapes)
    ]


def stepper(optimizer, variables):
    """apply(grads) in the backend's compiled form: tf.function, jax.jit(stateless_apply), torch."""
    optimizer.build(variables)
    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        fn = tf.function(lambda grads: optimizer.apply(grads, variables))
        return lambda grads: fn([tf.constant(g) for g in grads])
    if name == "jax":
        import jax

        fn = jax.jit(optimizer.stateless_apply)

        def apply_jax(grads):
            trainable, opt_vars = fn(
                [v.value for v in optimizer.variables], grads, [v.value for v in variables]
            )
            for v, x in zip(variables, trainable, strict=True):
                v.assign(x)
            for v, x in zip(optimizer.variables, opt_vars, strict=True):
                v.assign(x)

        return apply_jax
    import torch

    def apply_torch(grads):
        with torch.no_grad():
            optimizer.apply([ops.convert_to_tensor(g) for g in grads], variables)

    return apply_torch


def np_clip(grads: list[np.ndarray], clipnorm: float) -> list[np.ndarray]:
    if clipnorm <= 0:
        return grads
    norm = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads))
    return [g * (clipnorm / norm) for g in grads] if norm >= clipnorm else grads


def np_lr(iteration: int, lr_cos: int) -> float:
    if lr_cos <= 0:
        return LR
    return LR * (math.cos(iteration * 2 * math.pi / lr_cos) + 1) / 2


def np_rmsprop(weights, grad_steps, lr_cos=0, clipnorm=0.0, rho=0.9):
    w = [x.astype(np.float64) for x in weights]
    acc = [np.zeros_like(x) for x in w]
    for it, grads in enumerate(grad_steps):
        grads = np_clip(grads, clipnorm)
        for i, g in enumerate(grads):
            acc[i] = rho * acc[i] + (1 - rho) * g**2
            w[i] = w[i] - np_lr(it, lr_cos) * g / (np.sqrt(acc[i]) + 1e-6)
    return w


def np_adabelief(weights, grad_steps, lr_cos=0, clipnorm=0.0, b1=0.9, b2=0.999):
    w = [x.astype(np.float64) for x in weights]
    m = [np.zeros_like(x) for x in w]
    v = [np.zeros_like(x) for x in w]
    for it, grads in enumerate(grad_steps):
        grads = np_clip(grads, clipnorm)
        for i, g in enumerate(grads):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * (g - m[i]) ** 2
            w[i] = w[i] - np_lr(it, lr_cos) * m[i] / (np.sqrt(v[i]) + 1e-6)
    return w


@pytest.mark.parametrize(
    ("cls", "reference", "lr_cos", "clipnorm"),
    [
        (RMSprop, np_rmsprop, 0, 0.0),
        (AdaBelief, np_adabelief, 0, 0.0),
        (RMSprop, np_rmsprop, 4, 0.01),
        (AdaBelief, np_adabelief, 4, 0.01),
    ],
    ids=["rmsprop", "adabelief", "rmsprop-cos-clip", "adabelief-cos-clip"],
)
def test_matches_numpy_reference(cls, reference, lr_cos, clipnorm):
    rng = np.random.default_rng(1)
    variables = make_variables(rng)
    start = values(variables)
    grad_steps = [
        [(1e-2 * rng.standard_normal(s)).astype(np.float32) for s in SHAPES] for _ in range(2)
    ]
    assert math.sqrt(sum((g**2).sum() for g in grad_steps[0])) > 0.01  # the clip is active
    optimizer = cls(learning_rate=LR, lr_dropout=1.0, lr_cos=lr_cos, clipnorm=clipnorm)
    apply = stepper(optimizer, variables)
    for grads in grad_steps:
        apply(grads)
    expected = reference(start, grad_steps, lr_cos=lr_cos, clipnorm=clipnorm)
    for got, want in zip(values(variables), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert int(ops.convert_to_numpy(optimizer.iterations)) == 2


@pytest.mark.parametrize("cls", [RMSprop, AdaBelief])
def test_lr_dropout_updates_a_fresh_30_percent(cls):
    rng = np.random.default_rng(2)
    shapes = ((100, 150), (5000,))
    variables = make_variables(rng, shapes)
    optimizer = cls(learning_rate=LR, lr_dropout=0.3, seed=5)
    apply = stepper(optimizer, variables)
    grads = [np.ones(s, np.float32) for s in shapes]
    changed = []
    for _ in range(2):
        before = values(variables)
        apply(grads)
        changed.append(
            np.concatenate(
                [(a != b).ravel() for a, b in zip(values(variables), before, strict=True)]
            )
        )
        assert 0.28 < changed[-1].mean() < 0.32
    overlap = (changed[0] & changed[1]).mean()
    assert not np.array_equal(changed[0], changed[1])
    assert 0.07 < overlap < 0.11  # independent masks: 0.3 * 0.3
    slots = [v for v in optimizer.variables if v.path.endswith(("_acc", "_ms", "_vs"))]
    assert slots
    for slot in slots:  # slots are updated everywhere, masked or not
        assert np.all(np.asarray(ops.convert_to_numpy(slot.value)) != 0)


def test_global_clipnorm_scales_by_c_over_n():
    optimizer = RMSprop(learning_rate=LR, clipnorm=1.0)
    grads = [ops.convert_to_tensor(np.array([3.0], np.float32)), None]
    grads.append(ops.convert_to_tensor(np.array([[4.0]], np.float32)))
    clipped = optimizer.clip_gradients(grads)
    assert clipped[1] is None
    np.testing.assert_allclose(ops.convert_to_numpy(clipped[0]), [0.6], rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(clipped[2]), [[0.8]], rtol=1e-6)
    loose = RMSprop(learning_rate=LR, clipnorm=10.0).clip_gradients(grads)
    np.testing.assert_allclose(ops.convert_to_numpy(loose[0]), [3.0])
    off = RMSprop(learning_rate=LR).clip_gradients(grads)
    assert off is grads


@pytest.mark.parametrize("cls", [RMSprop, AdaBelief])
def test_restored_state_resumes_exactly(cls):
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    first = make_variables(rng, prefix="a")
    opt_a = cls(learning_rate=LR, lr_dropout=0.3, lr_cos=7)
    apply_a = stepper(opt_a, first)
    apply_a(grads)
    apply_a(grads)

    second = [keras.Variable(x, name=f"b{i}") for i, x in enumerate(values(first))]
    opt_b = cls.from_config(opt_a.get_config())
    apply_b = stepper(opt_b, second)
    assert [tuple(v.shape) for v in opt_b.variables] == [tuple(v.shape) for v in opt_a.variables]
    for target, source in zip(opt_b.variables, opt_a.variables, strict=True):
        target.assign(source.value)
    apply_a(grads)
    apply_b(grads)
    for a, b in zip(values(first), values(second), strict=True):
        np.testing.assert_array_equal(a, b)


def test_config_round_trip_and_slot_names():
    optimizer = AdaBelief(learning_rate=5e-5, lr_dropout=0.3, lr_cos=500, clipnorm=1.0)
    config = optimizer.get_config()
    assert config["lr_dropout"] == 0.3
    assert config["lr_cos"] == 500
    assert config["clipnorm"] == 1.0
    assert AdaBelief.from_config(config).get_config() == config
    variables = make_variables(np.random.default_rng(4), prefix="net_")
    optimizer.build(variables)
    paths = [v.path for v in optimizer.variables]
    assert any(p.endswith("net_0_ms") for p in paths)
    assert any(p.endswith("net_1_vs") for p in paths)
    assert any("seed" in p for p in paths)  # the dropout mask's random state is saved too
    with pytest.raises(ValueError, match="keep probability"):
        RMSprop(lr_dropout=0.0)
