"""Tests for dfl.ui.menu: the saved-model menu flows and the device prompt."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from dfl.ui.menu import choose_device, choose_model, parse_device_choice, suggest_devices
from tests.console_fakes import Output, Script

GB = 1024**3


def _saved(model_dir: Path, name: str, mtime: float, model_type: str = "SAEHD") -> Path:
    folder = model_dir / f"{name}_{model_type}"
    folder.mkdir(parents=True)
    (folder / "current").write_text("checkpoints/1")
    os.utime(folder / "current", (mtime, mtime))
    return folder


@pytest.fixture
def models(tmp_path):
    _saved(tmp_path, "alpha", 3000)
    _saved(tmp_path, "beta", 2000)
    _saved(tmp_path, "my_gamma", 1000)
    _saved(tmp_path, "alpha", 4000, model_type="AMP")
    return tmp_path


MENU = [
    "Choose one of saved models, or enter a name to create a new model.",
    "[r] : rename",
    "[d] : delete",
    "",
    "[0] : alpha - latest",
    "[1] : beta",
    "[2] : my_gamma",
]


def test_enter_takes_newest(models):
    out, script = Output(), Script("")
    assert choose_model(models, "SAEHD", script, out) == "alpha"
    assert out == MENU
    assert script.prompts == [" : "]


def test_index(models):
    assert choose_model(models, "SAEHD", Script("2"), Output()) == "my_gamma"
    assert choose_model(models, "SAEHD", Script(" 1 "), Output()) == "beta"


@pytest.mark.parametrize("answer", ["3", "99", "-1"])
def test_index_out_of_range_reasks(models, answer):
    out, script = Output(), Script(answer, "1")
    assert choose_model(models, "SAEHD", script, out) == "beta"
    assert out[len(MENU) :] == [f"No model [{int(answer)}]: enter an index from 0 to 2."]
    assert script.prompts == [" : ", " : "]


def test_existing_name_and_case(models):
    assert choose_model(models, "SAEHD", Script("my_gamma"), Output()) == "my_gamma"
    assert choose_model(models, "SAEHD", Script("BETA"), Output()) == "beta"


def test_new_name(models):
    assert choose_model(models, "SAEHD", Script("fresh one"), Output()) == "fresh one"


def test_invalid_new_name_reasks(models):
    out = Output()
    assert choose_model(models, "SAEHD", Script("a/b", "CON", "ok"), out) == "ok"
    reasons = out[len(MENU) :]
    assert len(reasons) == 2
    assert "cannot contain /" in reasons[0]
    assert "reserved" in reasons[1]


def test_uppercase_r_is_a_name(models):
    assert choose_model(models, "SAEHD", Script("R"), Output()) == "R"


def test_rename_valid(models):
    out = Output()
    script = Script("r", "beta", "delta", "")
    assert choose_model(models, "SAEHD", script, out) == "alpha"
    assert script.prompts == [
        " : ",
        "Enter the name of the model you want to rename : ",
        "Enter new name of the model : ",
        " : ",
    ]
    assert "Renamed 'beta' to 'delta'." in out
    assert (models / "delta_SAEHD" / "current").exists()
    assert not (models / "beta_SAEHD").exists()
    assert out[-3:] == ["[0] : alpha - latest", "[1] : delta", "[2] : my_gamma"]


def test_rename_by_index(models):
    choose_model(models, "SAEHD", Script("r", "2", "gamma2", ""), Output())
    assert (models / "gamma2_SAEHD").is_dir()


def test_rename_invalid_then_valid(models):
    out = Output()
    script = Script("r", "beta", "12", "x?", "beta_2", "")
    choose_model(models, "SAEHD", script, out)
    assert any("all digits" in line for line in out)
    assert any("cannot contain ?" in line for line in out)
    assert (models / "beta_2_SAEHD").is_dir()
    assert script.prompts.count("Enter new name of the model : ") == 3


def test_rename_to_existing_refused(models):
    out = Output()
    script = Script("r", "beta", "Alpha", "beta", "", "")
    choose_model(models, "SAEHD", script, out)
    assert "a SAEHD model named 'alpha' already exists" in out
    assert "the model is already called 'beta'" in out
    assert "Rename cancelled." in out
    assert (models / "beta_SAEHD").is_dir()


def test_rename_unknown_model(models):
    out = Output()
    assert choose_model(models, "SAEHD", Script("r", "zeta", "1"), out) == "beta"
    assert "No saved SAEHD model 'zeta'." in out
    assert out.count(MENU[0]) == 2


def test_delete_confirmed(models):
    out = Output()
    script = Script("d", "alpha", "y", "")
    assert choose_model(models, "SAEHD", script, out) == "beta"
    assert script.prompts[2] == "[n] Delete model 'alpha' and all its backups? ( y/n ) : "
    assert "Deleted 'alpha'." in out
    assert not (models / "alpha_SAEHD").exists()
    assert (models / "alpha_AMP").is_dir()


@pytest.mark.parametrize("answer", ["n", "", "No"])
def test_delete_declined(models, answer):
    out = Output()
    assert choose_model(models, "SAEHD", Script("d", "alpha", answer, ""), out) == "alpha"
    assert "Nothing deleted." in out
    assert (models / "alpha_SAEHD").is_dir()


def test_delete_confirm_reasks_on_nonsense(models):
    out = Output()
    choose_model(models, "SAEHD", Script("d", "0", "maybe", "yes", ""), out)
    assert "Answer y or n." in out
    assert not (models / "alpha_SAEHD").exists()


def test_delete_eof_keeps_model(models):
    out = Output()
    assert choose_model(models, "SAEHD", Script("d", "alpha"), out) == "alpha"
    assert (models / "alpha_SAEHD").is_dir()
    assert "input closed: using the newest model 'alpha'" in out


def test_delete_last_model_leads_to_new_prompt(tmp_path):
    _saved(tmp_path, "only", 1000)
    script = Script("d", "only", "y", "")
    assert choose_model(tmp_path, "SAEHD", script, Output()) == "new"
    assert script.prompts[-1] == "[new] No saved models found. Enter a name of a new model : "


def test_no_models(tmp_path):
    script = Script("")
    assert choose_model(tmp_path, "SAEHD", script, Output()) == "new"
    assert script.prompts == ["[new] No saved models found. Enter a name of a new model : "]
    assert choose_model(tmp_path, "SAEHD", Script("my_model"), Output()) == "my_model"


def test_no_models_invalid_name_reasks(tmp_path):
    out = Output()
    assert choose_model(tmp_path, "SAEHD", Script("007", "bond"), out) == "bond"
    assert len(out) == 1 and "all digits" in out[0]


def test_eof_defaults(tmp_path, models):
    out = Output()
    assert choose_model(tmp_path / "empty", "SAEHD", Script(), out) == "new"
    assert out == ["input closed: using the name 'new'"]
    out = Output()
    assert choose_model(models, "SAEHD", Script(), out) == "alpha"
    assert out[-1] == "input closed: using the newest model 'alpha'"


def test_ctrl_c_propagates(models):
    with pytest.raises(KeyboardInterrupt):
        choose_model(models, "SAEHD", Script(KeyboardInterrupt()), Output())


def _gpu(index: int, name: str, gb: float):
    return SimpleNamespace(index=index, name=name, memory_bytes=int(gb * GB))


TWO_SAME = [_gpu(0, "RTX 3090", 24), _gpu(1, "RTX 3090", 24)]
MIXED = [_gpu(0, "GTX 1060", 6), _gpu(1, "RTX 4090", 24), _gpu(2, "GTX 1060", 6)]


def test_no_gpus_means_cpu_without_asking():
    script = Script()
    assert choose_device([], None, script, Output()) == "cpu"
    assert script.prompts == []


def test_device_prompt_layout():
    out, script = Output(), Script("")
    assert choose_device(TWO_SAME, None, script, out) == "0,1"
    assert out == [
        "",
        "Choose one or several GPU idxs (separated by comma).",
        "",
        "[CPU] : CPU",
        "  [0] : RTX 3090",
        "  [1] : RTX 3090",
        "",
    ]
    assert script.prompts == ["[0,1] Which GPU indexes to choose? : "]


def test_suggestion_prefers_largest_memory():
    assert suggest_devices(MIXED) == "1"
    assert suggest_devices(TWO_SAME) == "0,1"
    assert suggest_devices([]) == "cpu"


@pytest.mark.parametrize(
    ("stored", "shown"),
    [("2", "2"), ("cpu", "cpu"), ("2,0", "0,2"), ("7", "1"), ("junk", "1"), (None, "1")],
)
def test_device_default_remembered_while_valid(stored, shown):
    script = Script("")
    assert choose_device(MIXED, stored, script, Output()) == shown
    assert script.prompts == [f"[{shown}] Which GPU indexes to choose? : "]


@pytest.mark.parametrize(
    ("answer", "expected"), [("CPU", "cpu"), ("cpu", "cpu"), ("2, 0", "0,2"), ("1,1", "1")]
)
def test_device_answers(answer, expected):
    assert choose_device(MIXED, None, Script(answer), Output()) == expected


def test_device_invalid_reasks():
    out = Output()
    assert choose_device(MIXED, None, Script("5", "a,b", "0"), out) == "0"
    reasons = out[-2:]
    assert reasons[0] == "no GPU with index 5; choose from 0, 1, 2 or cpu"
    assert "neither cpu nor" in reasons[1]


def test_device_eof_takes_default():
    out = Output()
    assert choose_device(MIXED, "0", Script(), out) == "0"
    assert out[-1] == "input closed: using 0"


def test_parse_device_choice_errors():
    with pytest.raises(ValueError, match="neither"):
        parse_device_choice("0,,1", MIXED)
    with pytest.raises(ValueError, match="no GPU with index 3, 9"):
        parse_device_choice("9,3", MIXED)
