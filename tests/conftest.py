"""Fixtures shared by the test files (helpers to import live in tests/e2e.py, tests/terminal.py
and tests/xvfb.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import make_demo_workspace


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with the demo facesets, made once; tests copy it before changing anything."""
    return make_demo_workspace(tmp_path_factory.mktemp("ws") / "workspace")
