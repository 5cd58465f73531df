"""DFL-style console prompts for option tables, and the timed override gate."""

from __future__ import annotations

import builtins
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from dfl.options import Option, OptionError, Resolved, normalize, resolve_options

InputFn = Callable[[str], str]
PrintFn = Callable[..., None]

HELP_REQUEST = "?"
HELP_MARK = "?:help"
PROMPT_END = " : "
INPUT_CLOSED_MESSAGE = "input closed: using defaults for the remaining options"
NO_HELP_MESSAGE = "No help for this option."
OVERRIDE_SECONDS = 2.0
WINDOWS_POLL_S = 0.05  # msvcrt has no blocking wait with a timeout


class InputClosed(EOFError):
    """Standard input ended (closed or exhausted) while a prompt was waiting."""


class AnswerClock:
    """When the user last answered a start-up question: training's "First iteration done N s"
    counts from there (docs/dfl-trainer.md, "Start-up")."""

    def __init__(self) -> None:
        self.last: float | None = None  # time.monotonic() of the last answer; None: none yet

    def mark(self) -> None:
        self.last = time.monotonic()


ANSWERS = AnswerClock()


def read_answer(prompt: str = "") -> str:
    """`input()` that records when the answer came (ANSWERS); EOFError passes through."""
    line = input(prompt)
    ANSWERS.mark()
    return line


def use_color(stream: TextIO | None = None) -> bool:
    """Colours only on a terminal, and never when NO_COLOR is set."""
    stream = sys.stdout if stream is None else stream
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _resolve_color(color: bool | None, input_fn: InputFn) -> bool:
    # Injected input functions (tests, scripts) get plain text unless colour is asked for.
    if color is None:
        return input_fn in (builtins.input, read_answer) and use_color()
    return color


def _paint(text: str, color: bool) -> str:
    if not color:
        return text
    import colorama  # only needed on a terminal

    colorama.just_fix_windows_console()
    return f"{colorama.Fore.CYAN}{text}{colorama.Style.RESET_ALL}"


def format_default(option: Option, value: Any) -> str:
    """A default as DFL shows it: bools as y/n, everything else with str()."""
    if option.type is bool:
        return "y" if value else "n"
    return str(value)


def _hint_text(option: Option) -> str | None:
    if option.type is bool:
        return "y/n"
    if option.hint is not None:
        return option.hint
    if option.choices is not None:
        return "/".join(option.choices)
    if option.range is not None and None not in option.range:
        lo, hi = option.range
        return f"{lo}-{hi}" if option.type is int else f"{lo} .. {hi}"
    return None


def prompt_text(option: Option, default: Any, *, color: bool = False) -> str:
    """The prompt line, e.g. `[128] Resolution ( 64-640 ?:help ) : `."""
    parts = [part for part in (_hint_text(option), HELP_MARK if option.help else None) if part]
    inside = f" ( {' '.join(parts)} )" if parts else ""
    shown = _paint(f"[{format_default(option, default)}]", color)
    return f"{shown} {option.label}{inside}{PROMPT_END}"


def ask_option(
    option: Option,
    default: Any,
    input_fn: InputFn = read_answer,
    print_fn: PrintFn = print,
    *,
    resolved: Mapping[str, Any] | None = None,
    color: bool | None = None,
) -> Any:
    """Ask one option until a valid answer arrives; Enter takes `default`.

    `?` prints the help; an invalid answer prints a one-line reason and asks again; rounding to a
    multiple is shown. Raises InputClosed at end of input; KeyboardInterrupt passes through.
    """
    text = prompt_text(option, default, color=_resolve_color(color, input_fn))
    while True:
        try:
            raw = input_fn(text)
        except EOFError:
            raise InputClosed from None
        answer = raw.strip()
        if answer == HELP_REQUEST:
            print_fn(option.help or NO_HELP_MESSAGE)
            continue
        if not answer:
            print_fn(format_default(option, default))
            return default
        try:
            value, note = normalize(option, answer, resolved or {})
        except OptionError as error:
            print_fn(str(error))
            continue
        if option.type is not bool:  # a typed y/n is already on screen
            print_fn(str(_echo_value(option, answer, value)))
        if note:
            print_fn(note)
        return value


def _echo_value(option: Option, answer: str, value: Any) -> Any:
    """The value echoed after an answer: the parsed number before rounding (as DFL does)."""
    if option.type in (int, float):
        try:
            return option.type(answer)
        except ValueError:
            return value
    return value


class PromptAnswerer:
    """An `answer` callback for resolve_options that prompts on the console.

    After the input closes it answers every remaining option with its default, saying so once.
    """

    def __init__(
        self,
        input_fn: InputFn = read_answer,
        print_fn: PrintFn = print,
        *,
        color: bool | None = None,
    ) -> None:
        self.input_fn = input_fn
        self.print_fn = print_fn
        self.color = color
        self.closed = False

    def __call__(self, option: Option, default: Any, resolved: Mapping[str, Any]) -> Any:
        if self.closed:
            return default
        try:
            return ask_option(
                option,
                default,
                self.input_fn,
                self.print_fn,
                resolved=resolved,
                color=self.color,
            )
        except InputClosed:
            self.closed = True
            self.print_fn(INPUT_CLOSED_MESSAGE)
            return default


def answer_from_console(
    input_fn: InputFn = read_answer, print_fn: PrintFn = print, *, color: bool | None = None
) -> PromptAnswerer:
    """A fresh console `answer` callback for resolve_options."""
    return PromptAnswerer(input_fn, print_fn, color=color)


def ask_options(
    table: Sequence[Option],
    *,
    stored: Mapping[str, Any] | None = None,
    overrides: Mapping[str, object] | None = None,
    ask_changeable: bool = False,
    input_fn: InputFn = read_answer,
    print_fn: PrintFn = print,
    color: bool | None = None,
) -> Resolved:
    """resolve_options with console prompts; the caller prints `Resolved.notes`."""
    return resolve_options(
        table,
        stored=stored,
        overrides=overrides,
        answer=answer_from_console(input_fn, print_fn, color=color),
        ask_changeable=ask_changeable,
    )


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _gate_posix(stream: TextIO, seconds: float, drain: bool) -> bool:
    import select
    import termios

    fd = stream.fileno()
    if drain:
        termios.tcflush(fd, termios.TCIFLUSH)  # keys typed before the message do not count
    ready, _, _ = select.select([fd], [], [], seconds)
    if not ready:
        return False
    stream.readline()
    return True


def _gate_windows(seconds: float, drain: bool) -> bool:
    import msvcrt

    if drain:
        while msvcrt.kbhit():
            msvcrt.getwch()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        while msvcrt.kbhit():
            if msvcrt.getwch() in ("\r", "\n"):
                return True
        time.sleep(WINDOWS_POLL_S)
    return False


def override_gate(
    seconds: float = OVERRIDE_SECONDS,
    stream: TextIO | None = None,
    print_fn: PrintFn = print,
    *,
    drain: bool = True,
) -> bool:
    """Offer DFL's "press Enter to override" window; True when a line arrives in time.

    Without a terminal it returns False at once, printing nothing (decision 10).
    """
    stream = sys.stdin if stream is None else stream
    if not _is_terminal(stream):
        return False
    print_fn(f"Press enter in {seconds:g} seconds to override model settings.")  # DFL's words
    if sys.platform == "win32":
        answered = _gate_windows(seconds, drain)
    else:
        answered = _gate_posix(stream, seconds, drain)
    if answered:
        ANSWERS.mark()
    return answered
