"""Checkpoint manifests: writing them, and verifying a checkpoint or backup folder against one."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dfl.store.checkpoint_state import STATE_FILE, ModelState, StateError, now_iso
from dfl.store.fsutil import sha256_file

MANIFEST_VERSION = 1
MANIFEST_FORMAT = "dfl-checkpoint"
MANIFEST_FILE = "manifest.json"

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")  # a file a manifest may list
HOW_OPTIONS_CHANGE = (
    "Options are changed with `dfl train --override` (asks the changeable options again) or "
    "`dfl train --opt name=value`, not by editing state.json"
)


class Rejected(Exception):
    """A checkpoint or backup folder that cannot be used, and why."""

    def __init__(self, kind: str, reason: str, edited: ModelState | None = None) -> None:
        super().__init__(reason)
        self.kind = kind  # "incomplete", "damaged" or "edited"
        self.reason = reason
        self.edited = edited  # kind "edited": the state.json as edited (it still parses)


@dataclass(frozen=True)
class Whole:
    """A verified checkpoint or backup folder."""

    path: Path
    label: str
    state: ModelState
    loss_rows: int
    sizes: dict[str, int]  # file name -> size, as the manifest lists them


def manifest_checksum(body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def make_manifest(iteration: int, loss_rows: int, files: list[dict[str, Any]]) -> dict[str, Any]:
    body = {
        "format": MANIFEST_FORMAT,
        "manifest_version": MANIFEST_VERSION,
        "iteration": iteration,
        "loss_rows": loss_rows,
        "written_at": now_iso(),
        "files": files,
    }
    return {**body, "checksum": manifest_checksum(body)}


def is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        raw = (folder / MANIFEST_FILE).read_bytes()
    except FileNotFoundError:
        raise Rejected("incomplete", "manifest missing") from None
    except OSError as e:
        raise Rejected("damaged", f"manifest unreadable: {e.strerror or e}") from None
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Rejected("damaged", "manifest is not valid JSON") from None
    if not isinstance(manifest, dict):
        raise Rejected("damaged", "manifest is not a JSON object")
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    if manifest.get("checksum") != manifest_checksum(body):
        raise Rejected("damaged", "manifest checksum mismatch")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise Rejected("damaged", "not a dfl checkpoint manifest")
    if manifest.get("manifest_version") != MANIFEST_VERSION:
        raise Rejected(
            "damaged",
            f"manifest version {manifest.get('manifest_version')!r}, this dfl reads "
            f"{MANIFEST_VERSION} (made by a newer dfl?)",
        )
    files = manifest.get("files")
    if not (is_count(manifest.get("iteration")) and is_count(manifest.get("loss_rows"))):
        raise Rejected("damaged", "manifest has no valid iteration or loss_rows")
    if not isinstance(files, list) or not all(
        isinstance(e, dict)
        and isinstance(e.get("name"), str)
        and SAFE_NAME.match(e["name"])
        and e["name"] != MANIFEST_FILE
        and is_count(e.get("size"))
        and isinstance(e.get("sha256"), str)
        for e in files
    ):
        raise Rejected("damaged", "manifest file list is malformed")
    return manifest


def _raise_if_state_edited(folder: Path, name: str) -> None:
    """A state.json that differs from its manifest but still reads as a state was edited by
    hand (a cut-short or corrupted one does not parse): raise Rejected("edited")."""
    if name != STATE_FILE:
        return
    try:
        edited = ModelState.from_json((folder / STATE_FILE).read_bytes())
    except (OSError, StateError):
        return
    reason = f"{STATE_FILE} was edited after saving: its checksum differs from the manifest"
    raise Rejected("edited", reason, edited)


def _show(value: Any) -> str:
    return json.dumps(value) if value is not None else "(not set)"


def describe_edit(label: str, edited: ModelState, used: Whole | None) -> str:
    """What to tell the user about a hand-edited state.json: which options the edit changed
    against the newest whole state (`used`, None when nothing loads) and how options change."""
    if used is None:
        return (
            f"{label}: {STATE_FILE} was edited after saving and no other saved state is whole. "
            f"Put the file back as it was saved to resume from it. {HOW_OPTIONS_CHANGE}."
        )
    keys = sorted(set(edited.options) | set(used.state.options))
    changed = [
        f"{key} {_show(used.state.options.get(key))} -> {_show(edited.options.get(key))}"
        for key in keys
        if edited.options.get(key) != used.state.options.get(key)
    ]
    what = f"the edit changed {', '.join(changed)}" if changed else "no option differs"
    return (
        f"{label}: {STATE_FILE} was edited after saving, so {used.label} (iteration "
        f"{used.state.iteration}) is used instead; against it {what}. {HOW_OPTIONS_CHANGE}."
    )


def verify_folder(folder: Path, label: str, *, checksums: bool) -> Whole:
    """Check a checkpoint or backup folder against its manifest, or raise Rejected."""
    if not folder.is_dir():
        raise Rejected("incomplete", "folder missing")
    manifest = read_manifest(folder)
    entries = manifest["files"]
    for entry in entries:  # sizes first: cheap, and catches most truncations
        path = folder / entry["name"]
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise Rejected("incomplete", f"{entry['name']} missing") from None
        if size != entry["size"]:
            _raise_if_state_edited(folder, entry["name"])
            raise Rejected(
                "incomplete" if size < entry["size"] else "damaged",
                f"{entry['name']} has {size} bytes, the manifest says {entry['size']}",
            )
    if checksums:
        for entry in entries:
            if sha256_file(folder / entry["name"]) != entry["sha256"]:
                _raise_if_state_edited(folder, entry["name"])
                raise Rejected("damaged", f"{entry['name']} checksum mismatch")
    names = {entry["name"] for entry in entries}
    if STATE_FILE not in names:
        raise Rejected("damaged", f"manifest lists no {STATE_FILE}")
    try:
        state = ModelState.from_json((folder / STATE_FILE).read_bytes())
    except StateError as e:
        raise Rejected("damaged", str(e)) from None
    if state.iteration != manifest["iteration"]:
        raise Rejected("damaged", f"{STATE_FILE} iteration differs from the manifest")
    return Whole(
        path=folder,
        label=label,
        state=state,
        loss_rows=manifest["loss_rows"],
        sizes={entry["name"]: entry["size"] for entry in entries},
    )
