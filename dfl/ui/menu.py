"""The saved-model menu (choose, new, rename, delete) and the device prompt."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dfl.options import FALSE_WORDS, TRUE_WORDS
from dfl.store.workspace import (
    FORBIDDEN_CHARS,
    MAX_NAME_LENGTH,
    ModelEntry,
    WorkspaceError,
    delete_model,
    list_models,
    rename_model,
    validate_name,
)
from dfl.ui.prompts import HELP_REQUEST, read_answer

InputFn = Callable[[str], str]
PrintFn = Callable[..., None]

DEFAULT_NEW_NAME = "new"
CPU = "cpu"
MENU_HEADER = "Choose one of saved models, or enter a name to create a new model."
MENU_HEADER_SAVED_ONLY = "Choose one of saved models."  # when no new model may be made
MENU_PROMPT = " : "
RENAME_KEY = "r"
DELETE_KEY = "d"
NO_MODELS_PROMPT = f"[{DEFAULT_NEW_NAME}] No saved models found. Enter a name of a new model : "
RENAME_WHICH_PROMPT = "Enter the name of the model you want to rename : "
RENAME_NEW_PROMPT = "Enter new name of the model : "
DELETE_WHICH_PROMPT = "Enter the name of the model you want to delete : "
DFL_MODEL_SUFFIX = " - DFL model (choose it to import)"
HELP_KEY = HELP_REQUEST  # shows the menu's help, as `?` does at an option prompt
_NAME_RULES = (
    f"A name has at most {MAX_NAME_LENGTH} characters, is not all digits and has none of "
    f"{' '.join(FORBIDDEN_CHARS)}."
)
NEW_NAME_HELP = (
    f"Type a name for the new model, or press Enter for '{DEFAULT_NEW_NAME}'. {_NAME_RULES} "
    "The model is kept in the models folder as <name>_<model type>."
)
MENU_HELP = (
    f"Enter: the newest model (listed first). A number: the model with that index. "
    f"{RENAME_KEY}: rename a model. {DELETE_KEY}: delete a model. Any other text: the saved "
    f"model of that name, or a new model of that name. {_NAME_RULES}"
)
MENU_HELP_SAVED_ONLY = (
    "Enter: the newest model (listed first). A number: the model with that index. A name: "
    f"the saved model of that name. {RENAME_KEY}: rename a model. {DELETE_KEY}: delete a model."
)
DEVICE_HEADER = "Choose one or several GPU idxs (separated by comma)."
DEVICE_PROMPT = "Which GPU indexes to choose? : "


class _Retry(enum.Enum):
    ASK_AGAIN = "ask again"  # a menu answer that did not fit: the prompt comes again


class DeviceLike(Protocol):
    """What the device prompt needs of a `dfl.backend.Device`."""

    index: int
    name: str
    memory_bytes: int | None


def _read(input_fn: InputFn, prompt: str) -> str | None:
    """One stripped line, or None when the input has ended."""
    try:
        return input_fn(prompt).strip()
    except EOFError:
        return None


def _parse_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _find(models: Sequence[ModelEntry], text: str) -> ModelEntry | None:
    """A model by index or by name (exact first, then ignoring case, as Windows folders do)."""
    index = _parse_int(text)
    if index is not None:
        return models[index] if 0 <= index < len(models) else None
    for entry in models:
        if entry.name == text:
            return entry
    folded = text.casefold()
    return next((entry for entry in models if entry.name.casefold() == folded), None)


def _find_name(names: Sequence[str], text: str) -> str | None:
    """A name from `names`: exact first, then ignoring case."""
    if text in names:
        return text
    return next((name for name in names if name.casefold() == text.casefold()), None)


def _confirm(question: str, input_fn: InputFn, print_fn: PrintFn, default: bool = False) -> bool:
    """A y/n question that takes `default` (no unless told) on Enter or when the input has ended."""
    while True:
        answer = _read(input_fn, f"[{'y' if default else 'n'}] {question} ( y/n ) : ")
        if not answer:
            return default
        if answer.lower() in TRUE_WORDS:
            return True
        if answer.lower() in FALSE_WORDS:
            return False
        print_fn("Answer y or n.")


def _ask_new_name(input_fn: InputFn, print_fn: PrintFn) -> str:
    while True:
        answer = _read(input_fn, NO_MODELS_PROMPT)
        if answer is None:
            print_fn(f"input closed: using the name {DEFAULT_NEW_NAME!r}")
            return DEFAULT_NEW_NAME
        if answer == HELP_KEY:
            print_fn(NEW_NAME_HELP)
            continue
        name = answer or DEFAULT_NEW_NAME
        reason = validate_name(name)
        if reason is None:
            return name
        print_fn(reason)


def _pick(
    prompt: str,
    model_type: str,
    models: Sequence[ModelEntry],
    input_fn: InputFn,
    print_fn: PrintFn,
) -> ModelEntry | None:
    """The listed model the user names for rename or delete; None if none (said why)."""
    which = _read(input_fn, prompt)
    if not which:
        return None
    entry = _find(models, which)
    if entry is None:
        print_fn(f"No saved {model_type} model {which!r}.")
    return entry


def _rename(
    model_dir: Path | str,
    model_type: str,
    models: Sequence[ModelEntry],
    input_fn: InputFn,
    print_fn: PrintFn,
) -> None:
    entry = _pick(RENAME_WHICH_PROMPT, model_type, models, input_fn, print_fn)
    if entry is None:
        return
    while True:
        new = _read(input_fn, RENAME_NEW_PROMPT)
        if not new:
            print_fn("Rename cancelled.")
            return
        other = _find(models, new) if _parse_int(new) is None else None
        if new == entry.name:
            reason: str | None = f"the model is already called {new!r}"
        elif other is not None and other is not entry:
            reason = f"a {model_type} model named {other.name!r} already exists"
        else:
            reason = validate_name(new)
        if reason is None:
            try:
                rename_model(model_dir, model_type, entry.name, new)
            except WorkspaceError as error:
                reason = str(error)
        if reason is None:
            print_fn(f"Renamed {entry.name!r} to {new!r}.")
            return
        print_fn(reason)


def _delete(
    model_dir: Path | str,
    model_type: str,
    models: Sequence[ModelEntry],
    input_fn: InputFn,
    print_fn: PrintFn,
) -> None:
    entry = _pick(DELETE_WHICH_PROMPT, model_type, models, input_fn, print_fn)
    if entry is None:
        return
    if not _confirm(f"Delete model '{entry.name}' and all its backups?", input_fn, print_fn):
        print_fn("Nothing deleted.")
        return
    try:
        delete_model(model_dir, model_type, entry.name)
    except WorkspaceError as error:
        print_fn(str(error))
        return
    print_fn(f"Deleted {entry.name!r}.")


def _print_menu(models: Sequence[ModelEntry], print_fn: PrintFn, header: str) -> None:
    print_fn(header)
    print_fn(f"[{RENAME_KEY}] : rename")
    print_fn(f"[{DELETE_KEY}] : delete")
    print_fn("")
    for index, entry in enumerate(models):
        print_fn(f"[{index}] : {entry.name}" + (" - latest" if index == 0 else ""))


def choose_model(
    model_dir: Path | str,
    model_type: str,
    input_fn: InputFn = read_answer,
    print_fn: PrintFn = print,
    *,
    allow_new: bool = True,
    dfl_models: Callable[[], Sequence[str]] | None = None,
) -> str:
    """DFL's saved-model menu; returns the chosen name (an existing model or a new one).

    Enter = newest; a number = that index; `r` / `d` = rename / delete; other text = a model
    name. Invalid answers re-ask with a reason; at end of input the newest model (or "new") is
    taken and the user told so. With allow_new=False (export) only saved models are accepted,
    and WorkspaceError is raised when there are none.

    `dfl_models` lists DeepFaceLab models that can be imported; they are shown after the saved
    models, and choosing one asks whether to import it (default yes): yes returns its name.
    """
    while True:
        menu = _Menu(
            model_dir,
            model_type,
            models=list_models(model_dir, model_type),
            dfl=list(dfl_models()) if dfl_models is not None else [],
            allow_new=allow_new,
            input_fn=input_fn,
            print_fn=print_fn,
        )
        if not menu.models and not menu.dfl:
            if not allow_new:
                raise WorkspaceError(f"no saved {model_type} models in {model_dir}")
            return _ask_new_name(input_fn, print_fn)
        menu.show()
        chosen = menu.ask()
        if chosen is not None:
            return chosen


@dataclass
class _Menu:
    """One showing of the saved-model menu: its list and how an answer is read."""

    model_dir: Path | str
    model_type: str
    models: Sequence[ModelEntry]
    dfl: Sequence[str]  # importable DFL model names, listed after the saved models
    allow_new: bool
    input_fn: InputFn
    print_fn: PrintFn

    def show(self) -> None:
        _print_menu(
            self.models, self.print_fn, MENU_HEADER if self.allow_new else MENU_HEADER_SAVED_ONLY
        )
        for offset, dfl_name in enumerate(self.dfl):
            self.print_fn(f"[{len(self.models) + offset}] : {dfl_name}{DFL_MODEL_SUFFIX}")

    def ask(self) -> str | None:
        """The chosen name, or None to list the models again (after r, d or a declined import)."""
        while True:
            answer = _read(self.input_fn, MENU_PROMPT)
            if answer is None and self.models:
                self.print_fn(f"input closed: using the newest model {self.models[0].name!r}")
                return self.models[0].name
            if not answer:
                if self.models:
                    return self.models[0].name
                answer = "0"  # only DFL models are listed: the first one is offered
            if answer == HELP_KEY:
                self.print_fn(MENU_HELP if self.allow_new else MENU_HELP_SAVED_ONLY)
                continue
            if answer in (RENAME_KEY, DELETE_KEY):
                flow = _rename if answer == RENAME_KEY else _delete
                flow(self.model_dir, self.model_type, self.models, self.input_fn, self.print_fn)
                return None
            outcome = self._pick(answer)
            if not isinstance(outcome, _Retry):
                return outcome

    def _pick(self, answer: str) -> str | _Retry | None:
        """A saved model, a DFL model to import (None: declined, list again), a new name, or
        _Retry.ASK_AGAIN after saying why the answer does not fit."""
        index = _parse_int(answer)
        if index is not None and 0 <= index < len(self.models):
            return self.models[index].name
        if index is not None and not 0 <= index - len(self.models) < len(self.dfl):
            last = len(self.models) + len(self.dfl) - 1
            self.print_fn(f"No model [{index}]: enter an index from 0 to {last}.")
            return _Retry.ASK_AGAIN
        entry = _find(self.models, answer) if index is None else None
        if entry is not None:
            return entry.name
        if index is not None:
            picked: str | None = self.dfl[index - len(self.models)]
        else:
            picked = _find_name(self.dfl, answer)
        if picked is not None:
            question = f"Import DFL model '{picked}'?"
            if _confirm(question, self.input_fn, self.print_fn, default=True):
                return picked
            self.print_fn("Not imported.")
            return None
        if not self.allow_new:
            self.print_fn(f"No saved {self.model_type} model {answer!r}.")
            return _Retry.ASK_AGAIN
        reason = validate_name(answer)
        if reason is None:
            return answer
        self.print_fn(reason)
        return _Retry.ASK_AGAIN


def suggest_devices(devices: Sequence[DeviceLike]) -> str:
    """All GPUs named like the one with the most memory (identical cards go together)."""
    if not devices:
        return CPU
    best = max(devices, key=lambda device: device.memory_bytes or 0)
    return ",".join(str(device.index) for device in devices if device.name == best.name)


def parse_device_choice(text: str, devices: Sequence[DeviceLike]) -> str:
    """Normalise `cpu` or a comma list of GPU indexes to "cpu" / "0,1"; ValueError says why."""
    text = text.strip()
    if text.lower() == CPU:
        return CPU
    try:
        indexes = {int(part) for part in text.split(",")}
    except ValueError:
        raise ValueError(
            f"{text!r} is neither cpu nor a comma-separated list of GPU indexes"
        ) from None
    known = {device.index for device in devices}
    unknown = sorted(indexes - known)
    if unknown:
        missing = ", ".join(str(index) for index in unknown)
        if not known:
            raise ValueError(f"no GPU with index {missing}: this machine has no GPU, only cpu")
        valid = ", ".join(str(index) for index in sorted(known))
        raise ValueError(f"no GPU with index {missing}; choose from {valid} or cpu")
    return ",".join(str(index) for index in sorted(indexes))


def choose_device(
    devices: Sequence[DeviceLike],
    default: str | None = None,
    input_fn: InputFn = read_answer,
    print_fn: PrintFn = print,
) -> str:
    """DFL's device prompt; returns "cpu" or GPU indexes like "0,1".

    Without GPUs it returns "cpu" without asking. The default is `default` (the model's last
    choice) while it is still valid, else the suggested GPUs.
    """
    if not devices:
        return CPU
    try:
        chosen = parse_device_choice(default, devices) if default else suggest_devices(devices)
    except ValueError:
        chosen = suggest_devices(devices)
    print_fn("")
    print_fn(DEVICE_HEADER)
    print_fn("")
    print_fn(f"[{CPU.upper()}] : {CPU.upper()}")
    for device in devices:
        print_fn(f"  [{device.index}] : {device.name}")
    print_fn("")
    while True:
        answer = _read(input_fn, f"[{chosen}] {DEVICE_PROMPT}")
        if answer is None:
            print_fn(f"input closed: using {chosen}")
            return chosen
        if not answer:
            return chosen
        try:
            return parse_device_choice(answer, devices)
        except ValueError as error:
            print_fn(str(error))
