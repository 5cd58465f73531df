"""End to end through a real terminal: create a tiny SAEHD model answering its prompts, train,
exit with Enter, restart, take the override gate and change a changeable option."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.terminal import TmuxSession, tmux_available
from tests.test_e2e_terminal import (
    DFL,
    EXIT_TIMEOUT_S,
    FIRST_STEP_TIMEOUT_S,
    _current_state,
    _env,
    _iteration_on_screen,
    demo_workspace,  # noqa: F401 - the module-scoped fixture
)

pytestmark = [
    pytest.mark.ui,
    pytest.mark.skipif(not tmux_available(), reason="tmux is not installed"),
]

PROMPT_TIMEOUT_S = 60
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
LABELS = (
    *FIRST_RUN,
    "Masked training",
    "Uniform yaw distribution of samples",
    "Blur out mask",
    "Place models and optimizer on GPU",
    "Use AdaBelief optimizer?",
    "Enable random warp of samples",
    "Face style power",
    "Background style power",
    "Enable gradient clipping",
    "Enable pretraining mode",
    "Autobackup every N hour",
    "Number of autobackups to keep",
    "Write preview history",
    "Target iteration",
    "Flip DST faces randomly",
    "Use bf16 mixed precision",
    "Random seed",
)


def answer_prompts(
    session: TmuxSession, answers: dict[str, str], until: str, labels: tuple[str, ...] = LABELS
) -> list[str]:
    """Answer every prompt (by its label, one of `labels`) until `until` shows; returns the
    labels asked."""
    alternatives = "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True))
    pattern = rf"(?:\] (?P<label>{alternatives})(?: \([^\n]*\))? :[ \t]*$)|(?P<done>{until})"
    asked: list[str] = []
    after = 0
    while True:
        match = session.wait_for(pattern, PROMPT_TIMEOUT_S + FIRST_STEP_TIMEOUT_S, after)
        after += match.end()
        if match.group("done"):
            return asked
        label = match.group("label")
        asked.append(label)
        answer = answers.get(label)
        if answer:
            session.type(answer)
        session.send("Enter")


def test_saehd_create_train_exit_override_resume(demo_workspace: Path, tmp_path: Path) -> None:  # noqa: F811
    workspace = tmp_path / "workspace"
    shutil.copytree(demo_workspace, workspace)
    model = workspace / "model" / "tiny_SAEHD"
    command = [*DFL, "train", "--workspace", str(workspace), "--model", "SAEHD", "--name", "tiny"]

    session = TmuxSession([*command, "--no-preview"], tmp_path, _env())
    try:
        # the status line is rewritten in place: any iteration from 2 on will do
        asked = answer_prompts(session, FIRST_RUN, r"\[#(?!00000[01]\])\d{6}\]")
        assert "Resolution" in asked and "GAN patch size" in asked
        session.send("Enter")
        assert session.exit_code(EXIT_TIMEOUT_S) == 0
        first = _iteration_on_screen(session)
    finally:
        session.close()
    state = _current_state(model)
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

    # Restart: Enter at the override gate asks the changeable options (not the fixed ones).
    session = TmuxSession([*command, "--no-preview"], tmp_path, _env())
    try:
        session.wait_for(r"Press Enter within 2 seconds to override model settings", 120)
        session.send("Enter")
        asked = answer_prompts(session, {"Batch_size": "3"}, r"\[#\d{6}\]")  # resumed
        assert "Batch_size" in asked
        assert "Resolution" not in asked and "AE architecture" not in asked
        session.send("Enter")
        assert session.exit_code(EXIT_TIMEOUT_S) == 0
        resumed_to = _iteration_on_screen(session)
    finally:
        session.close()
    state = _current_state(model)
    assert state["iteration"] == resumed_to > first
    assert state["options"]["batch_size"] == 3
    assert state["options"]["resolution"] == 64
