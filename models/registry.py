"""The models the trainer knows, by name, imported lazily."""

from __future__ import annotations

import importlib
from types import ModuleType

# Model name (as users and DFL know it) -> module implementing the model contract (docs/design.md).
MODELS: dict[str, str] = {
    "SAEHD": "dfl.models.saehd.model",
    "AMP": "dfl.models.amp.model",
    "Quick96": "dfl.models.quick96.model",
}
AVAILABLE: tuple[str, ...] = ("SAEHD", "AMP", "Quick96")


class UnknownModelError(ValueError):
    pass


def canonical_name(name: str) -> str:
    """Return the registered spelling of a model name given in any case."""
    for known in MODELS:
        if known.lower() == name.strip().lower():
            return known
    raise UnknownModelError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")


def check_available(name: str) -> str:
    """The registered name, or UnknownModelError when that model cannot be trained yet."""
    name = canonical_name(name)
    if name not in AVAILABLE:
        raise UnknownModelError(
            f"{name} is not available yet in this version of dfl; "
            f"{', '.join(AVAILABLE)} are ready to train."
        )
    return name


def load(name: str) -> ModuleType:
    """Import the module of model `name` (any case); this imports Keras."""
    return importlib.import_module(MODELS[check_available(name)])
