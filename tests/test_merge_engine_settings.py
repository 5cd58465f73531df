"""Tests for dfl.merge.settings: defaults, JSON, validation, the question table and the keys."""

from __future__ import annotations

import json

import pytest

from dfl.merge import settings as S
from dfl.merge.settings import MergeSettings
from dfl.options import OptionError, is_relevant, resolve_options

# DFL's non-interactive questions, in order, with their prompt defaults and ranges.
DFL_QUESTIONS = [
    ("mode", "Choose mode", "overlay", None),
    ("masked_hist_match", "Masked hist match?", True, None),
    ("hist_match_threshold", "Hist match threshold", 255, (0, 255)),
    ("mask_mode", "Choose mask mode", "dst", None),
    ("erode_mask_modifier", "Choose erode mask modifier", 0, (-400, 400)),
    ("blur_mask_modifier", "Choose blur mask modifier", 0, (0, 400)),
    ("motion_blur_power", "Choose motion blur power", 0, (0, 100)),
    ("output_face_scale", "Choose output face scale modifier", 0, (-50, 50)),
    ("color_transfer_mode", "Color transfer to predicted face", "none", None),
    ("sharpen_mode", "Choose sharpen mode", "none", None),
    ("blur_sharpen_amount", "Choose blur/sharpen amount", 0, (-100, 100)),
    ("image_denoise_power", "Choose image degrade by denoise power", 0, (0, 500)),
    ("bicubic_degrade_power", "Choose image degrade by bicubic rescale power", 0, (0, 100)),
    ("color_degrade_power", "Degrade color power of final image", 0, (0, 100)),
]


def test_interactive_defaults_are_dfls_constructor() -> None:
    s = MergeSettings()
    assert (s.mode, s.mask_mode, s.hist_match_threshold) == (
        "overlay",
        "learned-prd*learned-dst",
        238,
    )
    assert s.color_transfer_mode == "rct" and s.masked_hist_match and s.sharpen_mode is None
    assert all(getattr(s, name) == 0 for name in S.RANGES if name != "hist_match_threshold")


def test_questionnaire_defaults() -> None:
    s = S.questionnaire_defaults()
    assert (s.mode, s.mask_mode, s.hist_match_threshold) == ("overlay", "dst", 255)
    assert s.color_transfer_mode is None and s.sharpen_mode is None


def test_question_table_order_labels_defaults_ranges() -> None:
    table = [(o.name, o.label, o.default, o.range) for o in S.MERGE_OPTIONS]
    assert table == DFL_QUESTIONS


def test_questions_asked_per_mode() -> None:
    def asked(**values: object) -> list[str]:
        resolved = {o.name: o.default for o in S.MERGE_OPTIONS} | values
        return [o.name for o in S.MERGE_OPTIONS if is_relevant(o, resolved)]

    plain = asked()
    assert "masked_hist_match" not in plain and "hist_match_threshold" not in plain
    assert "blur_sharpen_amount" not in plain  # only with a sharpen mode
    assert {"masked_hist_match", "hist_match_threshold"} <= set(asked(mode="hist-match"))
    assert "masked_hist_match" not in asked(mode="seamless-hist-match")
    assert "hist_match_threshold" in asked(mode="seamless-hist-match")
    assert "blur_sharpen_amount" in asked(sharpen_mode="box")
    raw = asked(mode="raw-rgb")
    assert raw == ["mode", "mask_mode", "output_face_scale"]


def test_dfl_numbers_and_names_are_answers() -> None:
    resolved = resolve_options(
        S.MERGE_OPTIONS,
        overrides={
            "mode": "3",
            "mask_mode": "5",
            "color_transfer_mode": "MKL",
            "sharpen_mode": "2",
        },
    ).options
    s = S.settings_from_options(resolved)
    assert s.mode == "seamless" and s.mask_mode == "learned-prd+learned-dst"
    assert s.color_transfer_mode == "mkl" and s.sharpen_mode == "gaussian"
    assert (
        S.settings_from_options({"sharpen_mode": "0", "color_transfer_mode": ""}).sharpen_mode
        is None
    )


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("mode", "9", "not one of"),
        ("mode", "blend", "not one of"),
        ("mask_mode", "7", "XSeg"),
        ("mask_mode", "XSeg-dst", "XSeg"),
        ("erode_mask_modifier", "401", "range -400..400"),
        ("blur_mask_modifier", "-1", "range 0..400"),
        ("color_transfer_mode", "sot", "not one of"),
        ("hist_match_threshold", "abc", "whole number"),
    ],
)
def test_invalid_answers(name: str, value: str, match: str) -> None:
    with pytest.raises(OptionError, match=match):
        resolve_options(S.MERGE_OPTIONS, overrides={name: value})


def test_json_round_trip() -> None:
    s = MergeSettings(
        mode="seamless-hist-match",
        mask_mode="learned-dst",
        masked_hist_match=False,
        hist_match_threshold=100,
        erode_mask_modifier=-12,
        blur_mask_modifier=40,
        motion_blur_power=20,
        output_face_scale=-3,
        color_transfer_mode="idt-m",
        sharpen_mode="box",
        blur_sharpen_amount=-7,
        image_denoise_power=250,
        bicubic_degrade_power=4,
        color_degrade_power=99,
    )
    text = json.dumps(s.to_json())
    assert MergeSettings.from_json(json.loads(text)) == s
    assert MergeSettings.from_json({}) == MergeSettings()
    none = MergeSettings(color_transfer_mode=None)
    assert MergeSettings.from_json(json.loads(json.dumps(none.to_json()))) == none


def test_json_validation() -> None:
    assert MergeSettings.from_json({"blursharpen_amount": 5}).blur_sharpen_amount == 5  # DFL's name
    assert (
        MergeSettings.from_json({"mode": 2, "color_transfer_mode": 1}).color_transfer_mode == "rct"
    )
    for bad, match in [
        ({"super_resolution_power": 10}, "unknown merge setting"),
        ({"motion_blur_power": 101}, "range 0..100"),
        ({"masked_hist_match": "maybe"}, "y or n"),
        ({"output_face_scale": True}, "whole number"),
        ({"mask_mode": None}, "required"),
    ]:
        with pytest.raises(OptionError, match=match):
            MergeSettings.from_json(bad)
    with pytest.raises(OptionError, match="JSON object"):
        MergeSettings.from_json(["overlay"])  # type: ignore[arg-type]
    with pytest.raises(OptionError):
        MergeSettings(mode="1")  # the dataclass holds canonical names only


def test_cycles() -> None:
    s = MergeSettings(mask_mode="full")
    seen = []
    for _ in range(len(S.MASK_MODES)):
        seen.append(s.mask_mode)
        s = S.cycle_mask_mode(s)
    assert tuple(seen) == S.MASK_MODES and s.mask_mode == "full"
    s = MergeSettings(color_transfer_mode=None)
    order = []
    for _ in range(len(S.COLOR_TRANSFER_MODES) + 1):
        s = S.cycle_color_transfer(s)
        order.append(s.color_transfer_mode)
    assert order == [*S.COLOR_TRANSFER_MODES, None]
    s = MergeSettings()
    modes = [(s := S.cycle_sharpen_mode(s)).sharpen_mode for _ in range(3)]
    assert modes == ["box", "gaussian", None]


def test_mode_keys() -> None:
    assert S.with_mode(MergeSettings(), 0).mode == "original"
    assert S.with_mode(MergeSettings(), 6).mode == "raw-predict"
    assert S.with_mode(MergeSettings(), "seamless").mode == "seamless"


def test_steps_clip_to_ranges() -> None:
    s = MergeSettings()
    s = S.step(s, "erode_mask_modifier", S.KEY_STEP_SHIFT)
    assert s.erode_mask_modifier == 5
    for name, (lo, hi) in S.RANGES.items():
        t = MergeSettings(mode="hist-match")
        for _ in range(200):
            t = S.step(t, name, 5)
        assert getattr(t, name) == hi
        for _ in range(400):
            t = S.step(t, name, -5)
        assert getattr(t, name) == lo
    with pytest.raises(OptionError):
        S.step(s, "mode", 1)


def test_hist_keys_only_in_hist_modes() -> None:
    s = MergeSettings(mode="overlay")
    assert S.step(s, "hist_match_threshold", 1) == s
    assert S.toggle_masked_hist_match(s) == s
    h = MergeSettings(mode="hist-match")
    assert S.step(h, "hist_match_threshold", 1).hist_match_threshold == 239
    assert not S.toggle_masked_hist_match(h).masked_hist_match
    shm = MergeSettings(mode="seamless-hist-match")
    assert S.step(shm, "hist_match_threshold", -1).hist_match_threshold == 237
    assert S.toggle_masked_hist_match(shm) == shm


def test_summary_and_choice_lines() -> None:
    lines = S.summary_lines(MergeSettings(mode="hist-match"), "00001.png")
    assert lines[0] == "MergerConfig 00001.png:" and lines[-1] == "=" * 16
    assert "masked_hist_match: True" in lines and "color_transfer_mode: rct" in lines
    raw = S.summary_lines(MergeSettings(mode="raw-rgb"), "x")
    assert not any(line.startswith("erode") for line in raw)
    assert S.choice_lines("mode")[:3] == ["Choose mode:", "(0) original", "(1) overlay"]
    assert S.choice_lines("sharpen_mode")[1] == "(0) None"


def test_workers_option() -> None:
    assert S.workers_option(2).default == 2 and S.workers_option(2).range == (1, 2)
    assert S.workers_option(32).default == 8
