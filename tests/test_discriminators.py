"""UNet patch discriminator and code discriminator (dfl.nn.discriminators) against
docs/networks.md §1, §6 and §7."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
from keras import ops

from dfl.nn import blocks
from dfl.nn import discriminators as D


def brute_force_layers(patch_size: int, max_layers: int = 9) -> list[tuple[int, int]]:
    """The search of docs/networks.md §6 written independently: every stride tuple, per receptive
    field the fewest layers then the largest total stride (asserted unique), closest rf wins."""
    best: dict[int, tuple[int, int, list]] = {}
    for count in range(1, max_layers + 1):
        for rest in itertools.product((1, 2), repeat=count - 1):
            strides = (2, *rest)
            rf = 3 + sum(2 * int(np.prod(strides[:i])) for i in range(1, count))
            key = (count, -sum(strides))
            if rf not in best or key < best[rf][:2]:
                best[rf] = (*key, [strides])
            elif key == best[rf][:2]:
                best[rf][2].append(strides)
    for rf, (_, _, candidates) in best.items():
        assert len(candidates) == 1, f"tie at rf {rf}: {candidates}"
    rfs = sorted(best)
    rf = rfs[int(np.argmin([abs(r - patch_size) for r in rfs]))]
    return [(3, s) for s in best[rf][2][0]]


@pytest.mark.parametrize(
    ("patch", "rf", "strides"),
    [
        (32, 31, [2, 2, 2, 2]),
        (28, 27, [2, 1, 2, 1, 2]),
        (16, 15, [2, 2, 2]),
        (24, 23, [2, 2, 1, 2]),
        (12, 11, [2, 1, 2]),
    ],
)
def test_layer_search_matches_dfls_examples(patch, rf, strides):
    layers = D.find_patch_layers(patch)
    assert [s for _, s in layers] == strides
    assert all(k == 3 for k, _ in layers)
    assert D.receptive_field(layers) == rf


def test_layer_search_matches_an_independent_brute_force():
    for patch in [*range(3, 100), 128, 200, 333, 640]:
        assert D.find_patch_layers(patch) == brute_force_layers(patch), patch
    assert D.receptive_field([(3, 2), (3, 1), (3, 2)]) == 3 + 2 * 2 + 2 * 2
    assert D.default_gan_patch_size(256) == 32 and D.default_gan_patch_size(224) == 28


def test_level_channels():
    assert D.unet_level_channels(4, 16) == {-1: 16, 0: 32, 1: 64, 2: 128, 3: 256}
    assert D.unet_level_channels(5, 64) == {-1: 64, 0: 128, 1: 256, 2: 512, 3: 512, 4: 512}


def unet_params(layers: list[tuple[int, int]], base: int, in_ch: int = 3) -> int:
    """Weights + biases of the UNet of docs/networks.md §6, counted from its description."""
    n = len(layers)
    ch = {i - 1: min(base * 2**i, 512) for i in range(n + 1)}
    total = in_ch * ch[-1] + ch[-1]  # in_conv 1×1
    for i, (k, _) in enumerate(layers):
        total += k * k * ch[i - 1] * ch[i] + ch[i]  # down conv
        up_in = ch[i] * (1 if i == n - 1 else 2)
        total += k * k * up_in * ch[i - 1] + ch[i - 1]  # transposed conv
    deep = ch[n - 1]
    total += deep + 1  # center_out 1×1 -> 1
    total += deep * deep + deep  # center_conv 1×1
    total += 2 * ch[-1] + 1  # out_conv 1×1 on [skip, up]
    return total


def macs(model: keras.Model) -> int:
    """Multiply-adds of the convs (docs/networks.md §7: biases and activations ignored)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, blocks.Conv2D):
            _, h, w, cout = layer.output.shape
            k, cin = layer.kernel_size, layer.input.shape[-1]
            total += h * w * k * k * cin * cout
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            _, h, w, cin = layer.input.shape
            k = layer.kernel_size[0]
            total += h * w * k * k * cin * layer.filters
    return total


@pytest.mark.parametrize(("patch", "dims"), [(32, 16), (28, 16), (16, 8), (64, 64)])
def test_unet_parameter_count(patch, dims):
    model = D.build_unet_patch_discriminator(patch, base_ch=dims)
    assert model.count_params() == unet_params(D.find_patch_layers(patch), dims)


def test_unet_at_256_patch_32_is_0_85_gmac():
    model = D.build_unet_patch_discriminator(32, base_ch=16, resolution=256)
    assert model.count_params() == 946_994
    assert macs(model) / 1e9 == pytest.approx(0.85, abs=0.01)  # docs/networks.md §7
    assert tuple(model.get_layer("upconvs_0").kernel.shape) == (3, 3, 128, 256)  # (k, k, out, in)
    assert tuple(model.get_layer("upconvs_3").kernel.shape) == (3, 3, 16, 64)
    assert tuple(model.get_layer("out_conv").kernel.shape) == (1, 1, 32, 1)


def test_unet_skip_comes_first_in_each_concat():
    model = D.build_unet_patch_discriminator(28, base_ch=4, resolution=32)
    n = len(D.find_patch_layers(28))
    for j in range(n):
        i = n - 1 - j  # upconvs_j undoes down layer i; its skip is the input of convs_i
        skip = model.get_layer("in_act" if i == 0 else f"convs_{i - 1}_act").output
        up = model.get_layer(f"upconvs_{j}_act").output
        assert model.get_layer(f"skip_{j}").input == [skip, up]


@pytest.mark.parametrize(("patch", "res", "center"), [(32, 64, 4), (28, 32, 4), (12, 24, 6)])
def test_unet_output_shapes(patch, res, center):
    keras.utils.set_random_seed(1)
    model = D.build_unet_patch_discriminator(patch, base_ch=4)
    x = np.random.default_rng(0).random((2, res, res, 3)).astype(np.float32)
    center_logits, pixel_logits = model(x)
    assert tuple(center_logits.shape) == (2, center, center, 1)
    assert tuple(pixel_logits.shape) == (2, res, res, 1)
    assert np.isfinite(ops.convert_to_numpy(pixel_logits)).all()


def test_unet_refuses_a_resolution_its_strides_do_not_divide():
    with pytest.raises(ValueError, match="divisible by 16"):
        D.build_unet_patch_discriminator(32, resolution=40)


def test_code_discriminator_df_ud_256_shapes_and_size():
    model = D.build_code_discriminator(256, 16)
    convs = [model.get_layer(f"convs_{i}") for i in range(3)]
    assert [tuple(c.output.shape[1:]) for c in convs] == [(9, 9, 256), (5, 5, 512), (3, 3, 1024)]
    assert [c.kernel_size for c in convs] == [4, 3, 3]
    assert tuple(model.output.shape[1:]) == (3, 3, 1)
    want = (4 * 4 * 256 * 256 + 256) + (9 * 256 * 512 + 512) + (9 * 512 * 1024 + 1024) + 1025
    assert model.count_params() == want
    assert macs(model) / 1e9 == pytest.approx(0.16, abs=0.005)  # docs/networks.md §7


@pytest.mark.parametrize(
    ("code_res", "layers"), [(2, 1), (4, 1), (8, 2), (14, 2), (16, 3), (20, 3)]
)
def test_code_discriminator_layer_count(code_res, layers):
    assert D.code_discriminator_layers(code_res) == layers
    model = D.build_code_discriminator(8, code_res, base_ch=4)
    assert sum(isinstance(layer, blocks.Conv2D) for layer in model.layers) == layers + 1
    out = model(np.zeros((1, code_res, code_res, 8), np.float32))
    size = code_res // 2 + 1  # k4 pad 2 stride 2 (correction 2), then k3 pad 1 stride 2
    for _ in range(layers - 1):
        size = (size + 1) // 2
    assert tuple(out.shape) == (1, size, size, 1)
