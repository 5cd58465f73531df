"""A DFL user's habits in the console and window UI: the preview-history sample question and
chooser, the from-scratch tip, the answer clock and DFL's header wording (docs/dfl-trainer.md)."""

from __future__ import annotations

import builtins
import io
import os
import queue
import threading
import time

import numpy as np

from dfl.common_options import COMMON_OPTIONS
from dfl.models.amp import options as amp_options
from dfl.models.saehd import options as saehd_options
from dfl.options import resolve_options
from dfl.training.events import ChooseSample, Command, Started, Stopped
from dfl.training.preview import HEADER_LINE_1, HEADER_LINE_2
from dfl.ui import prompts
from dfl.ui.history_sample import CHOOSER_TITLE, HistorySampleQuestion
from dfl.ui.prompts import ANSWERS, PromptAnswerer, override_gate, read_answer
from dfl.ui.session import KEY_HELP, TrainingSession
from dfl.ui.train_options import FROM_SCRATCH_TIP, new_model_tips
from tests.console_fakes import Output, Script, posix_only

CHOOSE_PROMPT = "[n] Choose image for the preview history ( y/n ?:help ) : "


def _ask(window_possible: bool, *lines: str) -> tuple[HistorySampleQuestion, Script]:
    script = Script(*lines)
    question = HistorySampleQuestion(
        PromptAnswerer(script, Output()), window_possible=window_possible
    )
    resolve_options(COMMON_OPTIONS, answer=question)
    return question, script


def _history_prompts(script: Script) -> list[str]:
    return [p for p in script.prompts if "preview history" in p]


def test_choose_question_follows_write_preview_history_yes() -> None:
    # Enter for every option except "Write preview history" (y) and the question (y)
    answers = ["y" if "Write preview history" in o.label else "" for o in COMMON_OPTIONS]
    index = next(i for i, o in enumerate(COMMON_OPTIONS) if o.name == "write_preview_history")
    lines = [*answers[: index + 1], "y", *answers[index + 1 :]]
    question, script = _ask(True, *lines)
    asked = _history_prompts(script)
    assert asked[0].endswith("Write preview history ( y/n ?:help ) : ")
    assert asked[1] == CHOOSE_PROMPT  # DFL asks it right after
    assert question.choose


def test_choose_question_not_asked_without_history_or_window() -> None:
    question, script = _ask(True, *[""] * len(COMMON_OPTIONS))  # history n (default)
    assert CHOOSE_PROMPT not in script.prompts and not question.choose
    lines = ["y" if "Write preview history" in o.label else "" for o in COMMON_OPTIONS]
    question, script = _ask(False, *lines)  # --no-preview: nowhere to show candidates
    assert CHOOSE_PROMPT not in script.prompts and not question.choose


def test_from_scratch_tip_only_for_a_pretrainable_model_not_pretraining() -> None:
    saehd = tuple(saehd_options.option_table(None))
    assert new_model_tips(saehd, {"pretrain": False}) == (FROM_SCRATCH_TIP,)
    assert new_model_tips(saehd, {"pretrain": True}) == ()
    assert new_model_tips(tuple(amp_options.option_table(None)), {}) == ()  # no pretrain


def test_answers_are_clocked(monkeypatch) -> None:
    monkeypatch.setattr(builtins, "input", lambda prompt="": "typed")
    ANSWERS.last = None
    before = time.monotonic()
    assert read_answer("? ") == "typed"
    assert ANSWERS.last is not None and ANSWERS.last >= before
    assert prompts.ask_option.__defaults__[0] is read_answer  # the prompts use it


@posix_only
def test_override_gate_answer_is_clocked(pty_stream) -> None:
    master, stream = pty_stream
    ANSWERS.last = None
    timer = threading.Timer(0.05, os.write, (master, b"\n"))
    timer.start()
    try:
        assert override_gate(2.0, stream, Output()) is True
    finally:
        timer.join()
    assert ANSWERS.last is not None


def test_dfl_header_wording() -> None:
    assert HEADER_LINE_1 == "[s]:save [b]:backup [enter]:exit"
    assert HEADER_LINE_2 == "[p]:update [space]:next preview [l]:change history range"
    assert "[enter]:exit" in KEY_HELP


class FakeRunner:
    def __init__(self) -> None:
        self.events: queue.Queue = queue.Queue()
        self.sent: list[Command] = []

    def send(self, command: Command) -> None:
        self.sent.append(command)
        if command is Command.REFRESH_PREVIEW:  # the next candidate
            self.events.put(ChooseSample(_pages(2)))
        elif command is Command.CONFIRM_SAMPLE:
            self.events.put(Stopped(0, True))


class FakeWindow:
    """Stands in for PreviewWindow: records images, answers scripted keys."""

    def __init__(self, title: str, keys: list[list[Command]], log: list) -> None:
        self.title = title
        self.keys = keys
        self.log = log
        log.append(("open", title))

    def show(self, image: np.ndarray) -> None:
        self.log.append(("show", int(image[0, 0, 0])))

    def poll(self, ms: int) -> list[Command]:
        time.sleep(ms / 1000)
        return self.keys.pop(0) if self.keys else []

    def close(self) -> None:
        self.log.append(("close", self.title))


def _pages(candidate: int) -> tuple[tuple[str, np.ndarray], ...]:
    """Two pages; pixel value = candidate * 10 + page."""
    return tuple((f"page {i}", np.full((4, 4, 3), candidate * 10 + i, np.uint8)) for i in range(2))


def test_session_runs_the_chooser_window() -> None:
    runner = FakeRunner()
    runner.events.put(Started(0, "Starting."))
    runner.events.put(ChooseSample(_pages(1)))
    log: list = []
    out = io.StringIO()
    keys = [[], [Command.REFRESH_PREVIEW], [], [Command.NEXT_PAGE], [Command.SAVE_AND_EXIT]]
    session = TrainingSession(
        runner,  # type: ignore[arg-type]
        window=None,
        out=out,
        make_window=lambda title: FakeWindow(title, keys, log),
    )
    result = session.run()
    assert result.error is None
    assert runner.sent == [Command.REFRESH_PREVIEW, Command.CONFIRM_SAMPLE]  # Enter confirms
    # candidate 1, then candidate 2 on the same page, then Space: its second page
    shown = [("show", 10), ("show", 20), ("show", 21)]
    assert log == [("open", CHOOSER_TITLE), *shown, ("close", CHOOSER_TITLE)]
    assert "Choose image for the preview history." in out.getvalue()
