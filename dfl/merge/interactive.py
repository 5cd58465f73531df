"""The interactive merger's state, without a window: which frame is current, each frame's
settings, which frames are merged with their settings, and what a key does.

Facts (DFL's merger/InteractiveMergerSubprocessor.py and MergerConfig.py; docs/merge-run.md
"The interactive merger"): only the current frame's settings change with a key; moving forward
gives a frame without settings a copy of the frame just left (`/` overrides the next frame's
settings, `?` clears them for every later frame so each picks up its predecessor's); `m` and `M`
carry the settings backwards; navigation acts only once the current frame is merged. Keys are
characters as typed: an upper-case letter, `<`, `>` and `?` mean Shift. dfl behaves like DFL run
with one worker: a frame gets its settings when it becomes current (or enters the batch that
process-remaining merges).

The state is saved as JSON in the model's merge session (dfl.merge.session): per frame name its
settings and, when merged, the fingerprint of its inputs (dfl.merge.resume.fingerprint).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dfl.merge import settings as ms
from dfl.merge.settings import MergeSettings
from dfl.options import OptionError

SCHEMA = 1
TAB, ESC = "\t", "\x1b"
MODE_KEYS = {"`": 0, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "6": 6}  # DFL's mode numbers
# key -> (setting, direction); Shift (the upper-case letter) steps by KEY_STEP_SHIFT
AMOUNT_KEYS: dict[str, tuple[str, int]] = {
    "q": ("hist_match_threshold", 1),
    "a": ("hist_match_threshold", -1),
    "w": ("erode_mask_modifier", 1),
    "s": ("erode_mask_modifier", -1),
    "e": ("blur_mask_modifier", 1),
    "d": ("blur_mask_modifier", -1),
    "r": ("motion_blur_power", 1),
    "f": ("motion_blur_power", -1),
    "y": ("blur_sharpen_amount", 1),
    "h": ("blur_sharpen_amount", -1),
    "u": ("output_face_scale", 1),
    "j": ("output_face_scale", -1),
    "i": ("image_denoise_power", 1),
    "k": ("image_denoise_power", -1),
    "o": ("bicubic_degrade_power", 1),
    "l": ("bicubic_degrade_power", -1),
    "p": ("color_degrade_power", 1),
    ";": ("color_degrade_power", -1),
}
SHIFTED_AMOUNT_KEYS = {":": ";"}  # DFL: `:` is colour degrade -5 (there is no Shift+; otherwise)
CYCLE_KEYS: dict[str, Callable[[MergeSettings], MergeSettings]] = {
    "z": ms.toggle_masked_hist_match,
    "x": ms.cycle_mask_mode,
    "c": ms.cycle_color_transfer,
    "n": ms.cycle_sharpen_mode,
}
UNUSED_KEYS = frozenset("tg")  # DFL's super resolution power: needs a network dfl does not ship
SUPER_RESOLUTION_NOTE = "t/g (super resolution) need a network dfl does not ship: not available."
SHIFTED = {"<": ",", ">": ".", "?": "/"}
ZOOM_KEYS = {"-": -1, "=": 1}
CHECKERBOARD_KEY = "v"  # DFL: show a checkerboard where the merged face's mask is not


@dataclass
class KeyResult:
    """What a key did, for the window to react."""

    changed: bool = False  # the current frame's settings changed
    moved: bool = False  # another frame is current
    zoom: int = 0  # -1 / +1: zoom out / in
    note: str | None = None  # a line to tell the user


@dataclass
class RestoreReport:
    resumed: int = 0  # frames already merged by the saved session and kept
    restarted: bool = False  # the model changed: every frame is merged again
    notes: list[str] = field(default_factory=list)


def _decode(key: str) -> tuple[str, bool]:
    """(base key, shift) of a typed character."""
    if key in SHIFTED:
        return SHIFTED[key], True
    if key in SHIFTED_AMOUNT_KEYS:
        return SHIFTED_AMOUNT_KEYS[key], True
    if len(key) == 1 and key.isalpha() and key.isupper():
        return key.lower(), True
    return key, False


class MergeController:
    """The interactive merger's frames, settings and position (DFL's frame processor state)."""

    def __init__(self, names: Sequence[str], start: MergeSettings) -> None:
        if not names:
            raise ValueError("the interactive merger needs at least one frame")
        self.names = list(names)
        self.start = start
        self.settings: list[MergeSettings | None] = [start] + [None] * (len(names) - 1)
        self.merged: dict[int, MergeSettings] = {}  # frame -> the settings its files were made with
        self.failed: dict[int, str] = {}  # frame -> why it cannot be merged
        self.index = 0
        self.process_remaining = False
        self.show_help = True  # DFL shows the key chart first
        self.show_checkerboard = False  # `v`: the mask's outside as a checkerboard
        self.quitting = False

    # ------------------------------------------------------------------ queries
    @property
    def count(self) -> int:
        return len(self.names)

    @property
    def current(self) -> MergeSettings:
        settings = self.settings[self.index]
        assert settings is not None  # the current frame always has settings
        return settings

    def is_done(self, i: int) -> bool:
        """Merged with its present settings (or known to fail: nothing more to do)."""
        return i in self.failed or (i in self.merged and self.merged[i] == self.settings[i])

    @property
    def done_count(self) -> int:
        return sum(1 for i in range(self.count) if i in self.merged and self.is_done(i))

    def mark_merged(self, i: int, settings: MergeSettings) -> None:
        """Frame i's files were written with `settings`."""
        self.failed.pop(i, None)
        self.merged[i] = settings

    def mark_failed(self, i: int, reason: str) -> None:
        self.failed[i] = reason

    def batch(self, size: int) -> list[int]:
        """Process-remaining: the next `size` frames from the current one, each given its
        predecessor's settings when it has none (DFL's prefetch window)."""
        end = min(self.count, self.index + max(1, size))
        for i in range(self.index + 1, end):
            if self.settings[i] is None:
                self.settings[i] = self.settings[i - 1]
        return list(range(self.index, end))

    # ------------------------------------------------------------------ keys
    def press(self, key: str) -> KeyResult:
        """Apply one typed key (a character; Tab and Esc as '\\t' and '\\x1b')."""
        if key == TAB:
            self.show_help = not self.show_help
            return KeyResult()
        if key == ESC:
            self.quitting = True
            return KeyResult()
        if self.show_help:
            return KeyResult()  # DFL: the other keys act on the main screen only
        base, shift = _decode(key)
        if base in ZOOM_KEYS:
            return KeyResult(zoom=ZOOM_KEYS[base])
        if base == CHECKERBOARD_KEY:
            self.show_checkerboard = not self.show_checkerboard
            return KeyResult()
        if base in MODE_KEYS or base in AMOUNT_KEYS or base in CYCLE_KEYS or base in UNUSED_KEYS:
            return self._settings_key(key, base, shift)
        if base in (",", "m"):
            self.process_remaining = False
            return KeyResult(moved=self.back(first=shift, carry=base == "m"))
        if base in (".", "/"):
            self.process_remaining = False
            if base == "." and shift:
                self.process_remaining = True
                return KeyResult(moved=self.forward())
            carry = "last" if base == "/" and shift else "next" if base == "/" else None
            return KeyResult(moved=self.forward(carry))
        return KeyResult()

    def _settings_key(self, key: str, base: str, shift: bool) -> KeyResult:
        self.process_remaining = False  # DFL: any settings key stops process-remaining
        before = self.current
        if base in UNUSED_KEYS:
            return KeyResult(note=SUPER_RESOLUTION_NOTE)
        if base in MODE_KEYS:
            after = before if key != base else ms.with_mode(before, MODE_KEYS[base])
        elif base in AMOUNT_KEYS:
            name, sign = AMOUNT_KEYS[base]
            amount = ms.KEY_STEP_SHIFT if shift else ms.KEY_STEP
            after = ms.step(before, name, sign * amount)
        else:
            after = before if shift else CYCLE_KEYS[base](before)
        self.settings[self.index] = after
        return KeyResult(changed=after != before)

    # ------------------------------------------------------------------ navigation
    def _can_move(self) -> bool:
        return self.is_done(self.index)  # DFL: only once the current frame is merged

    def back(self, *, first: bool = False, carry: bool = False) -> bool:
        """`,` (first: `<`) and `m` (first: `M`): one frame back, or back to the first frame;
        with carry each frame passed gets the current settings."""
        if not self._can_move() or self.index == 0:
            return False
        current = self.current
        target = 0 if first else self.index - 1
        for i in range(self.index - 1, target - 1, -1):
            if carry or self.settings[i] is None:
                self.settings[i] = current
        self.index = target
        return True

    def forward(self, carry: str | None = None) -> bool:
        """`.` (and each process-remaining step); carry "next" (`/`) gives the next frame the
        current settings, "last" (`?`) also clears every later frame's settings so that each
        takes its predecessor's when reached. At the end process-remaining switches off."""
        if not self._can_move() or self.index >= self.count - 1:
            if self.index >= self.count - 1 and self._can_move():
                self.process_remaining = False
            return False
        if carry == "last":
            for i in range(self.index + 1, self.count):
                self.settings[i] = None
        nxt = self.index + 1
        if carry is not None or self.settings[nxt] is None:
            self.settings[nxt] = self.current
        self.index = nxt
        return True

    # ------------------------------------------------------------------ session (JSON)
    def to_json(self, model_key: Mapping[str, Any], fingerprints: Sequence[str]) -> dict[str, Any]:
        """The state to keep with the model: settings and merged fingerprint per frame name."""
        frames = {}
        for i, name in enumerate(self.names):
            s = self.settings[i]
            merged = i in self.merged and self.is_done(i)
            frames[name] = {
                "settings": s.to_json() if s is not None else None,
                "merged": fingerprints[i] if merged else None,
            }
        return {
            "schema": SCHEMA,
            "model": dict(model_key),
            "current": self.names[self.index],
            "frames": frames,
        }

    def restore(
        self,
        data: Mapping[str, Any],
        model_key: Mapping[str, Any],
        fingerprints: Sequence[str],
        outputs_exist: Callable[[int], bool],
    ) -> RestoreReport:
        """Take over a saved state: settings by frame name; merged frames stay merged when the
        model state is the same, their inputs unchanged and their files present. The current
        frame becomes the saved one, or the first frame still to merge when that comes earlier
        (all merged: the first frame, as DFL)."""
        report = RestoreReport()
        frames = data.get("frames") if data.get("schema") == SCHEMA else None
        if not isinstance(frames, Mapping):
            return report
        same_model = data.get("model") == _json_round_trip(model_key)
        report.restarted = not same_model
        for i, name in enumerate(self.names):
            entry = frames.get(name)
            if not isinstance(entry, Mapping) or entry.get("settings") is None:
                continue
            try:
                self.settings[i] = MergeSettings.from_json(entry["settings"])
            except OptionError as exc:
                report.notes.append(f"{name}: saved settings not used ({exc})")
                continue
            if same_model and entry.get("merged") == fingerprints[i] and outputs_exist(i):
                self.merged[i] = self.settings[i]  # type: ignore[assignment]
                report.resumed += 1
        saved = self.names.index(data["current"]) if data.get("current") in self.names else 0
        todo = [i for i in range(self.count) if not self.is_done(i)]
        self.index = min(saved, todo[0]) if todo else 0
        self._give_settings(self.index)
        return report

    def _give_settings(self, i: int) -> None:
        """A frame without settings takes those of the nearest earlier frame that has some."""
        if self.settings[i] is not None:
            return
        earlier = [s for s in self.settings[:i] if s is not None]
        self.settings[i] = earlier[-1] if earlier else self.start


def _json_round_trip(value: Mapping[str, Any]) -> Any:
    return json.loads(json.dumps(dict(value)))


def start_settings(overrides: Mapping[str, str]) -> MergeSettings:
    """The first frame's settings: DFL's interactive defaults, with any `--opt` setting applied
    (OptionError for a bad value)."""
    names = set(MergeSettings().to_json())
    given = {k: v for k, v in overrides.items() if k in names}
    return ms.settings_from_options({k: ms.parse_value(k, v) for k, v in given.items()})
