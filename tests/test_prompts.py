"""Tests for dfl.ui.prompts: prompt strings, help, re-asking, end of input, the override gate."""

from __future__ import annotations

import io
import os
import re
import threading
import time

import pytest

from dfl.common_options import COMMON_OPTIONS
from dfl.options import Option, OptionError
from dfl.ui.prompts import (
    INPUT_CLOSED_MESSAGE,
    InputClosed,
    ask_option,
    ask_options,
    override_gate,
    prompt_text,
    use_color,
)
from tests.console_fakes import Output, Script, posix_only

COMMON = {option.name: option for option in COMMON_OPTIONS}
RESOLUTION = Option(
    "resolution",
    "Resolution",
    int,
    128,
    help="Bigger is sharper and slower.",
    range=(64, 640),
    multiple_of=16,
    changeable=False,
)
GAN_POWER = Option(
    "gan_power", "GAN power", float, 0.0, help="GAN help.", range=(0.0, 5.0), hint="0.0 .. 5.0"
)
FACE_TYPE = Option(
    "face_type", "Face type", str, "f", help="Face help.", choices=("h", "mf", "f", "wf", "head")
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.mark.parametrize(
    ("option", "default", "expected"),
    [
        (RESOLUTION, 128, "[128] Resolution ( 64-640 ?:help ) : "),
        (GAN_POWER, 0.0, "[0.0] GAN power ( 0.0 .. 5.0 ?:help ) : "),
        (COMMON["random_dst_flip"], True, "[y] Flip DST faces randomly ( y/n ?:help ) : "),
        (COMMON["random_src_flip"], False, "[n] Flip SRC faces randomly ( y/n ?:help ) : "),
        (FACE_TYPE, "f", "[f] Face type ( h/mf/f/wf/head ?:help ) : "),
        (COMMON["target_iter"], 0, "[0] Target iteration ( ?:help ) : "),
        (Option("t", "No help", int, 0), 0, "[0] No help : "),
        (COMMON["autobackup_hour"], 2, "[2] Autobackup every N hour ( 0..24 ?:help ) : "),
        (COMMON["batch_size"], 8, "[8] Batch_size ( ?:help ) : "),
        (Option("b", "Plain bool", bool, True), True, "[y] Plain bool ( y/n ) : "),
        (Option("a", "AE architecture", str, "liae-ud", help="h"), "liae-ud",
         "[liae-ud] AE architecture ( ?:help ) : "),
    ],
)  # fmt: skip
def test_prompt_strings(option, default, expected):
    assert prompt_text(option, default) == expected
    script = Script("")
    ask_option(option, default, script, Output())
    assert script.prompts == [expected]


def test_color_prompt_keeps_text():
    colored = prompt_text(RESOLUTION, 128, color=True)
    assert colored != prompt_text(RESOLUTION, 128)
    assert ANSI.sub("", colored) == "[128] Resolution ( 64-640 ?:help ) : "


def test_use_color(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_color(Tty()) is True
    assert use_color(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color(Tty()) is False


def test_injected_input_is_plain_by_default():
    script = Script("")
    ask_option(RESOLUTION, 128, script, Output())
    assert "\x1b" not in script.prompts[0]


def test_empty_answer_takes_default_and_echoes():
    out = Output()
    assert ask_option(RESOLUTION, 128, Script("  "), out) == 128
    assert out == ["128"]
    out = Output()
    assert ask_option(COMMON["random_dst_flip"], True, Script(""), out) is True
    assert out == ["y"]


def test_help_then_answer():
    out = Output()
    script = Script("?", "256")
    assert ask_option(RESOLUTION, 128, script, out) == 256
    assert out == ["Bigger is sharper and slower.", "256"]
    assert len(script.prompts) == 2


def test_help_without_text():
    out = Output()
    assert ask_option(Option("t", "Plain", int, 0), 0, Script("?", "10"), out) == 10
    assert out[0] == "No help for this option."


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        (("abc", "64"), "resolution: expected a whole number, got 'abc'"),
        (("1.5", "64"), "resolution: expected a whole number, got '1.5'"),
        (("700", "64"), "resolution: 700 is out of range; it must be in the range 64..640"),
        (("32", "64"), "resolution: 32 is out of range; it must be in the range 64..640"),
    ],
)
def test_invalid_answer_gives_reason_and_reasks(answers, reason):
    out = Output()
    script = Script(*answers)
    assert ask_option(RESOLUTION, 128, script, out) == 64
    assert out == [reason, "64"]
    assert len(script.prompts) == 2


def test_invalid_choice_and_bool_reask():
    out = Output()
    assert ask_option(FACE_TYPE, "f", Script("eyes", "WF"), out) == "wf"
    assert out == ["face_type: 'eyes' is not one of h/mf/f/wf/head", "wf"]
    out = Output()
    assert ask_option(COMMON["random_src_flip"], False, Script("sure", "yes"), out) is True
    assert len(out) == 1 and "expected y or n" in out[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("y", True), ("YES", True), ("True", True), ("1", True),
     ("n", False), ("No", False), ("false", False), ("0", False)],
)  # fmt: skip
def test_bool_spellings_at_prompt(text, expected):
    out = Output()
    assert ask_option(COMMON["random_dst_flip"], not expected, Script(text), out) is expected
    assert out == []  # the typed answer is already on screen


def test_rounding_is_echoed():
    out = Output()
    assert ask_option(RESOLUTION, 128, Script("130"), out) == 128
    assert out == ["130", "resolution 130 -> 128 (multiple of 16)"]


def test_float_answer_echo():
    out = Output()
    assert ask_option(GAN_POWER, 0.0, Script("0.10"), out) == 0.1
    assert out == ["0.1"]


def test_eof_raises_input_closed():
    with pytest.raises(InputClosed):
        ask_option(RESOLUTION, 128, Script(), Output())
    assert issubclass(InputClosed, EOFError)


def test_ctrl_c_propagates():
    with pytest.raises(KeyboardInterrupt):
        ask_option(RESOLUTION, 128, Script(KeyboardInterrupt()), Output())
    with pytest.raises(KeyboardInterrupt):
        ask_options(COMMON_OPTIONS, input_fn=Script("3", KeyboardInterrupt()), print_fn=Output())


def test_ask_options_eof_takes_defaults_once():
    out = Output()
    script = Script("5", "3")  # autobackup_hour, autobackup_keep, then the input ends
    result = ask_options(COMMON_OPTIONS, input_fn=script, print_fn=out)
    assert result.options["autobackup_hour"] == 5
    assert result.options["autobackup_keep"] == 3
    assert out.count(INPUT_CLOSED_MESSAGE) == 1
    assert len(script.prompts) == 3  # no prompt after the input closed
    defaults = {option.name: option.default for option in COMMON_OPTIONS}
    for name in ("write_preview_history", "target_iter", "random_dst_flip", "batch_size"):
        assert result.options[name] == defaults[name]


def test_ask_options_full_dialogue():
    out = Output()
    script = Script("0", "y", "?", "1000", "y", "", "16", "y")
    result = ask_options(COMMON_OPTIONS, input_fn=script, print_fn=out)
    seed = result.options.pop("seed")  # never asked: a new model draws its own
    assert isinstance(seed, int) and seed >= 0
    assert result.options == {
        "autobackup_hour": 0,
        "autobackup_keep": 8,
        "write_preview_history": True,
        "target_iter": 1000,
        "random_src_flip": True,
        "random_dst_flip": True,
        "batch_size": 16,
        "bf16": True,
        "sample_cache_mb": 1024,
    }
    assert script.prompts[-1] == "[n] Use bf16 mixed precision ( y/n ?:help ) : "
    assert script.prompts[0] == "[2] Autobackup every N hour ( 0..24 ?:help ) : "
    assert script.prompts[1] == "[n] Write preview history ( y/n ?:help ) : "
    assert INPUT_CLOSED_MESSAGE not in out


def test_ask_options_resume_asks_changeable_only():
    table = (RESOLUTION, GAN_POWER)
    stored = {"resolution": 256, "gan_power": 0.5}
    script = Script("1.0")
    result = ask_options(
        table, stored=stored, ask_changeable=True, input_fn=script, print_fn=Output()
    )
    assert script.prompts == ["[0.5] GAN power ( 0.0 .. 5.0 ?:help ) : "]
    assert result.options == {"resolution": 256, "gan_power": 1.0}


def test_ask_options_headless_invalid_override_raises():
    with pytest.raises(OptionError):
        ask_options(
            (RESOLUTION,), overrides={"resolution": "x"}, input_fn=Script(), print_fn=Output()
        )


def test_override_gate_without_terminal_does_not_wait():
    out = Output()
    start = time.monotonic()
    assert override_gate(2.0, io.StringIO("\n"), out) is False
    assert time.monotonic() - start < 0.5
    assert out == []


@posix_only
def test_override_gate_line_in_time(pty_stream):
    master, stream = pty_stream
    out = Output()
    timer = threading.Timer(0.05, os.write, (master, b"\n"))
    timer.start()
    try:
        assert override_gate(2.0, stream, out) is True
    finally:
        timer.join()
    assert out == ["Press enter in 2 seconds to override model settings."]


@posix_only
def test_override_gate_times_out_and_drains_earlier_keys(pty_stream):
    master, stream = pty_stream
    os.write(master, b"\n")  # typed before the message: discarded
    start = time.monotonic()
    assert override_gate(0.2, stream, Output()) is False
    assert 0.15 < time.monotonic() - start < 1.5
