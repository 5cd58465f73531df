"""Find DeepFaceLab model files in a folder: `<name>_<Class>_data.dat` and its network files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dfl.models.registry import DFL_MODELS

DATA_SUFFIX = "_data.dat"
WEIGHTS_SUFFIX = ".npy"
SUMMARY_SUFFIX = "_summary.txt"
# DFL's trainable face-swap models that dfl has (XSeg is out of scope, decision 22).
MODEL_CLASSES = DFL_MODELS


@dataclass(frozen=True)
class DflModelFiles:
    """One DFL model in a (flat, shared) DFL model folder."""

    folder: Path
    name: str
    model_class: str

    @property
    def prefix(self) -> str:
        return f"{self.name}_{self.model_class}_"

    @property
    def data_path(self) -> Path:
        return self.folder / f"{self.prefix}{DATA_SUFFIX[1:]}"

    def part_path(self, part: str) -> Path:
        """The file of one network or optimizer: `<name>_<Class>_<part>.npy`."""
        return self.folder / f"{self.prefix}{part}{WEIGHTS_SUFFIX}"

    def parts(self) -> list[str]:
        """The network and optimizer names this model has files for, sorted."""
        found = []
        for path in self.folder.iterdir():
            name = path.name
            if name.startswith(self.prefix) and name.endswith(WEIGHTS_SUFFIX) and path.is_file():
                found.append(name[len(self.prefix) : -len(WEIGHTS_SUFFIX)])
        return sorted(found)

    def paths(self) -> list[Path]:
        """Every file of this model DFL wrote and the import reads (data.dat and the .npy)."""
        return [self.data_path, *(self.part_path(p) for p in self.parts())]

    @property
    def mtime(self) -> float:
        try:
            return self.data_path.stat().st_mtime
        except OSError:
            return 0.0


def _parse(file_name: str) -> tuple[str, str] | None:
    """(name, class) of a `<name>_<Class>_data.dat` file name, or None."""
    if not file_name.endswith(DATA_SUFFIX):
        return None
    stem = file_name[: -len(DATA_SUFFIX)]
    for model_class in MODEL_CLASSES:
        suffix = f"_{model_class}"
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)], model_class
    return None


def find_dfl_models(
    folder: Path | str | os.PathLike[str], model_class: str | None = None
) -> list[DflModelFiles]:
    """DFL models in `folder` (of `model_class` if given), newest data.dat first; [] when the
    folder is missing. Names are never split on `_` (decision 16)."""
    root = Path(folder)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        parsed = _parse(path.name)
        if parsed is None or not path.is_file():
            continue
        name, cls = parsed
        if model_class is None or cls.lower() == model_class.lower():
            found.append(DflModelFiles(root, name, cls))
    found.sort(key=lambda m: (-m.mtime, m.name))
    return found


def find_dfl_model(
    folder: Path | str | os.PathLike[str], name: str, model_class: str | None = None
) -> DflModelFiles | None:
    """The DFL model called `name` (exact, then ignoring case), or None."""
    models = find_dfl_models(folder, model_class)
    exact = [m for m in models if m.name == name]
    if exact:
        return exact[0]
    folded = [m for m in models if m.name.casefold() == name.casefold()]
    return folded[0] if folded else None
