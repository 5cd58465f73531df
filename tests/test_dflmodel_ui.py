"""DFL model import from the user's side: `dfl import` (exit codes, messages), the saved-model
menu's DFL entries, `dfl train` importing a chosen DFL model and resuming it, and
`--pretrained-model-dir` with DFL files or a project model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dfl import backend

backend.select(None)

from dfl.data.faceset import load_faceset  # noqa: E402
from dfl.errors import UserError  # noqa: E402
from dfl.interop.deepfacelab.reader import read_weights  # noqa: E402
from dfl.models.saehd import model as saehd  # noqa: E402
from dfl.options import resolve_options  # noqa: E402
from dfl.store.model_store import ModelStore  # noqa: E402
from dfl.training.trainer import Trainer, TrainingSetup  # noqa: E402
from dfl.ui.import_command import importable_names, pretrained_source, pretrained_weights  # noqa: E402
from dfl.ui.menu import choose_model  # noqa: E402
from tests.console_fakes import Output, Script  # noqa: E402

DATA = Path(__file__).parent / "data"
FIXTURES = DATA / "dfl-models"
FACESET = DATA / "dfl-faceset"
DF = "tiny-saehd-df-ud-64"
EXIT_USAGE = 2
RUN_TIMEOUT_S = 300


def _copy(case: str, tmp_path: Path) -> Path:
    folder = tmp_path / case
    shutil.copytree(FIXTURES / case, folder)
    return folder


def _dfl(*args: str | Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_COLOR="1", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "dfl.cli", *map(str, args)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=RUN_TIMEOUT_S,
        env=env,
        check=False,
    )


# ------------------------------------------------------------------------------ dfl import
def test_dfl_import_command_and_its_user_errors(tmp_path: Path) -> None:
    folder = _copy(DF, tmp_path)
    done = _dfl("import", "--model-dir", folder)
    assert done.returncode == 0, done.stderr
    assert "Imported DFL model 'tiny' (SAEHD, iteration 9) in " in done.stdout
    assert " MB written to " in done.stdout
    assert ModelStore(folder / "tiny_SAEHD").load().iteration == 9

    again = _dfl("import", "--model-dir", folder)
    assert again.returncode == EXIT_USAGE
    assert "already exists" in again.stderr and "--new-name" in again.stderr

    for args, message in (
        (("--force-model-name", "nope"), "no DeepFaceLab model named 'nope'"),
        (("--model", "Quick96"), "no DeepFaceLab Quick96 models"),
        (("--model", "XSeg"), "unknown model"),
    ):
        bad = _dfl("import", "--model-dir", folder, *args)
        assert bad.returncode == EXIT_USAGE, (args, bad.stderr)
        assert message in bad.stderr
        assert "Traceback" not in bad.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = _dfl("import", "--model-dir", empty)
    assert bad.returncode == EXIT_USAGE and "no DeepFaceLab models" in bad.stderr


def test_dfl_import_bad_file_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    folder = _copy(DF, tmp_path)
    path = folder / "tiny_SAEHD_encoder.npy"
    path.write_bytes(path.read_bytes()[:1000])
    bad = _dfl("import", "--model-dir", folder)
    assert bad.returncode == EXIT_USAGE
    assert "tiny_SAEHD_encoder.npy is cut short" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert not (folder / "tiny_SAEHD").exists()


# -------------------------------------------------------------------- the saved-model menu
def _saved(model_dir: Path, name: str) -> None:
    folder = model_dir / f"{name}_SAEHD"
    folder.mkdir()
    (folder / "current").write_text("000000001\n")


def test_menu_lists_dfl_models_and_imports_on_yes(tmp_path: Path) -> None:
    folder = _copy(DF, tmp_path)
    assert importable_names(folder, "SAEHD") == ["tiny"]
    assert importable_names(folder, "AMP") == []
    out = Output()
    script = Script("")  # Enter: the only (DFL) model; Enter again: yes, import it
    name = choose_model(folder, "SAEHD", script, out, dfl_models=lambda: ["tiny"])
    assert name == "tiny"
    assert "[0] : tiny - DFL model (choose it to import)" in out
    assert script.prompts[-1] == "[y] Import DFL model 'tiny'? ( y/n ) : "


def test_menu_declined_import_lists_again(tmp_path: Path) -> None:
    folder = _copy(DF, tmp_path)
    _saved(folder, "mine")
    out = Output()
    script = Script("1", "n", "TINY", "y")
    name = choose_model(folder, "SAEHD", script, out, dfl_models=lambda: ["tiny"])
    assert name == "tiny"
    assert out.count("[1] : tiny - DFL model (choose it to import)") == 2
    assert "Not imported." in out
    # an imported DFL model is listed once, as the project model
    _saved(folder, "tiny")
    assert importable_names(folder, "SAEHD") == []


def test_dfl_train_imports_the_named_dfl_model_and_resumes_it(tmp_path: Path) -> None:
    folder = _copy("tiny-saehd-liae-ud-64", tmp_path)
    done = _dfl(
        "train", "--model", "SAEHD", "--model-dir", folder, "--force-model-name", "tiny",
        "--training-data-src-dir", FACESET / "src", "--training-data-dst-dir", FACESET / "dst",
        "--opt", "target_iter=10", "--opt", "batch_size=2", "--no-preview", "--cpu-only",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Imported DFL model 'tiny' (SAEHD, iteration 9)" in done.stdout
    assert "Model first run." not in done.stdout
    assert ModelStore(folder / "tiny_SAEHD").load().iteration == 10


def test_dfl_train_starts_a_new_model_from_pretrained_dfl_files(tmp_path: Path) -> None:
    folder = _copy(DF, tmp_path)
    models = tmp_path / "models"
    done = _dfl(
        "train", "--model", "SAEHD", "--model-dir", models, "--force-model-name", "fresh",
        "--pretrained-model-dir", folder,
        "--training-data-src-dir", FACESET / "src", "--training-data-dst-dir", FACESET / "dst",
        "--opt", "target_iter=1", "--opt", "batch_size=2", "--no-preview", "--cpu-only",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Architecture options come from the pretrained model: resolution 64" in done.stdout
    assert "Starting from the weights of the DFL model" in done.stdout
    loaded = ModelStore(models / "fresh_SAEHD").load()
    assert loaded.iteration == 1 and loaded.state.options["archi"] == "df-ud"


# -------------------------------------------------------------------- --pretrained-model-dir
def _new_options(**given) -> dict:
    return resolve_options(saehd.option_table(None), overrides=given).options


def _trainer(store_folder: Path, options: dict, pretrained) -> Trainer:
    return Trainer(
        TrainingSetup(
            spec=saehd.SPEC,
            name="fresh",
            store=ModelStore(store_folder),
            options=options,
            device="cpu",
            backend="tensorflow",
            src=load_faceset(FACESET / "src").samples,
            dst=load_faceset(FACESET / "dst").samples,
            pretrained=pretrained,
            seed=1,
            workers=1,
        )
    )


def test_pretrained_dfl_model_starts_a_new_model(tmp_path: Path) -> None:
    folder = _copy(DF, tmp_path)
    table = tuple(saehd.option_table(None))
    source = pretrained_source(folder, "SAEHD", saehd)
    fixed = source.fixed_options(table)
    assert fixed["archi"] == "df-ud" and fixed["resolution"] == 64 and fixed["ae_dims"] == 32
    options = _new_options(**fixed, batch_size=2)
    trainer = _trainer(
        tmp_path / "fresh_SAEHD", options, pretrained_weights(source, options, table)
    )
    try:
        assert trainer.iteration == 0
        dfl = read_weights(folder / "tiny_SAEHD_decoder_src.npy")
        ours = {w.path: np.asarray(w) for w in trainer.model.networks["decoder_src"].weights}
        np.testing.assert_array_equal(
            ours["decoder_src/res0/conv1/kernel"], dfl["res0/conv1/weight:0"]
        )
    finally:
        trainer.close()

    with pytest.raises(UserError, match="another architecture"):
        pretrained_weights(source, dict(options, ae_dims=64), table)


def test_pretrained_project_model_and_missing_folder(tmp_path: Path) -> None:
    folder = _copy(DF, tmp_path)
    assert _dfl("import", "--model-dir", folder).returncode == 0
    source = pretrained_source(folder / "tiny_SAEHD", "SAEHD", saehd)
    assert source.loaded is not None and source.iteration == 9
    with pytest.raises(UserError, match="holds no saved AMP model"):
        pretrained_source(folder, "AMP", saehd)
    with pytest.raises(UserError, match="is not a folder"):
        pretrained_source(tmp_path / "missing", "SAEHD", saehd)
