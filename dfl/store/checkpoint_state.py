"""What state.json holds: the schema-versioned ModelState, its validation and migrations."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from dfl import __version__

SCHEMA_VERSION = 2
STATE_FILE = "state.json"

_DEVICE = re.compile(r"^(cpu|\d+(,\d+)*)$")


def _add_facesets(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 2 records the facesets a model was trained on; schema-1 states knew none."""
    return {**data, "facesets": {}}


# MIGRATIONS[n] turns a schema-n state dict into a schema-(n + 1) one.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _add_facesets}


class StateError(Exception):
    """A model folder or its state cannot be used; the message says why and what to do."""


def now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def _check_plain(value: Any, where: str) -> None:
    """Options must be JSON-plain so they round-trip exactly."""
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise StateError(f"{where} is {value}, which cannot be stored")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise StateError(f"{where} has a non-string key {key!r}")
            _check_plain(item, f"{where}.{key}")
        return
    raise StateError(f"{where} is a {type(value).__name__}; only JSON values can be stored")


def _check_iso(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise StateError(f"{where} must be an ISO date string, got {value!r}")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise StateError(f"{where} is not an ISO date: {value!r}") from None


@dataclass
class ModelState:
    """What state.json holds: everything except arrays needed to resume a model."""

    model_type: str
    name: str
    iteration: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    device: str | None = None  # "cpu", "0" or "0,1"; None = not chosen yet
    backend: str = "tensorflow"
    created_with: str = __version__
    created_at: str = field(default_factory=now_iso)
    saved_at: str | None = None
    facesets: dict[str, Any] = field(default_factory=dict)  # dfl.data.facesetid.identities(...)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for key in ("model_type", "name", "backend", "created_with"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value:
                raise StateError(f"state field {key!r} must be a non-empty string, got {value!r}")
        if isinstance(self.iteration, bool) or not isinstance(self.iteration, int):
            raise StateError(f"state field 'iteration' must be an integer, got {self.iteration!r}")
        if self.iteration < 0:
            raise StateError(f"state field 'iteration' must be >= 0, got {self.iteration}")
        if not isinstance(self.options, dict):
            raise StateError(f"state field 'options' must be a dict, got {self.options!r}")
        _check_plain(self.options, "options")
        if not isinstance(self.facesets, dict):
            raise StateError(f"state field 'facesets' must be a dict, got {self.facesets!r}")
        _check_plain(self.facesets, "facesets")
        if self.device is not None and (
            not isinstance(self.device, str) or not _DEVICE.match(self.device)
        ):
            raise StateError(
                f"state field 'device' must be 'cpu', GPU indexes like '0,1', or null; "
                f"got {self.device!r}"
            )
        _check_iso(self.created_at, "state field 'created_at'")
        if self.saved_at is not None:
            _check_iso(self.saved_at, "state field 'saved_at'")
        if self.schema_version != SCHEMA_VERSION:
            raise StateError(
                f"state schema_version must be {SCHEMA_VERSION}, got {self.schema_version!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {"schema_version": data.pop("schema_version"), **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any, source: str = STATE_FILE) -> ModelState:
        if not isinstance(data, dict):
            raise StateError(f"{source}: expected a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise StateError(f"{source}: missing or invalid schema_version {version!r}")
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{source} was made by a newer dfl (state schema {version}; this dfl reads up "
                f"to {SCHEMA_VERSION}); update dfl to use this model"
            )
        data = dict(data)
        while version < SCHEMA_VERSION:
            migrate = MIGRATIONS.get(version)
            if migrate is None:
                raise StateError(f"{source}: no migration from state schema {version}")
            data = dict(migrate(data))
            version += 1
            data["schema_version"] = version
        names = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(names - data.keys())
        if missing:
            raise StateError(f"{source}: missing field(s) {', '.join(missing)}")
        try:
            return cls(**{k: v for k, v in data.items() if k in names})  # unknown keys ignored
        except StateError as e:
            raise StateError(f"{source}: {e}") from None

    @classmethod
    def from_json(cls, text: str | bytes, source: str = STATE_FILE) -> ModelState:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as e:
            raise StateError(f"{source} is not valid JSON: {e}") from None
        return cls.from_dict(data, source)
