"""Fixtures shared by the test files (helpers to import live in tests/helpers.py, tests/e2e.py,
tests/terminal.py, tests/console_fakes.py and tests/xvfb.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from tests.e2e import make_demo_workspace


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with the demo facesets, made once; tests copy it before changing anything."""
    return make_demo_workspace(tmp_path_factory.mktemp("ws") / "workspace")


@pytest.fixture
def pty_stream() -> Iterator[tuple[int, IO[str]]]:
    """A pseudo-terminal: the master end to type into, the slave end read as a text stream."""
    master, slave = os.openpty()
    stream = os.fdopen(slave, "r")
    yield master, stream
    stream.close()
    os.close(master)
