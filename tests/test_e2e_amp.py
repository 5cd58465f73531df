"""End to end through a real terminal: create a tiny AMP model answering its prompts in DFL's
order, train, exit with Enter, export it for DeepFaceLive. (The override gate on a restart:
tests/test_e2e_saehd.py; which AMP options a restart asks: tests/test_amp_options.py.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from dfl.models.amp.options import option_table
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

# Prompt label -> answer (None = Enter, the default), in AMP's ask order after the shared ones.
FIRST_RUN = {
    "Resolution": "64",
    "Face type": "f",
    "AutoEncoder dimensions": "32",
    "Inter dimensions": "32",
    "Encoder dimensions": "16",
    "Decoder dimensions": "16",
    "Decoder mask dimensions": "16",
    "Morph factor.": "0.3",
    "Use learning rate dropout": "y",
    "GAN power": "0.1",
    "GAN patch size": "8",
    "GAN dimensions": "4",
    "Color transfer for src faceset": "rct",
    "Batch_size": "2",
}
AMP_ASK_ORDER = [  # docs/dfl-trainer.md §4.3, after the shared prompts
    "Resolution",
    "Face type",
    "AutoEncoder dimensions",
    "Inter dimensions",
    "Encoder dimensions",
    "Decoder dimensions",
    "Decoder mask dimensions",
    "Morph factor.",
    "Uniform yaw distribution of samples",
    "Blur out mask",
    "Use learning rate dropout",
    "Place models and optimizer on GPU",
    "Enable random warp of samples",
    "GAN power",
    "GAN patch size",
    "GAN dimensions",
    "Color transfer for src faceset",
    "Enable gradient clipping",
]
# every prompt label the table knows (the shared ones included)
LABELS = tuple(option.label for option in option_table())


def test_amp_create_train_exit_export(demo_workspace: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    shutil.copytree(demo_workspace, workspace)
    model = workspace / "model" / "tiny_AMP"
    command = [*DFL, "train", "--workspace", str(workspace), "--model", "AMP", "--name", "tiny"]

    session = TmuxSession([*command, "--no-preview"], tmp_path, dfl_env())
    try:
        # the status line is rewritten in place: any iteration from 2 on will do
        asked = answer_prompts(session, FIRST_RUN, r"\[#(?!00000[01]\])\d{6}\]", LABELS)
        assert asked[0] == "Autobackup every N hour"
        assert asked[-len(AMP_ASK_ORDER) :] == AMP_ASK_ORDER
        session.send("Enter")
        assert session.exit_code(EXIT_TIMEOUT_S) == 0
        first = iteration_on_screen(session)
    finally:
        session.close()
    state = current_state(model)
    assert state["model_type"] == "AMP"
    assert state["iteration"] == first >= 2
    options = state["options"]
    assert (options["resolution"], options["inter_dims"], options["morph_factor"]) == (64, 32, 0.3)
    assert (options["gan_power"], options["lr_dropout"], options["ct_mode"]) == (0.1, "y", "rct")
    assert options["batch_size"] == 2

    # Export for DeepFaceLive through the terminal: Enter at "Export quantized?" (no).
    output = tmp_path / "tiny_AMP.dfm"
    export = [*DFL, "export", "--workspace", str(workspace), "--model", "AMP"]
    session = TmuxSession([*export, "--name", "tiny", "--output", str(output)], tmp_path, dfl_env())
    try:
        session.wait_for(r"Export quantized\? \( y/n \?:help \) :", 120)
        session.send("Enter")
        assert session.exit_code(EXIT_TIMEOUT_S) == 0
        assert "Verified" in session.screen()
    finally:
        session.close()
    from dfl.interop.deepfacelive.verify import check_inputs, open_session, run

    dfm = open_session(output)
    info = check_inputs(dfm.get_inputs())  # DeepFaceLive's own checks
    assert (info.resolution, info.has_morph) == (64, True)
    face = np.full((1, 64, 64, 3), 0.5, np.float32)
    mask, swapped, swapped_mask = run(dfm, info, face, morph=0.75)
    assert swapped.shape == (1, 64, 64, 3) and mask.shape == swapped_mask.shape == (1, 64, 64, 1)
