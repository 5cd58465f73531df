"""Tests for dfl.training.summary: the summary box layout."""

from __future__ import annotations

from types import SimpleNamespace

from dfl.training.summary import describe_devices, summary_text

GB = 1024**3

EXPECTED_CPU = """\
========= Model Summary ==========
==                              ==
==        Model name: new_SAEHD ==
==                              ==
== Current iteration: 1234      ==
==                              ==
==------- Model Options --------==
==                              ==
==        resolution: 128       ==
==         face_type: f         ==
==   masked_training: True      ==
==         gan_power: 0.0       ==
==                              ==
==--------- Running On ---------==
==                              ==
==      Using device: CPU       ==
==                              ==
=================================="""

EXPECTED_GPU = """\
=============== Model Summary ===============
==                                         ==
==            Model name: my model_AMP     ==
==                                         ==
==     Current iteration: 0                ==
==                                         ==
==------------- Model Options -------------==
==                                         ==
== write_preview_history: False            ==
==            lr_dropout: y                ==
==                                         ==
==-------------- Running On ---------------==
==                                         ==
==          Device index: 0                ==
==                  Name: NVIDIA RTX A6000 ==
==                  VRAM: 47.99GB          ==
==          Device index: 1                ==
==                  Name: NVIDIA RTX A6000 ==
==                  VRAM: 47.99GB          ==
==                                         ==
============================================="""

OPTIONS = {"resolution": 128, "face_type": "f", "masked_training": True, "gan_power": 0.0}


def test_cpu_box():
    assert summary_text("new", "SAEHD", 1234, OPTIONS) == EXPECTED_CPU
    assert summary_text("new", "SAEHD", 1234, OPTIONS, []) == EXPECTED_CPU
    assert summary_text("new", "SAEHD", 1234, OPTIONS, describe_devices([])) == EXPECTED_CPU


def test_gpu_box_width_follows_device_name():
    gpu = [
        SimpleNamespace(index=i, name="NVIDIA RTX A6000", memory_bytes=int(47.99 * GB))
        for i in range(2)
    ]
    options = {"write_preview_history": False, "lr_dropout": "y"}
    lines = describe_devices(gpu)
    assert lines[:3] == ["Device index: 0", "Name: NVIDIA RTX A6000", "VRAM: 47.99GB"]
    assert summary_text("my model", "AMP", 0, options, lines) == EXPECTED_GPU


def test_device_without_memory():
    gpu = [SimpleNamespace(index=3, name="Mystery", memory_bytes=None)]
    assert describe_devices(gpu) == ["Device index: 3", "Name: Mystery"]


def test_display_overrides_do_not_change_options():
    options = {"random_warp": True, "pretrain": True}
    text = summary_text("p", "SAEHD", 5, options, display_overrides={"random_warp": False})
    assert "random_warp: False" in text
    assert options["random_warp"] is True
    lines = text.splitlines()
    assert len({len(line) for line in lines if line.startswith("==")}) == 1


def test_long_values_widen_the_box():
    text = summary_text("n", "SAEHD", 7, {"archi": "liae-udt-very-long-value"})
    widths = {len(line) for line in text.splitlines() if line.startswith("==")}
    assert len(widths) == 1
    assert "==             archi: liae-udt-very-long-value ==" in text
