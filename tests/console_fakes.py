"""Stand-ins for the console in prompt and menu tests: scripted answers and captured output."""

from __future__ import annotations

import sys

import pytest

# the override gate and first-iteration tests read a pseudo-terminal
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="uses a pseudo-terminal")


class Script:
    """A scripted input function: returns lines in turn, raises exceptions, then EOFError."""

    def __init__(self, *lines: str | BaseException):
        self.lines = list(lines)
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if not self.lines:
            raise EOFError
        item = self.lines.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


class Output(list):
    """A print function that keeps each printed line."""

    def __call__(self, *args: object) -> None:
        self.append(" ".join(str(arg) for arg in args))
