"""`dfl export` end to end: a tiny SAEHD trained one iteration by `dfl train`, exported by the
CLI and opened with onnxruntime; the menu without "new"; saved SAEHD/AMP folders load; and the
user errors (no models, unknown name) exit 2 with a message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dfl import backend

backend.select(None)

from dfl.interop.deepfacelive import contract  # noqa: E402
from dfl.store.workspace import WorkspaceError  # noqa: E402
from dfl.ui.menu import choose_model  # noqa: E402

DFL = [sys.executable, "-m", "dfl.cli"]
TIMEOUT_S = 300
TINY = {  # the smallest SAEHD / AMP the option tables accept
    "resolution": 64,
    "ae_dims": 32,
    "e_dims": 16,
    "d_dims": 16,
    "d_mask_dims": 16,
}
TRAIN_FLAGS = [f"--opt={key}={value}" for key, value in TINY.items()]


def _run(args: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "DISPLAY": ""}
    return subprocess.run(
        [*DFL, *args], input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S, env=env
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with a tiny liae SAEHD trained for one iteration through `dfl train`."""
    root = tmp_path_factory.mktemp("export") / "workspace"
    demo = _run(["demo", "--workspace", str(root), "--count", "8"])
    assert demo.returncode == 0, demo.stderr
    train = _run(
        [
            "train",
            "--model=SAEHD",
            "--name=tiny",
            f"--workspace={root}",
            "--no-preview",
            "--cpu-only",
            "--opt=archi=liae-ud",
            "--opt=batch_size=2",
            "--opt=target_iter=1",
            *TRAIN_FLAGS,
        ]
    )
    assert train.returncode == 0, train.stdout + train.stderr
    return root


def test_cli_exports_a_verified_dfm(workspace: Path, tmp_path: Path) -> None:
    output = tmp_path / "tiny.dfm"
    result = _run(
        [
            "export",
            f"--model-dir={workspace / 'model'}",
            "--force-model-name=tiny",
            "--model=SAEHD",
            f"--output={output}",
            "--no-quantize",
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verified" in result.stdout and "MiB" in result.stdout
    import onnxruntime as ort

    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [contract.IN_FACE]
    faces = np.random.default_rng(0).uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    shapes = [o.shape for o in session.run(None, {contract.IN_FACE: faces})]
    assert shapes == [(2, 64, 64, 1), (2, 64, 64, 3), (2, 64, 64, 1)]


def test_cli_menu_and_default_output(workspace: Path) -> None:
    """No flags: the only model type is taken, the menu picks [0], Enter answers 'n'."""
    result = _run(["export", f"--workspace={workspace}"], stdin="0\n\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Choose one of saved models." in result.stdout
    assert "Export quantized?" in result.stdout
    dfm = workspace / "model" / "tiny_SAEHD" / "tiny_SAEHD_model.dfm"
    assert dfm.is_file() and str(dfm) in result.stdout


def test_cli_without_models_exits_2(tmp_path: Path) -> None:
    result = _run(["export", f"--workspace={tmp_path / 'empty'}"])
    assert result.returncode == 2
    assert "no saved models" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "empty").exists()  # export creates no workspace


def test_cli_unknown_name_exits_2(workspace: Path) -> None:
    result = _run(["export", f"--workspace={workspace}", "--model=SAEHD", "--name=nope"])
    assert result.returncode == 2
    assert "no saved SAEHD model named 'nope'" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_menu_without_new_models(tmp_path: Path) -> None:
    folder = tmp_path / "alpha_SAEHD"
    folder.mkdir()
    (folder / "current").write_text("x")
    said: list[str] = []
    answers = iter(["brand new", "alpha"])
    name = choose_model(tmp_path, "SAEHD", lambda _: next(answers), said.append, allow_new=False)
    assert name == "alpha"
    assert "No saved SAEHD model 'brand new'." in said
    with pytest.raises(WorkspaceError, match="no saved AMP models"):
        choose_model(tmp_path, "AMP", lambda _: "", said.append, allow_new=False)
