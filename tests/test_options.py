"""Tests for dfl.options: coercion, rounding, derived defaults and the resolve rules."""

from __future__ import annotations

import re

import pytest

from dfl.common_options import COMMON_OPTIONS
from dfl.options import (
    SOURCE_ANSWER,
    SOURCE_DEFAULT,
    SOURCE_OVERRIDE,
    SOURCE_STORED,
    Option,
    OptionError,
    coerce,
    default_of,
    normalize,
    parse_assignments,
    resolve_options,
    round_to_multiple,
    with_defaults,
)

ARCHI_RE = re.compile(r"(df|liae)(-[udtc]+)?")


def _validate_archi(value, resolved):
    value = value.lower()
    if not ARCHI_RE.fullmatch(value):
        raise OptionError(f"archi: {value!r} is not df or liae with optional -u/d/t/c flags")
    return value


def _archi_opts(resolved) -> str:
    return resolved.get("archi", "").partition("-")[2]


def _resolution_multiple(resolved) -> int:
    return 32 if set(_archi_opts(resolved)) & {"d", "t"} else 16


def _d_mask_default(resolved) -> int:
    third = -(-resolved["d_dims"] // 3)
    return third + third % 2


# A slice of SAEHD's table (docs/dfl-trainer.md §4.2), in its ask order.
SAEHD_SLICE = (
    Option(
        "resolution",
        "Resolution",
        int,
        128,
        help="r",
        range=(64, 640),
        multiple_of=_resolution_multiple,
        changeable=False,
    ),
    Option(
        "face_type",
        "Face type",
        str,
        "f",
        help="f",
        choices=("h", "mf", "f", "wf", "head"),
        changeable=False,
    ),
    Option(
        "archi",
        "AE architecture",
        str,
        "liae-ud",
        help="a",
        validate=_validate_archi,
        changeable=False,
    ),
    Option(
        "e_dims",
        "Encoder dimensions",
        int,
        64,
        range=(16, 256),
        multiple_of=2,
        round_up=True,
        changeable=False,
    ),
    Option(
        "d_dims",
        "Decoder dimensions",
        int,
        64,
        range=(16, 256),
        multiple_of=2,
        round_up=True,
        changeable=False,
    ),
    Option(
        "d_mask_dims",
        "Decoder mask dimensions",
        int,
        _d_mask_default,
        range=(16, 256),
        multiple_of=2,
        round_up=True,
        changeable=False,
    ),
    Option(
        "masked_training",
        "Masked training",
        bool,
        True,
        when=lambda r: r["face_type"] in ("wf", "head"),
    ),
    Option("lr_dropout", "Use learning rate dropout", str, "n", choices=("n", "y", "cpu")),
    Option("gan_power", "GAN power", float, 0.0, range=(0.0, 5.0), hint="0.0 .. 5.0"),
    Option(
        "gan_patch_size",
        "GAN patch size",
        int,
        lambda r: r["resolution"] // 8,
        range=(3, 640),
        when=lambda r: r["gan_power"] != 0,
    ),
    Option(
        "gan_dims", "GAN dimensions", int, 16, range=(4, 512), when=lambda r: r["gan_power"] != 0
    ),
    Option(
        "true_face_power",
        "'True face' power.",
        float,
        0.0,
        range=(0.0, 1.0),
        when=lambda r: r["archi"].startswith("df"),
    ),
)

BOOL = Option("flag", "Flag", bool, False)
INT = Option("n", "N", int, 5, range=(0, 10))
FLOAT = Option("x", "X", float, 0.5, range=(0.0, 1.0))


class Recorder:
    """An answer callback returning scripted values and recording what was asked."""

    def __init__(self, **answers):
        self.answers = answers
        self.asked: list[tuple[str, object]] = []

    def __call__(self, option, default, resolved):
        self.asked.append((option.name, default))
        return self.answers.get(option.name, default)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("y", True), ("Y", True), ("yes", True), ("YES", True), ("true", True), ("True", True),
        ("1", True), (" y ", True), ("n", False), ("No", False), ("FALSE", False), ("0", False),
        (True, True), (False, False), (1, True), (0, False),
    ],
)  # fmt: skip
def test_bool_spellings(raw, expected):
    assert coerce(BOOL, raw) is expected


@pytest.mark.parametrize("raw", ["maybe", "", "2", 2, None, 0.5])
def test_bool_rejects(raw):
    with pytest.raises(OptionError, match="flag: expected y or n"):
        coerce(BOOL, raw)


def test_int_coercion():
    assert coerce(INT, " 7 ") == 7
    assert coerce(INT, 7.0) == 7
    for bad in ("1.5", "abc", "", True, 2.5):
        with pytest.raises(OptionError, match="whole number"):
            coerce(INT, bad)


def test_range_errors_name_the_range():
    with pytest.raises(
        OptionError, match=r"n: 11 is out of range; it must be in the range 0\.\.10"
    ):
        coerce(INT, "11")
    with pytest.raises(OptionError, match=r"in the range 0\.0\.\.1\.0"):
        coerce(FLOAT, "1.5")
    at_least = Option("t", "T", int, 0, range=(0, None))
    with pytest.raises(OptionError, match="at least 0"):
        coerce(at_least, "-1")
    assert coerce(at_least, "123456789") == 123456789


def test_float_coercion():
    assert coerce(FLOAT, "0.25") == 0.25
    assert coerce(FLOAT, 1) == 1.0
    for bad in ("nan", "inf", "x", True):
        with pytest.raises(OptionError, match="expected a number"):
            coerce(FLOAT, bad)


def test_choices_are_case_insensitive_and_canonical():
    face = SAEHD_SLICE[1]
    assert coerce(face, "WF") == "wf"
    assert coerce(face, " Head ") == "head"
    with pytest.raises(OptionError, match=r"face_type: 'x' is not one of h/mf/f/wf/head"):
        coerce(face, "x")


def test_round_to_multiple_notes():
    resolution = SAEHD_SLICE[0]
    assert round_to_multiple(resolution, 130, {"archi": "df"}) == (
        128,
        "resolution 130 -> 128 (multiple of 16)",
    )
    assert round_to_multiple(resolution, 144, {"archi": "liae-ud"}) == (
        128,
        "resolution 144 -> 128 (multiple of 32)",
    )
    assert round_to_multiple(resolution, 144, {"archi": "df-t"})[0] == 128
    assert round_to_multiple(resolution, 128, {"archi": "df"}) == (128, None)
    e_dims = SAEHD_SLICE[3]
    assert round_to_multiple(e_dims, 65) == (66, "e_dims 65 -> 66 (multiple of 2)")


def test_rounding_stays_in_range():
    option = Option("r", "R", int, 96, range=(70, 100), multiple_of=32)
    assert round_to_multiple(option, 75)[0] == 96  # 64 would fall below the range
    up = Option("u", "U", int, 4, range=(1, 9), multiple_of=4, round_up=True)
    assert round_to_multiple(up, 9)[0] == 8


def test_validate_hook_normalises_and_rejects():
    archi = SAEHD_SLICE[2]
    assert normalize(archi, "LIAE-UDT") == ("liae-udt", None)
    with pytest.raises(OptionError, match="archi"):
        normalize(archi, "liae-x")
    with pytest.raises(OptionError, match="archi"):
        normalize(archi, "df-u-d")


def test_bad_table_defaults_fail_at_definition():
    with pytest.raises(OptionError):
        Option("bad", "Bad", int, 99, range=(0, 10))
    with pytest.raises(OptionError):
        Option("bad", "Bad", int, 1, choices=("a",))
    with pytest.raises(OptionError):
        Option("bad", "Bad", list, [])


def test_new_model_defaults_in_order():
    result = resolve_options(SAEHD_SLICE)
    assert list(result.options) == [option.name for option in SAEHD_SLICE]
    assert result.options["d_mask_dims"] == 22  # 64 / 3 rounded up to even
    assert result.options["gan_patch_size"] == 16  # resolution // 8, stored even at GAN power 0
    assert result.options["masked_training"] is True
    assert set(result.sources.values()) == {SOURCE_DEFAULT}
    assert result.notes == []


def test_new_model_override_feeds_derived_defaults():
    result = resolve_options(
        SAEHD_SLICE, overrides={"resolution": "256", "d_dims": "96", "face_type": "WF"}
    )
    assert result.options["resolution"] == 256
    assert result.options["gan_patch_size"] == 32
    assert result.options["d_mask_dims"] == 32
    assert result.options["face_type"] == "wf"
    assert result.sources["resolution"] == SOURCE_OVERRIDE


def test_derived_default_is_clamped_to_range():
    table = (
        Option("a", "A", int, 8, range=(1, 100)),
        Option("b", "B", int, lambda r: r["a"] // 8, range=(3, 640)),
    )
    assert resolve_options(table).options["b"] == 3


def test_override_rounding_note_and_errors():
    result = resolve_options(SAEHD_SLICE, overrides={"resolution": "130", "archi": "df"})
    assert result.options["resolution"] == 128
    assert "resolution 130 -> 128 (multiple of 16)" in result.notes
    with pytest.raises(OptionError, match="out of range"):
        resolve_options(SAEHD_SLICE, overrides={"resolution": "1000"})
    with pytest.raises(OptionError, match="not one of"):
        resolve_options(SAEHD_SLICE, overrides={"lr_dropout": "maybe"})


def test_unknown_override_lists_valid_names():
    with pytest.raises(OptionError, match=r"unknown option nope; valid options: resolution, "):
        resolve_options(SAEHD_SLICE, overrides={"nope": "1"})


def test_answers_asked_in_order_with_when_conditions():
    answer = Recorder(gan_power=0.1, resolution=256)
    result = resolve_options(SAEHD_SLICE, answer=answer)
    asked = [name for name, _ in answer.asked]
    assert "masked_training" not in asked  # face_type f
    assert "true_face_power" not in asked  # liae
    assert asked[-2:] == ["gan_patch_size", "gan_dims"]
    assert dict(answer.asked)["gan_patch_size"] == 32  # derived from the answered resolution
    assert result.sources["resolution"] == SOURCE_ANSWER
    assert result.options["gan_power"] == 0.1


def test_overridden_options_are_not_asked():
    answer = Recorder()
    resolve_options(SAEHD_SLICE, overrides={"face_type": "head"}, answer=answer)
    asked = [name for name, _ in answer.asked]
    assert "face_type" not in asked
    assert "masked_training" in asked


def test_later_option_rerounds_earlier_resolution():
    # resolution 144 is fine for df (multiple of 16) but not for -d archis (multiple of 32).
    answer = Recorder(resolution=144, archi="df-ud")
    result = resolve_options(SAEHD_SLICE, answer=answer)
    assert result.options["resolution"] == 128
    assert "resolution 144 -> 128 (multiple of 32)" in result.notes


def test_invalid_answer_raises():
    with pytest.raises(OptionError):
        resolve_options(SAEHD_SLICE, answer=Recorder(gan_power=9.0))


def _stored(**changes):
    values = dict(resolve_options(SAEHD_SLICE).options)
    values.update(changes)
    return values


def test_resume_uses_stored_and_asks_nothing_by_default():
    stored = _stored(resolution=256, gan_power=0.5)
    answer = Recorder()
    result = resolve_options(SAEHD_SLICE, stored=stored, answer=answer)
    assert answer.asked == []
    assert result.options == stored
    assert set(result.sources.values()) == {SOURCE_STORED}


def test_resume_asks_only_changeable_when_requested():
    stored = _stored(gan_power=0.5)
    answer = Recorder(gan_dims=32)
    result = resolve_options(SAEHD_SLICE, stored=stored, answer=answer, ask_changeable=True)
    asked = dict(answer.asked)
    fixed = {option.name for option in SAEHD_SLICE if not option.changeable}
    assert not fixed & set(asked)
    assert asked["gan_power"] == 0.5  # the stored value is the default shown
    assert result.options["gan_dims"] == 32


def test_resume_fixed_override_refused_unless_equal():
    stored = _stored()
    with pytest.raises(OptionError, match=r"resolution is fixed .*stored: 128"):
        resolve_options(SAEHD_SLICE, stored=stored, overrides={"resolution": "256"})
    same = resolve_options(SAEHD_SLICE, stored=stored, overrides={"resolution": "128"})
    assert same.options["resolution"] == 128


def test_resume_changeable_override_wins_and_is_not_asked():
    answer = Recorder()
    result = resolve_options(
        SAEHD_SLICE,
        stored=_stored(),
        overrides={"lr_dropout": "Y"},
        answer=answer,
        ask_changeable=True,
    )
    assert result.options["lr_dropout"] == "y"
    assert "lr_dropout" not in dict(answer.asked)


def test_resume_unknown_and_missing_stored_keys():
    stored = _stored(eyes_prio=True)
    del stored["gan_dims"]
    result = resolve_options(SAEHD_SLICE, stored=stored)
    assert result.unknown == {"eyes_prio": True}
    assert "eyes_prio" not in result.options
    assert any("eyes_prio" in note for note in result.notes)
    assert result.options["gan_dims"] == 16
    assert any("gan_dims was not stored" in note for note in result.notes)


def test_resume_bad_stored_values():
    result = resolve_options(SAEHD_SLICE, stored=_stored(gan_power="lots"))
    assert result.options["gan_power"] == 0.0
    assert any("gan_power" in note for note in result.notes)
    with pytest.raises(OptionError, match="fixed option"):
        resolve_options(SAEHD_SLICE, stored=_stored(face_type="eyes"))


def test_stored_values_are_not_rerounded():
    stored = _stored(resolution=144, archi="liae-ud")  # made by an older rule; keep it
    assert resolve_options(SAEHD_SLICE, stored=stored).options["resolution"] == 144


def test_common_options_defaults_and_order():
    values = resolve_options(COMMON_OPTIONS).options
    assert list(values) == [
        "autobackup_hour",
        "autobackup_keep",
        "write_preview_history",
        "target_iter",
        "random_src_flip",
        "random_dst_flip",
        "batch_size",
        "bf16",
        "sample_cache_mb",
        "seed",
    ]
    assert values["autobackup_hour"] == 2
    assert values["bf16"] is False
    assert values["sample_cache_mb"] == 1024
    assert values["autobackup_keep"] == 8
    assert values["random_dst_flip"] is True
    assert values["random_src_flip"] is False
    assert all(option.changeable for option in COMMON_OPTIONS)


def test_common_options_asking():
    answer = Recorder(autobackup_hour=0)
    resolve_options(COMMON_OPTIONS, answer=answer)
    asked = [name for name, _ in answer.asked]
    assert "autobackup_keep" not in asked  # autobackups off
    assert "seed" not in asked  # never asked
    assert "sample_cache_mb" not in asked
    assert "bf16" in asked
    assert resolve_options(COMMON_OPTIONS, overrides={"seed": "7"}).options["seed"] == 7
    with pytest.raises(OptionError, match=r"in the range 0\.\.24"):
        resolve_options(COMMON_OPTIONS, overrides={"autobackup_hour": "25"})


def test_with_defaults():
    table = with_defaults(COMMON_OPTIONS, batch_size=8)
    assert resolve_options(table).options["batch_size"] == 8
    assert resolve_options(COMMON_OPTIONS).options["batch_size"] == 4
    with pytest.raises(OptionError, match="no such option"):
        with_defaults(COMMON_OPTIONS, nope=1)


def test_duplicate_names_refused():
    with pytest.raises(OptionError, match="twice"):
        resolve_options((INT, INT))


def test_parse_assignments():
    assert parse_assignments(["a=1", " b = x=y ", "a=2"]) == {"a": "2", "b": "x=y"}
    with pytest.raises(OptionError, match="name=value"):
        parse_assignments(["oops"])


def test_default_of_callable():
    gan_patch = SAEHD_SLICE[9]
    assert default_of(gan_patch, {"resolution": 224}) == 28
