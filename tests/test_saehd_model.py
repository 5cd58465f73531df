"""Tests for the SAEHD model module: the option table (docs/dfl-trainer.md §4.2,
decisions 10-11), the df/liae networks with every archi opts combination, parameter counts and
the optimizer."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest

from dfl import backend
from dfl.common_options import COMMON_OPTIONS
from dfl.models.saehd import model as saehd
from dfl.nn import archi_networks, autoencoders
from dfl.nn.optimizers import AdaBelief, RMSprop
from dfl.options import SOURCE_STORED, OptionError, resolve_options
from tests.helpers import to_np

GIB = 1024**3

# DFL's ask order (docs/dfl-trainer.md §4.2)
ASK_ORDER = (
    "resolution",
    "face_type",
    "archi",
    "ae_dims",
    "e_dims",
    "d_dims",
    "d_mask_dims",
    "masked_training",
    "eyes_mouth_prio",
    "uniform_yaw",
    "blur_out_mask",
    "models_opt_on_gpu",
    "adabelief",
    "lr_dropout",
    "random_warp",
    "random_hsv_power",
    "gan_power",
    "gan_patch_size",
    "gan_dims",
    "true_face_power",
    "face_style_power",
    "bg_style_power",
    "ct_mode",
    "clipgrad",
    "pretrain",
)
FIXED = {"resolution", "face_type", "archi", "ae_dims", "e_dims", "d_dims", "d_mask_dims"}
DEFAULTS = {
    "resolution": 128,
    "face_type": "f",
    "archi": "liae-ud",
    "ae_dims": 256,
    "e_dims": 64,
    "d_dims": 64,
    "d_mask_dims": 22,
    "masked_training": True,
    "eyes_mouth_prio": False,
    "uniform_yaw": False,
    "blur_out_mask": False,
    "models_opt_on_gpu": True,
    "adabelief": True,
    "lr_dropout": "n",
    "random_warp": True,
    "random_hsv_power": 0.0,
    "gan_power": 0.0,
    "gan_patch_size": 16,
    "gan_dims": 16,
    "true_face_power": 0.0,
    "face_style_power": 0.0,
    "bg_style_power": 0.0,
    "ct_mode": "none",
    "clipgrad": False,
    "pretrain": False,
}
TINY = {"ae_dims": 32, "e_dims": 16, "d_dims": 16, "d_mask_dims": 16}  # the smallest allowed
ARCHI_OPTS = ["", "u", "d", "t", "ud", "ut", "dt", "udt", "c", "udtc"]


class Recorder:
    """Scripted answers; records (name, offered default) of every prompt."""

    def __init__(self, **answers):
        self.answers = answers
        self.asked: list[tuple[str, object]] = []

    def __call__(self, option, default, resolved):
        self.asked.append((option.name, default))
        return self.answers.get(option.name, default)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.asked]


def first_run(**answers):
    recorder = Recorder(**answers)
    resolved = resolve_options(saehd.SAEHD_OPTIONS, answer=recorder)
    return resolved, recorder


# ------------------------------------------------------------------------------ option table
def test_table_order_contract_and_fixed_options():
    assert saehd.NAME == "SAEHD"
    assert saehd.ASKS_OPTIONS is True
    assert saehd.OPTIONS is saehd.SAEHD_OPTIONS
    assert tuple(o.name for o in saehd.SAEHD_OPTIONS) == ASK_ORDER
    assert {o.name for o in saehd.SAEHD_OPTIONS if not o.changeable} == FIXED
    assert set(saehd.FIXED_OPTIONS) == FIXED
    for option in saehd.SAEHD_OPTIONS:
        assert option.label
        assert len(option.help) > 40, option.name
    table = saehd.option_table()
    assert [o.name for o in table] == [o.name for o in COMMON_OPTIONS] + list(ASK_ORDER)
    assert set(saehd.SUMMARY_ORDER) >= set(ASK_ORDER)


def test_defaults_and_what_is_asked_on_first_run():
    resolved, recorder = first_run()
    assert resolved.options == DEFAULTS
    # liae, face type f, GAN off: masked_training, the GAN patch/dims and true face are not asked
    skipped = {"masked_training", "gan_patch_size", "gan_dims", "true_face_power"}
    assert recorder.names == [n for n in ASK_ORDER if n not in skipped]
    assert dict(recorder.asked)["d_mask_dims"] == 22


@pytest.mark.parametrize(
    ("resolution", "archi_value", "expected", "step"),
    [
        (130, "liae-u", 128, 16),
        (128, "liae-ud", 128, None),
        (80, "df-u", 80, None),
        (80, "liae-ud", 64, 32),  # -d rounds to 32 (DFL)
        (80, "df-t", 64, 32),  # -t rounds to 32 too (decision 10)
        (112, "liae-udtc", 96, 32),
        (639, "df", 624, 16),
        (639, "df-d", 608, 32),
        (65, "liae-c", 64, 16),
    ],
)
def test_resolution_rounds_to_16_or_32(resolution, archi_value, expected, step):
    # answered at the prompt (the prompt itself shows the first rounding)
    resolved, _ = first_run(resolution=resolution, archi=archi_value)
    assert resolved.options["resolution"] == expected
    # the GAN patch default follows the final resolution
    assert resolved.options["gan_patch_size"] == expected // 8
    # given with --opt: every rounding is reported in the notes
    given = {"resolution": resolution, "archi": archi_value}
    resolved = resolve_options(saehd.SAEHD_OPTIONS, overrides=given)
    assert resolved.options["resolution"] == expected
    notes = [n for n in resolved.notes if n.startswith("resolution")]
    if step is None:
        assert notes == []
    else:
        assert notes[-1].endswith(f" -> {expected} (multiple of {step})")
    if (resolution, archi_value) == (639, "df-d"):
        assert notes == [
            "resolution 639 -> 624 (multiple of 16)",
            "resolution 624 -> 608 (multiple of 32)",
        ]


@pytest.mark.parametrize("bad", [63, 641, 32, 1000])
def test_resolution_out_of_range_names_the_range(bad):
    with pytest.raises(OptionError, match=r"resolution: .* must be in the range 64\.\.640"):
        resolve_options(saehd.SAEHD_OPTIONS, overrides={"resolution": bad})


def test_dims_ranges_and_even_rounding():
    resolved, _ = first_run(e_dims=63, d_dims=17, d_mask_dims=255, ae_dims=33)
    opts = resolved.options
    assert (opts["e_dims"], opts["d_dims"], opts["d_mask_dims"], opts["ae_dims"]) == (
        64,
        18,
        256,
        33,
    )
    given = resolve_options(saehd.SAEHD_OPTIONS, overrides={"e_dims": 63, "d_mask_dims": 17})
    assert "e_dims 63 -> 64 (multiple of 2)" in given.notes
    assert "d_mask_dims 17 -> 18 (multiple of 2)" in given.notes
    for name, bad in [("ae_dims", 31), ("ae_dims", 1025), ("e_dims", 257), ("d_mask_dims", 15)]:
        with pytest.raises(OptionError, match=f"{name}: {bad} is out of range"):
            resolve_options(saehd.SAEHD_OPTIONS, overrides={name: bad})


@pytest.mark.parametrize(
    ("face_type", "asked"), [(f, f in ("wf", "head")) for f in saehd.FACE_TYPES]
)
def test_masked_training_is_asked_only_for_wf_and_head(face_type, asked):
    resolved, recorder = first_run(face_type=face_type, masked_training="n")
    assert ("masked_training" in recorder.names) is asked
    assert resolved.options["masked_training"] is (not asked)  # not asked: stays True


def test_gan_patch_and_dims_are_asked_only_with_gan_power():
    resolved, recorder = first_run(resolution=256)
    assert "gan_patch_size" not in recorder.names
    assert "gan_dims" not in recorder.names
    # always stored, also at GAN power 0 (docs/dfl-trainer.md §4.5)
    assert (resolved.options["gan_patch_size"], resolved.options["gan_dims"]) == (32, 16)

    resolved, recorder = first_run(resolution=256, gan_power=0.1, gan_patch_size=40)
    asked = dict(recorder.asked)
    assert (asked["gan_patch_size"], asked["gan_dims"]) == (32, 16)
    assert resolved.options["gan_patch_size"] == 40
    for name, bad in [("gan_patch_size", 2), ("gan_patch_size", 641), ("gan_dims", 513)]:
        with pytest.raises(OptionError, match="out of range"):
            resolve_options(saehd.SAEHD_OPTIONS, overrides={"gan_power": 1.0, name: bad})


def test_true_face_power_only_for_df():
    resolved, recorder = first_run(archi="df-ud", true_face_power=0.01)
    assert "true_face_power" in recorder.names
    assert resolved.options["true_face_power"] == 0.01
    resolved, recorder = first_run(archi="liae-ud", true_face_power=0.01)
    assert "true_face_power" not in recorder.names
    assert resolved.options["true_face_power"] == 0.0
    with pytest.raises(OptionError, match=r"true_face_power: 0\.5 needs a df archi"):
        resolve_options(saehd.SAEHD_OPTIONS, overrides={"true_face_power": 0.5})
    with pytest.raises(OptionError, match="out of range"):
        resolve_options(saehd.SAEHD_OPTIONS, overrides={"archi": "df", "true_face_power": 1.5})


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("df", "df"),
        ("liae", "liae"),
        ("DF-UD", "df-ud"),
        (" liae-udtc ", "liae-udtc"),
        ("df-cdtu", "df-cdtu"),
        ("liae-t", "liae-t"),
        ("df-c", "df-c"),
    ],
)
def test_archi_accepts_df_liae_with_any_opts(given, stored):
    resolved, _ = first_run(archi=given)
    assert resolved.options["archi"] == stored
    assert saehd.parse_archi(stored)[0] in ("df", "liae")


@pytest.mark.parametrize(
    "bad", ["dfl", "df-", "df-x", "liae-u-d", "df_ud", "ae-ud", "-ud", "liae ud"]
)
def test_archi_refuses_what_dfl_refuses(bad):
    with pytest.raises(OptionError, match=r"archi: .* is not df or liae"):
        resolve_options(saehd.SAEHD_OPTIONS, overrides={"archi": bad})


def test_choices_and_float_ranges():
    resolved, _ = first_run(face_type="WF", lr_dropout="CPU", ct_mode="Sot")
    assert (resolved.options["face_type"], resolved.options["lr_dropout"]) == ("wf", "cpu")
    assert resolved.options["ct_mode"] == "sot"
    for mode in saehd.CT_MODES:
        assert first_run(ct_mode=mode)[0].options["ct_mode"] == mode
    for name, bad in [("face_type", "full"), ("lr_dropout", "maybe"), ("ct_mode", "abc")]:
        with pytest.raises(OptionError, match="is not one of"):
            resolve_options(saehd.SAEHD_OPTIONS, overrides={name: bad})
    for name, bad in [
        ("random_hsv_power", 0.31),
        ("gan_power", 5.1),
        ("face_style_power", 100.5),
        ("bg_style_power", -1),
    ]:
        with pytest.raises(OptionError, match=f"{name}: .* is out of range"):
            resolve_options(saehd.SAEHD_OPTIONS, overrides={name: bad})


def test_resume_asks_only_changeable_options_and_keeps_fixed_ones():
    created, _ = first_run(archi="df-ud", resolution=192, face_type="wf", gan_power=0.1)
    stored = dict(created.options)

    quiet = Recorder()
    resumed = resolve_options(saehd.SAEHD_OPTIONS, stored=stored, answer=quiet)
    assert quiet.asked == []
    assert resumed.options == stored
    assert set(resumed.sources.values()) == {SOURCE_STORED}

    override = Recorder(gan_power=0.0, lr_dropout="y", resolution=256)
    resumed = resolve_options(
        saehd.SAEHD_OPTIONS, stored=stored, answer=override, ask_changeable=True
    )
    assert not FIXED & set(override.names)
    # DFL's order minus the fixed options; the GAN patch and dims follow the new power (0)
    assert override.names == [
        n for n in ASK_ORDER if n not in FIXED and n not in ("gan_patch_size", "gan_dims")
    ]
    assert "masked_training" in override.names  # wf
    assert "true_face_power" in override.names  # df
    assert resumed.options["resolution"] == 192
    assert resumed.options["lr_dropout"] == "y"

    with pytest.raises(OptionError, match="resolution is fixed when the model is created"):
        resolve_options(saehd.SAEHD_OPTIONS, stored=stored, overrides={"resolution": 256})
    with pytest.raises(OptionError, match="archi is fixed"):
        resolve_options(saehd.SAEHD_OPTIONS, stored=stored, overrides={"archi": "liae-ud"})
    changed = resolve_options(saehd.SAEHD_OPTIONS, stored=stored, overrides={"ct_mode": "rct"})
    assert changed.options["ct_mode"] == "rct"
    # a stored resolution is never re-rounded
    odd = dict(stored, archi="df-ud", resolution=80)
    assert resolve_options(saehd.SAEHD_OPTIONS, stored=odd).options["resolution"] == 80


def test_batch_size_suggestion_by_device():
    def default_batch(memory):
        table = saehd.option_table(memory)
        return resolve_options(table).options["batch_size"]

    assert default_batch(None) == 4  # CPU
    assert default_batch(2 * GIB) == 4
    assert default_batch(4 * GIB) == 8
    assert default_batch(80 * GIB) == 8
    assert [saehd.batch_size({"batch_size": 8}, n) for n in (0, 1, 2, 3, 16)] == [8, 8, 8, 6, 16]


def test_pretrain_helpers_and_summary_order():
    options = dict(DEFAULTS, pretrain=True, lr_dropout="y", gan_power=0.2, random_warp=True)
    effective = saehd.effective_options(options)
    assert effective["random_warp"] is False
    assert effective["lr_dropout"] == "n"
    assert effective["gan_power"] == 0.0
    assert effective["random_src_flip"] is True
    assert effective["uniform_yaw"] is True
    assert options["gan_power"] == 0.2  # stored options unchanged
    assert saehd.display_overrides(options)["lr_dropout"] == "n"
    assert "random_src_flip" not in saehd.display_overrides(options)
    assert saehd.display_overrides(DEFAULTS) == {}
    full = resolve_options(saehd.option_table()).options
    ordered = list(saehd.summary_options(full))
    assert ordered[:4] == ["resolution", "face_type", "models_opt_on_gpu", "archi"]
    # DFL's keys in DFL's order, then the project's own (not in DFL's summary)
    assert ordered[-6:] == [
        "gan_power",
        "gan_patch_size",
        "gan_dims",
        "bf16",
        "sample_cache_mb",
        "seed",
    ]
    assert sorted(ordered) == sorted(full)
    assert saehd.preview_history_every({"resolution": 128}) == 20
    assert saehd.preview_history_every({"resolution": 96}) == 10


def test_trained_and_reinitialised_networks():
    assert saehd.trained_networks({"archi": "df-ud"}) == (
        "encoder",
        "inter",
        "decoder_src",
        "decoder_dst",
    )
    assert saehd.trained_networks({"archi": "liae-ud"}) == (
        "encoder",
        "inter_AB",
        "inter_B",
        "decoder",
    )
    # liae with random warp off (also in pretraining) does not train inter_AB
    assert saehd.trained_networks({"archi": "liae-ud", "random_warp": False}) == (
        "encoder",
        "inter_B",
        "decoder",
    )
    assert "inter_AB" not in saehd.trained_networks({"archi": "liae", "pretrain": True})
    assert saehd.reinitialised_on_pretrain_off({"archi": "df"}) == ("inter",)
    assert saehd.reinitialised_on_pretrain_off({}) == ("inter_AB", "inter_B")


# ---------------------------------------------------------------------------------- optimizer
@pytest.mark.parametrize(
    ("options", "cls", "dropout", "cos", "clip"),
    [
        ({}, AdaBelief, 1.0, 0, 0.0),
        ({"adabelief": False}, RMSprop, 1.0, 0, 0.0),
        ({"lr_dropout": "y"}, AdaBelief, 0.3, 500, 0.0),
        ({"lr_dropout": "cpu", "clipgrad": True}, AdaBelief, 0.3, 500, 1.0),
        ({"lr_dropout": "y", "pretrain": True}, AdaBelief, 1.0, 0, 0.0),
        ({"adabelief": False, "clipgrad": True}, RMSprop, 1.0, 0, 1.0),
    ],
)
def test_make_optimizer(options, cls, dropout, cos, clip):
    optimizer = saehd.make_optimizer(options)
    assert type(optimizer) is cls
    config = optimizer.get_config()
    assert config["learning_rate"] == pytest.approx(5e-5)
    assert config["lr_dropout"] == pytest.approx(dropout)
    assert config["lr_cos"] == cos
    assert config["clipnorm"] == clip


# ----------------------------------------------------------------------------------- networks
def test_parameter_counts_at_default_dims():
    """docs/networks.md §3: liae-ud 256 ≈ 145.34 M, df-ud 256 ≈ 82.79 M (build only)."""
    liae = saehd.build({"archi": "liae-ud", "resolution": 256})
    assert isinstance(liae, autoencoders.LIAEAutoencoder)
    assert abs(liae.count_params() - 145.34e6) < 0.005e6
    assert liae.count_params() == 145_340_267
    counts = {name: net.count_params() for name, net in liae.networks.items()}
    assert counts == {
        "encoder": 4_306_560,
        "inter_AB": 51_415_296,
        "inter_B": 51_415_296,
        "decoder": 38_203_115,
    }
    del liae
    df = saehd.build({"archi": "df-ud", "resolution": 256})
    assert isinstance(df, autoencoders.DFAutoencoder)
    assert abs(df.count_params() - 82.79e6) < 0.005e6
    assert df.count_params() == 82_794_838
    assert list(df.networks) == ["encoder", "inter", "decoder_src", "decoder_dst"]
    assert df.networks["inter"].count_params() == 40_125_696


def make_batch(res: int, batch: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for side in ("src", "dst"):
        out[f"warped_{side}"] = rng.random((batch, res, res, 3), dtype=np.float32)
        out[f"target_{side}"] = rng.random((batch, res, res, 3), dtype=np.float32)
        out[f"mask_{side}"] = (rng.random((batch, res, res, 1)) > 0.4).astype(np.float32)
    return out


@pytest.mark.parametrize(("layout", "opts"), list(itertools.product(("df", "liae"), ARCHI_OPTS)))
def test_every_archi_builds_with_expected_shapes(layout, opts):
    res = 32  # below SAEHD's 64 minimum, which only the options enforce: fast
    arch = archi_networks.Architecture(res, 16, 4, 4, 2, opts)
    model = autoencoders.build_autoencoder(layout, arch)
    nets = model.networks
    expected = (
        ["encoder", "inter", "decoder_src", "decoder_dst"]
        if layout == "df"
        else ["encoder", "inter_AB", "inter_B", "decoder"]
    )
    assert list(nets) == expected
    ae_out = 16 if layout == "df" else 32
    code_res = res // (32 if "d" in opts else 16) * (1 if "t" in opts else 2)
    assert tuple(nets["encoder"].output.shape) == (None, arch.encoder_out_dims)
    assert tuple(nets[expected[1]].output.shape) == (None, code_res, code_res, ae_out)
    decoder = nets[expected[3]]
    decoder_in = 16 if layout == "df" else 4 * 16  # liae: concat of two 2·ae codes
    assert tuple(decoder.input.shape) == (None, code_res, code_res, decoder_in)
    outputs = model(make_batch(res))
    assert set(outputs) == set(autoencoders.OUTPUT_KEYS)
    for key in autoencoders.OUTPUT_KEYS:
        channels = 1 if key.endswith("mask") else 3
        assert tuple(outputs[key].shape) == (2, res, res, channels)
        value = to_np(outputs[key])
        assert np.all((value >= 0) & (value <= 1))
    paths = [v.path for v in model.weights]
    assert len(paths) == len(set(paths))
    assert all(p.split("/")[0] in expected for p in paths)


@pytest.mark.parametrize("archi_value", ["liae-udt", "df-udtc"])
def test_build_from_options_at_64(archi_value):
    keras.utils.set_random_seed(0)
    options = {"archi": archi_value, "resolution": 64, "face_type": "head", **TINY}
    model = saehd.build(options)
    layout, arch = saehd.architecture(options)
    assert model.arch == arch
    assert (layout, arch.opts) == tuple(archi_value.split("-"))
    assert model.face_type == "head"
    batch = make_batch(64)
    outputs = model(batch)
    assert tuple(outputs["pred_dst"].shape) == (2, 64, 64, 3)
    preview = saehd.predict_preview(model, batch["target_src"], batch["target_dst"])
    assert {k: v.shape for k, v in preview.items()} == {
        "ss": (2, 64, 64, 3),
        "ssm": (2, 64, 64, 1),
        "dd": (2, 64, 64, 3),
        "ddm": (2, 64, 64, 1),
        "sd": (2, 64, 64, 3),
        "sdm": (2, 64, 64, 1),
    }
    pages = saehd.preview(model, batch)
    assert [name for name, _ in pages] == ["SAEHD", "SAEHD masked"]
    assert pages[0][1].shape[:2] == (2 * 64, 5 * 64)


def test_extra_outputs_follow_the_loss_options():
    assert saehd.extra_outputs({}) == ()
    assert saehd.extra_outputs({"bg_style_power": 2.0}) == ("swap",)
    assert saehd.extra_outputs({"face_style_power": 0.1}) == ("swap_no_code_grad",)
    assert saehd.extra_outputs({"archi": "df-ud", "true_face_power": 0.01}) == ("codes",)
    assert saehd.extra_outputs({"face_style_power": 0.1, "pretrain": True}) == ()
    model = saehd.build(
        {"archi": "df-ud", "resolution": 64, "true_face_power": 0.01, "bg_style_power": 1.0, **TINY}
    )
    outputs = model(make_batch(64))
    assert tuple(outputs["src_code"].shape) == (2, 4, 4, 32)  # ldr 64 // 32, upscaled once
    assert tuple(outputs["pred_src_dst"].shape) == (2, 64, 64, 3)


def test_tiny_training_step_with_placeholder_losses():
    keras.utils.set_random_seed(0)
    options = {"archi": "liae-udt", "resolution": 64, "lr_dropout": "y", "clipgrad": True, **TINY}
    model = saehd.build(options)
    optimizer = saehd.make_optimizer(options)
    step = backend.make_model_step(model, saehd.make_compute_losses(options), optimizer)
    batch = make_batch(64, batch=2)
    before = {name: [to_np(w).copy() for w in net.weights] for name, net in model.networks.items()}
    for _ in range(3):
        result = step(batch)
        assert set(result) == {"loss", "src_loss", "dst_loss"}
        assert all(np.isfinite(v) for v in result.values())
    step.sync()
    assert int(to_np(optimizer.iterations)) == 3
    for name, net in model.networks.items():
        changed = any(
            not np.array_equal(to_np(w), old)
            for w, old in zip(net.weights, before[name], strict=True)
        )
        assert changed, name


@pytest.mark.parametrize(("archi_value", "res"), [("df-ud", 640), ("liae-udt", 640), ("df", 64)])
def test_resolution_extremes_build(archi_value, res):
    """64 and 640 px with the smallest dims: symbolic shapes only (no forward pass)."""
    model = saehd.build({"archi": archi_value, "resolution": res, **TINY})
    decoder = list(model.networks.values())[-1]
    assert [tuple(o.shape) for o in decoder.outputs] == [(None, res, res, 3), (None, res, res, 1)]
    assert tuple(model.encoder.input.shape) == (None, res, res, 3)
