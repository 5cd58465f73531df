"""End to end through a real terminal: create a real Quick96 model, train, S/B/Enter; closed
input, faceset and option errors, Ctrl+C at a prompt. (Resuming through the menu, the override
gate and Ctrl+C in training: tests/test_e2e_saehd.py.)"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.e2e import (
    DFL,
    EXIT_TIMEOUT_S,
    FIRST_STEP_TIMEOUT_S,
    STEP_TIMEOUT_S,
    current_state,
    dfl_env,
    iteration_on_screen,
    run_dfl,
    wait_until,
)
from tests.merge_models import TINY_ITERATION, save_tiny_model
from tests.terminal import TmuxSession, tmux_available

pytestmark = [
    pytest.mark.ui,
    pytest.mark.skipif(not tmux_available(), reason="tmux is not installed"),
]


def test_create_train_save_backup_exit(demo_workspace: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    shutil.copytree(demo_workspace, workspace)
    model = workspace / "model" / "new_Quick96"

    # No --model and no --name: the model-type prompt and the new-model prompt take Enter.
    session = TmuxSession(
        [*DFL, "train", "--workspace", str(workspace), "--no-preview"], tmp_path, dfl_env()
    )
    try:
        session.wait_for(r"\[Quick96\] Model \( SAEHD/AMP/Quick96 \?:help \) : ", 60)
        session.send("Enter")
        session.wait_for(r"No saved models found\. Enter a name of a new model : ", 30)
        session.send("Enter")
        session.send("Enter", "Enter")  # pressed once too often: typed ahead, must not stop it
        session.wait_for(r"\[#000002\]", FIRST_STEP_TIMEOUT_S)
        assert (model / "current").exists(), "the first iteration is saved at once"

        saved_before = current_state(model)["iteration"]
        session.send("s")
        wait_until(lambda: current_state(model)["iteration"] > saved_before, STEP_TIMEOUT_S)

        session.send("b")
        session.wait_for(r"Backup made", STEP_TIMEOUT_S)
        assert (model / "autobackups" / "01" / "manifest.json").exists()

        session.send("Enter")
        assert session.exit_code(EXIT_TIMEOUT_S) == 0
        screen = session.screen()
        assert "Done." in screen
        # DFL's wording; a new model tries its first iteration, timed from the last answer
        assert "[enter]:exit" in screen
        assert "Trying to do the first iteration" in screen
        assert re.search(r"First iteration done \d+\.\d s after the last answer", screen)
        final_iteration = iteration_on_screen(session)
    finally:
        session.close()
    state = current_state(model)
    assert state["iteration"] == final_iteration
    assert state["model_type"] == "Quick96"


def test_missing_and_empty_facesets_stop_with_a_message(tmp_path: Path) -> None:
    result = run_dfl(["train", "--model", "Quick96", "--name", "x", "--no-preview"], tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Created" in result.stdout  # ./workspace was made for the user
    assert "no faces" in result.stderr.lower() or "empty" in result.stderr.lower()
    assert "Traceback" not in result.stderr

    result = run_dfl(
        [
            "train",
            "--model",
            "Quick96",
            "--name",
            "x",
            "--no-preview",
            "--training-data-src-dir",
            str(tmp_path / "nowhere"),
            "--training-data-dst-dir",
            str(tmp_path / "nowhere"),
            "--model-dir",
            str(tmp_path / "models"),
        ],
        tmp_path,
    )
    assert result.returncode == 2
    assert "not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_piped_input_takes_defaults_and_exits_at_target(
    demo_workspace: Path, tmp_path: Path
) -> None:
    """A script with closed stdin: every prompt takes its default (the newest saved model, a tiny
    SAEHD so that the run is short; no override); the target ends the run."""
    workspace = tmp_path / "workspace"
    shutil.copytree(demo_workspace, workspace)
    model = save_tiny_model(workspace / "model", "new", "SAEHD")
    target = TINY_ITERATION + 2
    args = ["train", "--workspace", str(workspace), "--model", "SAEHD", "--no-preview"]
    result = run_dfl([*args, "--opt", f"target_iter={target}"], tmp_path, stdin="")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "input closed: using the newest model 'new'" in result.stdout
    assert "Loading new_SAEHD model" in result.stdout
    state = current_state(model)
    assert state["iteration"] == target
    assert state["options"]["target_iter"] == target


def test_invalid_option_is_refused_with_the_valid_names(
    demo_workspace: Path, tmp_path: Path
) -> None:
    result = run_dfl(
        [
            "train",
            "--workspace",
            str(demo_workspace),
            "--model",
            "Quick96",
            "--name",
            "y",
            "--no-preview",
            "--opt",
            "no_such_option=1",
        ],
        tmp_path,
    )
    assert result.returncode == 2
    assert "no_such_option" in result.stderr
    assert "target_iter" in result.stderr


def test_ctrl_c_at_a_prompt_ends_cleanly(demo_workspace: Path, tmp_path: Path) -> None:
    session = TmuxSession(
        [*DFL, "train", "--workspace", str(demo_workspace), "--no-preview"], tmp_path, dfl_env()
    )
    try:
        session.wait_for(r"Model \( SAEHD/AMP/Quick96", 60)
        session.send("C-c")
        assert session.exit_code(30) == 130
        screen = session.screen()
        assert "Cancelled" in screen
        assert "Traceback" not in screen
    finally:
        session.close()
    assert not (demo_workspace / "model" / "new_Quick96").exists()


def test_ctrl_c_at_an_option_prompt_leaves_no_model_behind(
    demo_workspace: Path, tmp_path: Path
) -> None:
    command = [*DFL, "train", "--workspace", str(demo_workspace), "--model", "SAEHD"]
    session = TmuxSession([*command, "--name", "abandoned", "--no-preview"], tmp_path, dfl_env())
    try:
        session.wait_for(r"Autobackup every N hour", 120)
        session.send("C-c")
        assert session.exit_code(30) == 130
        assert "Traceback" not in session.screen()
    finally:
        session.close()
    assert not (demo_workspace / "model" / "abandoned_SAEHD").exists()
