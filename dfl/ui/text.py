"""Coloured console messages for the CLI (plain text when the stream is not a terminal)."""

from __future__ import annotations

import os
import sys
from typing import TextIO

import colorama

colorama.just_fix_windows_console()


def _use_colour(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def _say(text: str, colour: str, stream: TextIO) -> None:
    if _use_colour(stream):
        text = f"{colour}{text}{colorama.Style.RESET_ALL}"
    print(text, file=stream, flush=True)


def info(text: str, stream: TextIO | None = None) -> None:
    _say(text, "", stream or sys.stdout)


def note(text: str, stream: TextIO | None = None) -> None:
    _say(text, colorama.Fore.CYAN, stream or sys.stdout)


def warn(text: str, stream: TextIO | None = None) -> None:
    _say(text, colorama.Fore.YELLOW + colorama.Style.BRIGHT, stream or sys.stdout)


def error(text: str, stream: TextIO | None = None) -> None:
    _say(f"Error: {text}", colorama.Fore.RED + colorama.Style.BRIGHT, stream or sys.stderr)
