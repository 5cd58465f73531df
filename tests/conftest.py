"""Fixtures shared by the test files (helpers to import live in tests/helpers.py, tests/e2e.py,
tests/terminal.py, tests/console_fakes.py and tests/xvfb.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from tests.e2e import make_demo_workspace

# The longest test files first (wall seconds on 2 cores under two pytest-xdist workers, from
# --durations), so that the two workers end together instead of one waiting for the other's
# last long file. Files not listed keep their order after these.
LONGEST_FILES_FIRST = (
    "test_multidevice.py",  # ~130 s: TensorFlow and JAX children on 2 virtual devices
    "test_backends.py",  # ~125 s: JAX and torch children
    "test_dflmodel_ui.py",  # ~90 s
    "test_e2e_terminal.py",  # ~75 s: a real Quick96
    "test_e2e_saehd.py",  # ~40 s
    "test_saehd_train.py",  # ~35 s
    "test_amp_model.py",  # ~35 s
    "test_dflmodel.py",  # ~35 s
    "test_merge_cli.py",  # ~30 s
    "test_model_contract.py",  # ~28 s
    "test_e2e_amp.py",  # ~26 s
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the longest files first (a stable sort: tests keep their order within a file)."""
    rank = {name: i for i, name in enumerate(LONGEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


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
