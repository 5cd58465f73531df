"""AMP's option table (docs/dfl-trainer.md §4.3-4.6; decisions 10-11): ask order, defaults,
ranges, rounding, conditions, fixed vs changeable, the summary order and the resume rules."""

from __future__ import annotations

import pytest

from dfl.common_options import COMMON_OPTIONS
from dfl.models.amp import options as amp_options
from dfl.models.saehd import option_definitions
from dfl.options import SOURCE_STORED, OptionError, resolve_options

# DFL's ask order (docs/dfl-trainer.md §4.3)
ASK_ORDER = (
    "resolution",
    "face_type",
    "ae_dims",
    "inter_dims",
    "e_dims",
    "d_dims",
    "d_mask_dims",
    "morph_factor",
    "uniform_yaw",
    "blur_out_mask",
    "lr_dropout",
    "models_opt_on_gpu",
    "random_warp",
    "gan_power",
    "gan_patch_size",
    "gan_dims",
    "ct_mode",
    "clipgrad",
)
FIXED = {
    "resolution",
    "face_type",
    "ae_dims",
    "inter_dims",
    "e_dims",
    "d_dims",
    "d_mask_dims",
    "morph_factor",
}
DEFAULTS = {
    "resolution": 224,
    "face_type": "wf",
    "ae_dims": 256,
    "inter_dims": 1024,
    "e_dims": 64,
    "d_dims": 64,
    "d_mask_dims": 22,
    "morph_factor": 0.5,
    "uniform_yaw": False,
    "blur_out_mask": False,
    "lr_dropout": "n",
    "models_opt_on_gpu": True,
    "random_warp": True,
    "gan_power": 0.0,
    "gan_patch_size": 28,
    "gan_dims": 16,
    "ct_mode": "none",
    "clipgrad": False,
}


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
    return resolve_options(amp_options.AMP_OPTIONS, answer=recorder), recorder


def test_table_order_and_fixed_options():
    assert amp_options.NAME == "AMP"
    assert amp_options.ASKS_OPTIONS is True
    assert amp_options.OPTIONS is amp_options.AMP_OPTIONS
    assert tuple(o.name for o in amp_options.AMP_OPTIONS) == ASK_ORDER
    assert {o.name for o in amp_options.AMP_OPTIONS if not o.changeable} == FIXED
    assert set(amp_options.FIXED_OPTIONS) == FIXED
    for option in amp_options.AMP_OPTIONS:
        assert option.label
        assert len(option.help) > 40, option.name
    table = amp_options.option_table(80 * 1024**3)
    assert [o.name for o in table] == [o.name for o in COMMON_OPTIONS] + list(ASK_ORDER)


def test_defaults_and_what_is_asked_on_first_run():
    resolved, recorder = first_run()
    assert resolved.options == DEFAULTS
    assert recorder.names == [n for n in ASK_ORDER if n not in ("gan_patch_size", "gan_dims")]
    assert dict(recorder.asked)["d_mask_dims"] == 22


def test_batch_default_is_8_on_any_device():
    for memory in (None, 1024**3, 80 * 1024**3):
        assert resolve_options(amp_options.option_table(memory)).options["batch_size"] == 8


@pytest.mark.parametrize(
    ("given", "expected"), [(224, 224), (230, 224), (95, 64), (128, 128), (639, 608), (64, 64)]
)
def test_resolution_rounds_down_to_32(given, expected):
    resolved = resolve_options(amp_options.AMP_OPTIONS, overrides={"resolution": given})
    assert resolved.options["resolution"] == expected
    assert bool(resolved.notes) == (given != expected)
    if given != expected:
        assert f"resolution {given} -> {expected} (multiple of 32)" in resolved.notes


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("resolution", 32),
        ("resolution", 672),
        ("ae_dims", 31),
        ("ae_dims", 1025),
        ("inter_dims", 31),
        ("inter_dims", 2049),
        ("e_dims", 15),
        ("d_dims", 257),
        ("d_mask_dims", 15),
        ("morph_factor", 0.05),
        ("morph_factor", 0.51),
        ("gan_power", 5.5),
        ("gan_patch_size", 2),
        ("gan_dims", 513),
    ],
)
def test_ranges_name_the_range(name, bad):
    overrides = {name: bad}
    if name.startswith("gan_") and name != "gan_power":
        overrides["gan_power"] = 0.1
    with pytest.raises(OptionError, match=f"{name}: .* is out of range"):
        resolve_options(amp_options.AMP_OPTIONS, overrides=overrides)


def test_dims_even_rounding_and_the_mask_default():
    options = resolve_options(
        amp_options.AMP_OPTIONS,
        overrides={"e_dims": 17, "d_dims": 33, "inter_dims": 33, "ae_dims": 33},
    ).options
    assert (options["e_dims"], options["d_dims"]) == (18, 34)  # even, rounded up
    assert (options["inter_dims"], options["ae_dims"]) == (33, 33)  # any whole number
    assert options["d_mask_dims"] == 22  # from the offered d_dims 64 (64 // 3 -> 21, even), as DFL
    resolved, recorder = first_run(d_dims=96)
    assert dict(recorder.asked)["d_mask_dims"] == 22  # a typed d_dims does not move it
    assert resolved.options["morph_factor"] == 0.5


def test_choices():
    def resolved(**overrides):
        return resolve_options(amp_options.AMP_OPTIONS, overrides=overrides).options

    assert resolved(face_type="HEAD")["face_type"] == "head"
    assert resolved(lr_dropout="cpu")["lr_dropout"] == "cpu"
    for name, bad in (("face_type", "h"), ("face_type", "mf"), ("lr_dropout", "x")):
        with pytest.raises(OptionError, match=f"{name}: .* is not one of"):
            resolve_options(amp_options.AMP_OPTIONS, overrides={name: bad})
    for mode in option_definitions.CT_MODES:
        assert resolved(ct_mode=mode)["ct_mode"] == mode


def test_gan_patch_and_dims_only_with_gan_power_and_follow_the_resolution():
    resolved, recorder = first_run(gan_power=0.1, resolution=128)
    assert "gan_patch_size" in recorder.names and "gan_dims" in recorder.names
    assert dict(recorder.asked)["gan_patch_size"] == 16  # resolution // 8
    assert resolved.options["gan_dims"] == 16
    resolved, recorder = first_run(gan_power=0.0, resolution=320)
    assert "gan_patch_size" not in recorder.names
    assert resolved.options["gan_patch_size"] == 40  # still stored (docs/dfl-trainer.md §4.5)


def test_help_texts_say_what_amp_does():
    by_name = {o.name: o for o in amp_options.AMP_OPTIONS}
    assert "never trained" in by_name["morph_factor"].help
    assert "changes nothing" in by_name["models_opt_on_gpu"].help
    assert "multiple of 32" in by_name["resolution"].help
    assert "lr_dropout" not in by_name["gan_power"].help
    assert "lct" in by_name["ct_mode"].help
    assert "AutoEncoder dimensions" in by_name["inter_dims"].help


def test_resume_asks_only_changeable_options_and_keeps_fixed_ones():
    created, _ = first_run(resolution=128, gan_power=0.1, morph_factor=0.3)
    stored = dict(created.options)

    quiet = Recorder()
    resumed = resolve_options(amp_options.AMP_OPTIONS, stored=stored, answer=quiet)
    assert quiet.asked == []
    assert resumed.options == stored
    assert set(resumed.sources.values()) == {SOURCE_STORED}

    override = Recorder(gan_power=0.0, lr_dropout="y", resolution=256, morph_factor=0.1)
    resumed = resolve_options(
        amp_options.AMP_OPTIONS, stored=stored, answer=override, ask_changeable=True
    )
    # DFL's order minus the fixed options; the GAN patch and dims follow the new power (0)
    assert override.names == [
        n for n in ASK_ORDER if n not in FIXED and n not in ("gan_patch_size", "gan_dims")
    ]
    assert resumed.options["resolution"] == 128
    assert resumed.options["morph_factor"] == 0.3
    assert resumed.options["lr_dropout"] == "y"
    for name, value in (("resolution", 256), ("morph_factor", 0.2), ("inter_dims", 512)):
        with pytest.raises(OptionError, match=f"{name} is fixed when the model is created"):
            resolve_options(amp_options.AMP_OPTIONS, stored=stored, overrides={name: value})


def test_summary_order_and_helpers():
    full = resolve_options(amp_options.option_table()).options
    ordered = list(amp_options.summary_options(full))
    assert ordered[:5] == ["resolution", "face_type", "models_opt_on_gpu", "ae_dims", "inter_dims"]
    assert ordered[ordered.index("clipgrad") + 1] == "autobackup_hour"
    after_batch = ordered.index("batch_size") + 1
    assert ordered[after_batch : after_batch + 3] == ["gan_power", "gan_patch_size", "gan_dims"]
    assert sorted(ordered) == sorted(full)
    assert amp_options.display_overrides(full) == {}
    assert amp_options.preview_history_every({"resolution": 224}) == 30
    assert amp_options.preview_history_every({"resolution": 64}) == 10
    assert amp_options.full_options({"resolution": 64})["gan_patch_size"] == 8
