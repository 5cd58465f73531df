"""Tests for dfl.store.workspace: model names, listing, rename, delete and workspace folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dfl.store.workspace import (
    Workspace,
    WorkspaceError,
    delete_model,
    list_models,
    model_folder,
    rename_model,
    validate_name,
)


@pytest.mark.parametrize(
    "name",
    ["new", "my_model", "a_b_c", "Jane Doe v2", "x" * 64, "12a", "-1", "conference", "com10",
     "lpt0", "émile", ".hidden", "r"],
)  # fmt: skip
def test_valid_names(name):
    assert validate_name(name) is None


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        ("x" * 65, "at most 64"),
        ("123", "all digits"),
        ("0", "all digits"),
        ("a/b", "cannot contain /"),
        ("a\\b", "cannot contain \\"),
        ("what?", "cannot contain ?"),
        ('<a>:"|*', "cannot contain"),
        ("name.", "dot or a space"),
        ("name ", "dot or a space"),
        ("..", "dot or a space"),
        ("tab\there", "control"),
        ("nl\n", "control"),
        ("del\x7f", "control"),
        ("CON", "reserved"),
        ("con", "reserved"),
        ("Nul", "reserved"),
        ("aux.backup", "reserved"),
        ("CON .txt", "reserved"),
        ("COM1", "reserved"),
        ("lpt9", "reserved"),
        ("PRN", "reserved"),
    ],
)
def test_invalid_names(name, fragment):
    reason = validate_name(name)
    assert reason is not None
    assert fragment in reason


def _saved(model_dir: Path, folder: str, mtime: float | None = None, kind: str = "current"):
    path = model_dir / folder
    path.mkdir(parents=True)
    if kind == "current":
        (path / "current").write_text("checkpoints/1")
        if mtime is not None:
            os.utime(path / "current", (mtime, mtime))
    elif kind == "checkpoints":
        (path / "checkpoints").mkdir()
        if mtime is not None:
            os.utime(path, (mtime, mtime))
    return path


def test_list_models(tmp_path):
    _saved(tmp_path, "old_SAEHD", 1000)
    _saved(tmp_path, "newest_SAEHD", 3000)
    _saved(tmp_path, "my_long_name_SAEHD", 2000, kind="checkpoints")
    _saved(tmp_path, "empty_SAEHD", kind="none")  # no saved state: not a model
    _saved(tmp_path, "other_AMP", 4000)
    _saved(tmp_path, "SAEHD", 5000)  # no name part
    _saved(tmp_path, "_SAEHD", 5000)  # empty name
    _saved(tmp_path, "x_saehd", 5000)  # type differs in case
    (tmp_path / "file_SAEHD").write_text("not a folder")
    models = list_models(tmp_path, "SAEHD")
    assert [entry.name for entry in models] == ["newest", "my_long_name", "old"]
    assert models[0].folder == tmp_path / "newest_SAEHD"
    assert models[0].mtime == 3000
    assert [entry.name for entry in list_models(tmp_path, "AMP")] == ["other"]


def test_list_models_missing_dir(tmp_path):
    assert list_models(tmp_path / "nope", "SAEHD") == []


def test_model_folder(tmp_path):
    assert model_folder(tmp_path, "a_b", "AMP") == tmp_path / "a_b_AMP"


def test_rename(tmp_path):
    _saved(tmp_path, "a_SAEHD")
    _saved(tmp_path, "b_SAEHD")
    new = rename_model(tmp_path, "SAEHD", "a", "c d")
    assert new == tmp_path / "c d_SAEHD"
    assert (new / "current").exists()
    assert not (tmp_path / "a_SAEHD").exists()
    with pytest.raises(WorkspaceError, match="already exists"):
        rename_model(tmp_path, "SAEHD", "b", "c d")
    with pytest.raises(WorkspaceError, match="all digits"):
        rename_model(tmp_path, "SAEHD", "b", "42")
    with pytest.raises(WorkspaceError, match="no SAEHD model named 'zzz'"):
        rename_model(tmp_path, "SAEHD", "zzz", "y")
    assert (tmp_path / "b_SAEHD").is_dir()


def test_rename_case_only(tmp_path):
    _saved(tmp_path, "abc_SAEHD")
    rename_model(tmp_path, "SAEHD", "abc", "ABC")
    assert [entry.name for entry in list_models(tmp_path, "SAEHD")] == ["ABC"]


def test_rename_onto_empty_folder_refused(tmp_path):
    _saved(tmp_path, "a_SAEHD")
    (tmp_path / "b_SAEHD").mkdir()  # os.rename would silently replace it on POSIX
    with pytest.raises(WorkspaceError, match="already exists"):
        rename_model(tmp_path, "SAEHD", "a", "b")


def test_delete(tmp_path):
    folder = _saved(tmp_path, "a_SAEHD")
    (folder / "autobackups" / "01").mkdir(parents=True)
    (folder / "autobackups" / "01" / "w.npz").write_bytes(b"x")
    _saved(tmp_path, "a_AMP")
    delete_model(tmp_path, "SAEHD", "a")
    assert not folder.exists()
    assert (tmp_path / "a_AMP").is_dir()  # other model types are untouched
    with pytest.raises(WorkspaceError, match="no SAEHD model"):
        delete_model(tmp_path, "SAEHD", "a")


def test_delete_refuses_path_tricks(tmp_path):
    outside = tmp_path / "keep_SAEHD"
    _saved(tmp_path, "keep_SAEHD")
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    with pytest.raises(WorkspaceError):
        delete_model(model_dir, "SAEHD", "../keep")
    assert outside.is_dir()


def test_workspace_paths_and_ensure(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    assert workspace.data_src == tmp_path / "ws" / "data_src" / "aligned"
    assert workspace.data_dst == tmp_path / "ws" / "data_dst" / "aligned"
    assert workspace.model_dir == tmp_path / "ws" / "model"
    created = workspace.ensure()
    root = tmp_path / "ws"
    assert created == [
        root,
        root / "data_src",
        root / "data_src" / "aligned",
        root / "data_dst",
        root / "data_dst" / "aligned",
        root / "model",
    ]
    assert all(path.is_dir() for path in created)
    assert workspace.ensure() == []


def test_workspace_explicit_dirs(tmp_path):
    workspace = Workspace(tmp_path, src_dir=tmp_path / "faces", models_dir=tmp_path / "m")
    assert workspace.data_src == tmp_path / "faces"
    assert workspace.data_dst == tmp_path / "data_dst" / "aligned"
    assert workspace.model_dir == tmp_path / "m"
    (tmp_path / "faces").mkdir()
    assert tmp_path / "faces" not in workspace.ensure()
