"""The models dfl knows: every list of model names comes from here.

Adding a model: its package `models/<name>/` with `model.py` exposing `SPEC: ModelSpec`
(models/contract.py), and one entry below. Listing names imports nothing heavy; `load(name)`
imports the model's package, and with it Keras.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from dfl.models.contract import ModelSpec


@dataclass(frozen=True)
class Entry:
    module: str  # the module whose SPEC is the model
    about: str  # one line for the model prompt
    from_dfl: bool = True  # DeepFaceLab has this model: its files can be imported


# Model name (as users and DFL know it) -> its entry; the order of the model prompt.
MODELS: dict[str, Entry] = {
    "SAEHD": Entry("dfl.models.saehd.model", "high quality, many options"),
    "AMP": Entry("dfl.models.amp.model", "for real-time use in DeepFaceLive"),
    "Quick96": Entry("dfl.models.quick96.model", "96 px, no questions, a fast start"),
}
DEFAULT_MODEL = "Quick96"
MODEL_NAMES = ", ".join(MODELS)  # for help texts: "SAEHD, AMP, Quick96"
# The models DeepFaceLab saves (`<name>_<Model>_data.dat`), in MODELS order.
DFL_MODELS: tuple[str, ...] = tuple(name for name, entry in MODELS.items() if entry.from_dfl)


class UnknownModelError(ValueError):
    pass


def canonical_name(name: str) -> str:
    """Return the registered spelling of a model name given in any case."""
    for known in MODELS:
        if known.lower() == name.strip().lower():
            return known
    raise UnknownModelError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")


def about() -> str:
    """One line per model for the model prompt's help: `SAEHD: high quality, ...`."""
    return " ".join(f"{name}: {entry.about}." for name, entry in MODELS.items())


def load(name: str) -> ModelSpec:
    """The contract of model `name` (any case); this imports the model's package and Keras."""
    module = importlib.import_module(MODELS[canonical_name(name)].module)
    spec = module.SPEC
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"{module.__name__}.SPEC is not a ModelSpec")
    return spec
