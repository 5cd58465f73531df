"""The merger's remembered choices, kept with the model as JSON (never pickled).

DFL pickled its interactive session into `<name>_<Model>_merger_session.dat` beside the model.
Here `merger_session.json` in the model's folder holds the last non-interactive settings (offered
as the defaults next time), AMP's morph factor, and a free-form `interactive` section that the
interactive merger fills (per-frame settings and its position). It is written atomically and
durably; an unreadable or invalid file is ignored with a note (it only holds defaults).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfl.merge.settings import MergeSettings
from dfl.options import OptionError
from dfl.store.fsutil import write_json_durable

SESSION_FILE = "merger_session.json"
SCHEMA = 1


@dataclass
class MergeSession:
    """What the merger remembers for one model."""

    settings: MergeSettings | None = None  # the last non-interactive settings
    morph_factor: float | None = None  # AMP only
    workers: int | None = None
    interactive: dict[str, Any] = field(default_factory=dict)  # owned by the interactive merger
    notes: list[str] = field(default_factory=list)  # problems met while reading (not stored)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "settings": self.settings.to_json() if self.settings is not None else None,
            "morph_factor": self.morph_factor,
            "workers": self.workers,
            "interactive": self.interactive,
        }


def session_path(model_folder: Path) -> Path:
    return Path(model_folder) / SESSION_FILE


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return kind(value)


def _from_json(data: Mapping[str, Any], where: Path) -> MergeSession:
    session = MergeSession()
    if data.get("schema") != SCHEMA:
        session.notes.append(f"{where.name}: unknown schema {data.get('schema')!r}; ignored")
        return session
    if data.get("settings") is not None:
        try:
            session.settings = MergeSettings.from_json(data["settings"])
        except OptionError as exc:
            session.notes.append(f"{where.name}: remembered settings not used ({exc})")
    session.morph_factor = _number(data.get("morph_factor"), float)
    session.workers = _number(data.get("workers"), int)
    interactive = data.get("interactive")
    session.interactive = dict(interactive) if isinstance(interactive, Mapping) else {}
    return session


def load_session(model_folder: Path) -> MergeSession:
    """The remembered session of a model; an empty one when there is none or it is unusable."""
    path = session_path(model_folder)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return MergeSession()
    except (OSError, ValueError) as exc:
        return MergeSession(notes=[f"{path.name} cannot be read ({exc}); not used"])
    if not isinstance(data, Mapping):
        return MergeSession(notes=[f"{path.name} is not a JSON object; not used"])
    return _from_json(data, path)


def save_session(model_folder: Path, session: MergeSession) -> Path:
    """Write the session atomically and durably; returns its path (OSError passes through)."""
    path = session_path(model_folder)
    write_json_durable(path, session.to_json())
    return path
