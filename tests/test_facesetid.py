"""The facesets a model was trained on are recorded with it; a resumed model meeting other faces
says so at start-up."""

from __future__ import annotations

import shutil
from pathlib import Path

from dfl.data.faceset import FaceSample, load_faceset
from dfl.data.facesetid import differences, identities, identity
from tests.e2e import current_state, run_dfl
from tests.merge_models import TINY_ITERATION, save_tiny_model


def samples(folder: str, *names: str) -> list[FaceSample]:
    return [FaceSample(Path(folder) / n, (8, 8), None, None) for n in names]


def test_identity_depends_on_the_file_names_not_their_order() -> None:
    a = identity(samples("/x", "1.jpg", "2.jpg"))
    assert a == identity(samples("/x", "2.jpg", "1.jpg"))
    assert a["count"] == 2 and a["folder"] == "/x"
    assert a["fingerprint"] != identity(samples("/x", "1.jpg", "3.jpg"))["fingerprint"]


def test_differences_name_the_side_that_changed() -> None:
    stored = identities(samples("/s", "1.jpg"), samples("/d", "1.jpg"))
    assert differences(stored, stored) == []
    assert differences({}, stored) == []  # a model saved before dfl recorded its facesets
    (line,) = differences(stored, identities(samples("/s", "1.jpg"), samples("/e", "2.jpg")))
    assert line.startswith("The dst faceset differs") and "1 faces in /e" in line


def test_a_reused_model_says_its_faces_changed(demo_workspace: Path, tmp_path: Path) -> None:
    """A tiny SAEHD (its sizes are options, so `dfl train` rebuilds it) saved with the demo's
    facesets, trained on with one dst face fewer: the start-up says the dst faces differ, and
    the new save records the faces it trained on."""
    workspace = tmp_path / "workspace"
    shutil.copytree(demo_workspace, workspace)
    trained_on = identities(
        load_faceset(workspace / "data_src/aligned").samples,
        load_faceset(workspace / "data_dst/aligned").samples,
    )
    folder = save_tiny_model(workspace / "model", "new", "SAEHD", facesets=trained_on)
    other = tmp_path / "other_dst"
    shutil.copytree(workspace / "data_dst" / "aligned", other)
    next(iter(sorted(other.iterdir()))).unlink()  # one face fewer
    target = f"target_iter={TINY_ITERATION + 1}"
    train = ["train", "--workspace", str(workspace), "--model", "SAEHD", "--name", "new"]
    train += ["--no-preview", "--opt", target]
    again = run_dfl([*train, "--training-data-dst-dir", str(other)], tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    said = again.stdout + again.stderr
    assert "The dst faceset differs from the one this model was trained on" in said
    assert "The src faceset differs" not in said
    recorded = current_state(folder)["facesets"]
    assert recorded["dst"]["count"] == trained_on["dst"]["count"] - 1
    assert recorded["src"] == trained_on["src"]
