"""End to end through a real terminal: create a tiny SAEHD model answering its prompts, train,
exit with Enter; restart, pick it in the saved-model menu, take the override gate, change a
changeable option, and stop with Ctrl+C (which saves too)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dfl.models.saehd.options import option_table
from tests.e2e import (
    DFL,
    EXIT_TIMEOUT_S,
    answer_prompts,
    current_state,
    dfl_env,
    iteration_on_screen,
)
from tests.terminal import TmuxSession, tmux_available

pytestmark = [
    pytest.mark.ui,
    pytest.mark.skipif(not tmux_available(), reason="tmux is not installed"),
]

# Prompt label -> answer (None = Enter, the default); labels not listed also take Enter.
FIRST_RUN = {
    "Resolution": "64",
    "Face type": "f",
    "AE architecture": "df-ud",
    "AutoEncoder dimensions": "32",
    "Encoder dimensions": "16",
    "Decoder dimensions": "16",
    "Decoder mask dimensions": "16",
    "Eyes and mouth priority": "y",
    "Use learning rate dropout": "y",
    "Random hue/saturation/light intensity": "0.05",
    "GAN power": "0.1",
    "GAN patch size": "8",
    "GAN dimensions": "4",
    "'True face' power.": "0.01",
    "Color transfer for src faceset": "rct",
    "Flip SRC faces randomly": "y",
    "Batch_size": "2",
}
LABELS = tuple(option.label for option in option_table(None))


def test_saehd_create_train_exit_override_resume(demo_workspace: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    shutil.copytree(demo_workspace, workspace)
    model = workspace / "model" / "tiny_SAEHD"
    train = [*DFL, "train", "--workspace", str(workspace), "--model", "SAEHD"]
    command = [*train, "--name", "tiny"]

    session = TmuxSession([*command, "--no-preview"], tmp_path, dfl_env())
    try:
        # the status line is rewritten in place: any iteration from 2 on will do
        asked = answer_prompts(session, FIRST_RUN, r"\[#(?!00000[01]\])\d{6}\]", LABELS)
        assert "Resolution" in asked and "GAN patch size" in asked
        session.send("Enter")
        assert session.exit_code(EXIT_TIMEOUT_S) == 0
        first = iteration_on_screen(session)
    finally:
        session.close()
    state = current_state(model)
    assert state["model_type"] == "SAEHD"
    assert state["iteration"] == first >= 2
    options = state["options"]
    assert (options["resolution"], options["archi"], options["ae_dims"]) == (64, "df-ud", 32)
    assert (options["gan_power"], options["true_face_power"], options["ct_mode"]) == (
        0.1,
        0.01,
        "rct",
    )
    assert options["batch_size"] == 2

    # Restart without a name: the menu lists the model and Enter picks it; Enter at the override
    # gate asks the changeable options (not the fixed ones).
    session = TmuxSession([*train, "--no-preview"], tmp_path, dfl_env())
    try:
        session.wait_for(r"\[0\] : tiny - latest", 60)
        session.send("Enter")
        session.wait_for(r"Press enter in 2 seconds to override model settings", 120)
        session.send("Enter")
        asked = answer_prompts(session, {"Batch_size": "3"}, r"\[#\d{6}\]", LABELS)  # resumed
        assert "Batch_size" in asked
        assert "Resolution" not in asked and "AE architecture" not in asked
        session.send("C-c")  # Ctrl+C saves and exits too
        assert session.exit_code(EXIT_TIMEOUT_S) == 0
        resumed_to = iteration_on_screen(session)
        assert "Trying to do the first iteration" not in session.screen()  # not a new model
    finally:
        session.close()
    state = current_state(model)
    assert state["iteration"] == resumed_to > first
    assert state["options"]["batch_size"] == 3
    assert state["options"]["resolution"] == 64
