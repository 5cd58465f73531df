"""`dfl merge` end to end: DFL's questions in a real terminal (invalid answers re-asked), the
answers remembered with the model, a piped re-run that resumes, the interactive fallback without a
display (the window itself: tests/test_merge_window.py), and bad inputs that end with a message
and exit code 2 before anything is loaded."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from dfl.merge.session import SESSION_FILE, MergeSession, load_session, save_session
from dfl.options import OptionError
from dfl.ui.merge_questions import (
    Asker,
    ask_interactive,
    ask_morph,
    ask_settings,
    ask_workers,
    check_overrides,
)
from tests.e2e import EXIT_TIMEOUT_S, PROMPT_TIMEOUT_S, dfl_env, run_dfl
from tests.merge_fixtures import make_workspace, write_aligned
from tests.terminal import TmuxSession, tmux_available

DFL_MODEL = Path(__file__).parent / "data" / "dfl-models" / "tiny-saehd-df-ud-64"
FRAMES = 3
MERGE_TIMEOUT_S = 180  # imports, model load and three frames on 2 cores
# the questions after the mask mode, in DFL's order (overlay mode, no sharpen)
LATER_QUESTIONS = (
    "Choose erode mask modifier",
    "Choose blur mask modifier",
    "Choose motion blur power",
    "Choose output face scale modifier",
    "Color transfer to predicted face",
    "Choose sharpen mode",
    "Choose image degrade by denoise power",
    "Choose image degrade by bicubic rescale power",
    "Degrade color power of final image",
)


@pytest.fixture(scope="module")
def base_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data_dst with 3 frames and their aligned faces, and DFL's tiny SAEHD imported as 'tiny'."""
    root = tmp_path_factory.mktemp("merge") / "workspace"
    frames, aligned = make_workspace(root / "tmp", n=FRAMES)
    shutil.move(str(frames), str(root / "data_dst"))
    shutil.move(str(aligned), str(root / "data_dst" / "aligned"))
    shutil.copytree(DFL_MODEL, root / "model")
    result = run_dfl(["import", "--model-dir", str(root / "model"), "--model", "SAEHD"], root)
    assert result.returncode == 0, result.stdout + result.stderr
    return root


@pytest.fixture
def workspace(base_workspace: Path, tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    shutil.copytree(base_workspace, root)
    return root


def _outputs(root: Path) -> tuple[list[str], list[str]]:
    def names(folder: Path) -> list[str]:
        return sorted(p.name for p in folder.glob("*.png"))

    return names(root / "data_dst" / "merged"), names(root / "data_dst" / "merged_mask")


@pytest.mark.ui
@pytest.mark.skipif(not tmux_available(), reason="tmux is not installed")
def test_questions_in_a_terminal_then_a_piped_resume(workspace: Path, tmp_path: Path) -> None:
    session = TmuxSession(
        ["python", "-m", "dfl.cli", "merge", "--workspace", str(workspace), "--cpu-only"],
        tmp_path,
        dfl_env(),
    )
    try:
        session.wait_for(r"Choose one of saved models\.", PROMPT_TIMEOUT_S)
        session.send("Enter")
        at = session.wait_for(r"\[y\] Use interactive merger\? \( y/n \?:help \) : ", 90).end()
        session.type("n")
        session.send("Enter")
        session.wait_for(r"\(6\) raw-predict", PROMPT_TIMEOUT_S, at)  # DFL's list first
        at = session.wait_for(r"Choose mode .*: $", PROMPT_TIMEOUT_S, at).end()
        session.type("9")  # not a mode: asked again
        session.send("Enter")
        at = session.wait_for(r"Choose mode .*: $", PROMPT_TIMEOUT_S, at).end()
        session.type("1")
        session.send("Enter")
        at = session.wait_for(r"Choose mask mode .*: $", PROMPT_TIMEOUT_S, at).end()
        session.type("7")  # an XSeg mode: refused with the reason, asked again
        session.send("Enter")
        at = session.wait_for(r"XSeg.*\n.*Choose mask mode .*: $", PROMPT_TIMEOUT_S, at).end()
        session.send("Enter")  # dst
        for label in LATER_QUESTIONS:
            at = session.wait_for(rf"{label}.*: $", PROMPT_TIMEOUT_S, at).end()
            session.send("Enter")
        session.wait_for(r"Number of workers\? .*: $", PROMPT_TIMEOUT_S, at)
        session.type("1")
        session.send("Enter")
        session.wait_for(rf"Merged {FRAMES} frames", MERGE_TIMEOUT_S)
        assert session.exit_code(EXIT_TIMEOUT_S) == 0
    finally:
        session.close()
    expected = [f"{i:05d}.png" for i in range(1, FRAMES + 1)]
    assert _outputs(workspace) == (expected, expected)
    session_file = workspace / "model" / "tiny_SAEHD" / "merger_session.json"
    remembered = json.loads(session_file.read_text())
    assert remembered["settings"]["mode"] == "overlay"
    assert remembered["settings"]["mask_mode"] == "dst" and remembered["workers"] == 1

    # Piped, input closed: the remembered answers are the defaults and every frame is kept.
    result = run_dfl(["merge", "--workspace", str(workspace), "--no-interactive"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[overlay]" in result.stdout and "input closed" in result.stdout
    assert f"{FRAMES} frames were already merged" in result.stdout


def test_interactive_without_display_falls_back(workspace: Path, tmp_path: Path) -> None:
    result = run_dfl(
        [
            "merge",
            "--workspace",
            str(workspace),
            "--interactive",
            "--opt",
            "mode=seamless",
            "--opt",
            "workers=2",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No window for the interactive merger" in result.stdout
    assert f"Merged {FRAMES} frames" in result.stdout
    assert "Traceback" not in result.stderr


def _fails(args: list[str], cwd: Path, message: str) -> None:
    result = run_dfl(["merge", *args], cwd)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_bad_inputs_exit_2_with_a_message(workspace: Path, tmp_path: Path) -> None:
    ws = ["--workspace", str(workspace)]
    _fails(["--workspace", str(tmp_path / "none")], tmp_path, "frame folder not found")
    empty = tmp_path / "empty"
    empty.mkdir()
    _fails([*ws, "--input-dir", str(empty)], tmp_path, "no frames to merge")
    _fails([*ws, "--aligned-dir", str(empty)], tmp_path, "no aligned faces")
    plain = tmp_path / "plain"
    write_aligned(plain, "00001_0.jpg", None)
    _fails([*ws, "--aligned-dir", str(plain)], tmp_path, "does not say which frame")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _fails([*ws, "--output-dir", str(blocker)], tmp_path, "cannot write to the output folder")
    _fails([*ws, "--opt", "colour=rct"], tmp_path, "unknown merge option colour")
    _fails([*ws, "--force-model-name", "nope"], tmp_path, "no saved SAEHD model named 'nope'")
    _fails([*ws, "--model-dir", str(empty)], tmp_path, "no saved models")


# ------------------------------------------------------------------ the questions, in process
def _asker(answers: list[str]) -> tuple[Asker, list[str]]:
    said: list[str] = []
    feed = iter(answers)

    def read(prompt: str) -> str:
        said.append(prompt)
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    return Asker(read, said.append), said


def test_settings_questions_reask_and_remember(tmp_path: Path) -> None:
    # mode: 9 re-asked, then seamless by name; mask 8 (XSeg) re-asked, then 5; erode 10;
    # blur 999 out of range, re-asked, 40; motion, scale: Enter; colour mkl; the rest closed
    asker, said = _asker(["9", "seamless", "8", "5", "10", "999", "40", "", "", "mkl"])
    settings, _ = ask_settings(asker, None, {"sharpen_mode": "box"})
    assert (settings.mode, settings.mask_mode) == ("seamless", "learned-prd+learned-dst")
    assert (settings.erode_mask_modifier, settings.blur_mask_modifier) == (10, 40)
    assert settings.color_transfer_mode == "mkl" and settings.sharpen_mode == "box"
    assert sum(line.endswith(" : ") and "Choose mode (" in line for line in said) == 2
    assert any("XSeg" in line for line in said)
    assert "(6) raw-predict" in said and "input closed" in " ".join(said)
    # remembered: the next run's defaults are these answers
    save_session(tmp_path, MergeSession(settings=settings, morph_factor=0.25, workers=1))
    session = load_session(tmp_path)
    assert session.settings == settings and session.morph_factor == 0.25
    asker, said = _asker([])
    again, _ = ask_settings(asker, session.settings, {})
    assert again == settings and said[0].startswith("Choose mode")
    assert any(line.startswith("[seamless] Choose mode") for line in said)


def test_morph_workers_and_bad_options() -> None:
    asker, said = _asker(["1.5", "0.5", "0", "3"])
    assert ask_morph(asker, None, {}) == 0.5
    assert said[0].startswith("[1.0] Morph factor ( 0.0 .. 1.0")
    cpus = os.cpu_count() or 1
    workers = ask_workers(asker, None, {})
    assert 1 <= workers <= cpus and any("Number of workers?" in line for line in said)
    asker, _ = _asker([])
    assert ask_morph(asker, 0.75, {}) == 0.75  # remembered, input closed
    assert ask_interactive(asker, None, {"interactive": "n"}) is False
    with pytest.raises(OptionError, match="unknown merge option morph_factor"):
        check_overrides({"morph_factor": "0.5"}, "SAEHD")
    check_overrides({"morph_factor": "0.5", "mode": "overlay"}, "AMP")
    with pytest.raises(OptionError, match="out of range"):
        ask_settings(asker, None, {"erode_mask_modifier": "500"})


def test_unreadable_session_is_ignored_with_a_note(tmp_path: Path) -> None:
    (tmp_path / SESSION_FILE).write_text("{ not json")
    session = load_session(tmp_path)
    assert session.settings is None and "cannot be read" in session.notes[0]
    (tmp_path / SESSION_FILE).write_text(json.dumps({"schema": 1, "settings": {"mode": "x"}}))
    session = load_session(tmp_path)
    assert session.settings is None and "not used" in session.notes[0]
