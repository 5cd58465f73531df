"""The interactive merger without a window (dfl.merge.interactive, dfl.merge.interactive_frames):
DFL's keys -> settings, navigation and carrying settings forward/back, per-frame settings saved
as JSON and resumed (restarted when the model changed), frames merged and written on demand."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dfl.merge.frames import pair_frames
from dfl.merge.interactive import ESC, TAB, MergeController, start_settings
from dfl.merge.interactive_frames import FrameMerger
from dfl.merge.masked import ModelFace, Prediction
from dfl.merge.resume import RECORD_NAME
from dfl.merge.settings import MergeSettings
from dfl.options import OptionError
from tests.merge_fixtures import FACE_PX, make_workspace

NAMES = [f"{i:05d}.png" for i in range(1, 6)]
KEY = {"model_type": "Quick96", "model": "m", "iteration": 10, "morph_factor": None}


def _controller(n: int = 5) -> MergeController:
    c = MergeController(NAMES[:n], MergeSettings())
    c.press(TAB)  # DFL starts on the help screen
    return c


def _merge_current(c: MergeController) -> None:
    c.mark_merged(c.index, c.current)


def test_settings_keys_follow_dfl() -> None:
    c = _controller()
    start = c.current
    assert c.press("3").changed and c.current.mode == "seamless"
    assert c.press("`").changed and c.current.mode == "original"
    assert not c.press("!").changed  # Shift+1: nothing (DFL)
    c.press("2")  # hist-match: the threshold keys act
    assert c.press("q").changed and c.current.hist_match_threshold == start.hist_match_threshold + 1
    c.press("A")
    assert c.current.hist_match_threshold == start.hist_match_threshold + 1 - 5
    assert c.press("z").changed and c.current.masked_hist_match is False
    c.press("1")  # overlay: threshold and masked hist match stay
    assert not c.press("q").changed and not c.press("z").changed
    c.press("W")
    c.press("w")
    c.press("e")
    c.press("r")
    c.press("R")
    c.press("y")
    c.press("j")
    c.press("i")
    c.press("o")
    c.press("P")
    c.press(";")
    c.press(":")
    s = c.current
    assert (s.erode_mask_modifier, s.blur_mask_modifier, s.motion_blur_power) == (6, 1, 6)
    assert (s.blur_sharpen_amount, s.output_face_scale) == (1, -1)
    assert (s.image_denoise_power, s.bicubic_degrade_power, s.color_degrade_power) == (1, 1, 0)
    c.press("s")  # erode -1
    assert c.current.erode_mask_modifier == 5
    for _ in range(100):
        c.press("F")
    assert c.current.motion_blur_power == 0  # clipped to the range
    assert c.press("x").changed and c.current.mask_mode == "learned-prd+learned-dst"
    c.press("x")
    assert c.current.mask_mode == "full"
    assert c.press("c").changed and c.current.color_transfer_mode == "lct"
    assert c.press("n").changed and c.current.sharpen_mode == "box"
    result = c.press("t")  # super resolution: not available, says so
    assert not result.changed and "super resolution" in (result.note or "")
    assert c.press("-").zoom == -1 and c.press("=").zoom == 1
    assert not c.show_checkerboard
    assert not c.press("v").changed and c.show_checkerboard  # a view: the settings stay
    c.press("v")
    assert not c.show_checkerboard


def test_help_screen_takes_no_keys_and_esc_quits() -> None:
    c = MergeController(NAMES, MergeSettings())
    assert c.show_help
    assert not c.press("3").changed and c.current.mode == "overlay"
    c.press(TAB)
    assert c.press("3").changed
    c.press(ESC)
    assert c.quitting


def test_navigation_waits_for_the_merge_and_carries_settings() -> None:
    c = _controller()
    c.press("3")
    assert not c.press(".").moved  # not merged yet: DFL waits
    _merge_current(c)
    assert c.press(".").moved and c.index == 1
    assert c.current.mode == "seamless"  # a frame without settings takes its predecessor's
    c.press("4")
    _merge_current(c)
    assert c.press(",").moved and c.index == 0 and c.current.mode == "seamless"  # kept its own
    assert c.is_done(0)
    c.press(".")
    assert c.current.mode == "seamless-hist-match"  # frame 1 kept its own too
    c.press("/")  # next frame gets the current settings, whatever it had
    assert c.index == 2 and c.current.mode == "seamless-hist-match"
    c.press("1")
    _merge_current(c)
    assert c.press("m").moved and c.index == 1  # back, giving frame 1 frame 2's settings
    assert c.current.mode == "overlay" and not c.is_done(1)  # must be merged again
    _merge_current(c)
    c.press("M")  # back to the first frame, every frame on the way gets the settings
    assert c.index == 0 and [s.mode for s in c.settings[:2]] == ["overlay", "overlay"]


def test_shift_slash_carries_to_every_later_frame_and_shift_comma_goes_first() -> None:
    c = _controller()
    for _ in range(3):
        _merge_current(c)
        c.press(".")
    assert c.index == 3
    assert not c.press("<").moved  # frame 3 is not merged yet
    _merge_current(c)
    c.press("<")
    assert c.index == 0
    c.press("5")
    _merge_current(c)
    c.press("?")
    assert c.index == 1 and c.current.mode == "raw-rgb"
    assert c.settings[2] is None and c.settings[3] is None  # picked up when reached
    _merge_current(c)
    c.press(".")
    assert c.current.mode == "raw-rgb"


def test_process_remaining_batches_and_stops_at_the_end_or_on_a_key() -> None:
    c = _controller()
    c.press("3")
    _merge_current(c)
    c.press(">")
    assert c.process_remaining and c.index == 1
    batch = c.batch(3)
    assert batch == [1, 2, 3] and all(c.settings[i].mode == "seamless" for i in batch)
    c.press("x")  # any settings key stops it (DFL)
    assert not c.process_remaining
    c.press(">")  # not merged: no move, but process-remaining is on
    assert c.process_remaining and c.index == 1
    while c.process_remaining:
        for i in c.batch(2):
            c.mark_merged(i, c.settings[i])
        c.forward()
    assert c.index == 4 and c.done_count == 5


def test_failed_frame_can_be_passed() -> None:
    c = _controller(2)
    c.mark_failed(0, "unreadable")
    assert c.press(".").moved and c.done_count == 0


def test_session_json_resumes_and_restarts_when_the_model_changed() -> None:
    c = _controller()
    c.press("3")
    for _ in range(3):
        _merge_current(c)
        c.press(".")
    c.press("x")
    prints = [f"fp{i}" for i in range(5)]
    data = c.to_json(KEY, prints)
    assert data["current"] == NAMES[3] and data["frames"][NAMES[4]]["settings"] is None

    again = MergeController(NAMES, MergeSettings())
    report = again.restore(data, KEY, prints, lambda i: True)
    assert report.resumed == 3 and not report.restarted
    assert again.index == 3 and again.current == c.current
    assert [again.is_done(i) for i in range(5)] == [True, True, True, False, False]

    # frame 1's output is gone: resume there (DFL rewinds to the first missing frame)
    again = MergeController(NAMES, MergeSettings())
    again.restore(data, KEY, prints, lambda i: i != 1)
    assert again.index == 1 and again.current.mode == "seamless"
    # frame 2's inputs changed (other landmarks): merged again
    again = MergeController(NAMES, MergeSettings())
    again.restore(data, KEY, [*prints[:2], "other", *prints[3:]], lambda i: True)
    assert again.index == 2

    trained = {**KEY, "iteration": 11}
    again = MergeController(NAMES, MergeSettings())
    report = again.restore(data, trained, prints, lambda i: True)
    assert report.restarted and report.resumed == 0 and again.index == 0
    assert again.current.mode == "seamless"  # the settings are kept

    bad = {**data, "frames": {NAMES[0]: {"settings": {"mode": "nope"}}}}
    report = MergeController(NAMES, MergeSettings()).restore(bad, KEY, prints, lambda i: True)
    assert report.notes and "00001.png" in report.notes[0]


def test_start_settings_from_opt() -> None:
    assert start_settings({}) == MergeSettings()
    s = start_settings({"mode": "seamless", "color_transfer_mode": "none", "workers": "2"})
    assert (s.mode, s.color_transfer_mode) == ("seamless", None)
    with pytest.raises(OptionError):
        start_settings({"mode": "bogus"})


class _Predictor:
    """The dst face back, full masks: merged = the frame in overlay without colour transfer."""

    def __init__(self) -> None:
        self.model_face = ModelFace(FACE_PX, "whole_face")
        self.batch_size = 4
        self.calls = 0

    def predict(self, faces: np.ndarray) -> list[Prediction]:
        self.calls += 1
        ones = np.ones(faces.shape[1:3], np.float32)
        return [Prediction(1.0 - f, ones, ones) for f in faces]


def test_frames_are_merged_on_demand_and_predicted_once(tmp_path: Path) -> None:
    frames_dir, aligned = make_workspace(tmp_path, n=4)
    pairing = pair_frames(frames_dir, aligned)
    out, masks = tmp_path / "merged", tmp_path / "merged_mask"
    out.mkdir()
    masks.mkdir()
    (out / RECORD_NAME).write_text("{}")
    predictor = _Predictor()
    fm = FrameMerger(pairing.frames, predictor, out, masks)
    assert fm.prepare([0, 1]) == {} and predictor.calls == 1
    base = replace(MergeSettings(), color_transfer_mode=None, mask_mode="full")
    first = fm.merge(0, base)
    assert predictor.calls == 1  # cached
    assert fm.outputs_exist(0) and not fm.outputs_exist(1)
    assert not (out / RECORD_NAME).exists()  # the non-interactive resume record is dropped
    original = fm.merge(0, replace(base, mode="original"))
    assert not np.array_equal(first.image, original.image)
    written = fm.read_output(0)
    assert written is not None
    assert np.array_equal(written.image, original.image)
    assert np.array_equal(written.mask, original.mask)
    results = fm.merge_many([(1, base), (2, base), (3, base)], workers=2)
    assert sorted(results) == [1, 2, 3] and all(fm.outputs_exist(i) for i in range(4))
    assert predictor.calls == 2
    (frames_dir / "00004.png").write_bytes(b"broken")
    fresh = FrameMerger(pairing.frames, predictor, out, masks)
    assert "readable" in str(fresh.merge_many([(3, base)], workers=1)[3])


def test_window_session_keeper_saves_and_resumes_with_the_model(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from dfl.merge.session import load_session
    from dfl.ui.merge_questions import Asker
    from dfl.ui.merge_window import SessionKeeper

    frames_dir, aligned = make_workspace(tmp_path, n=3)
    pairing = pair_frames(frames_dir, aligned)
    model = tmp_path / "m_Quick96"
    model.mkdir()
    fm = FrameMerger(pairing.frames, _Predictor(), tmp_path / "out", tmp_path / "masks")
    (tmp_path / "out").mkdir()
    (tmp_path / "masks").mkdir()

    def flow() -> SimpleNamespace:
        closed = Asker(input_fn=lambda prompt: (_ for _ in ()).throw(EOFError()))
        return SimpleNamespace(
            session=load_session(model), asker=closed, overrides={}, folder=model,
            workers=2, morph=None,
        )  # fmt: skip

    names = [f.name for f in pairing.frames]
    c = MergeController(names, MergeSettings())
    keeper = SessionKeeper(flow(), KEY, fm)
    keeper.restore(c, fm)  # nothing saved yet
    c.press(TAB)
    c.press("3")
    fm.merge(0, c.current)
    c.mark_merged(0, c.current)
    c.press(".")
    keeper.save(c, final=True)

    again = MergeController(names, MergeSettings())
    SessionKeeper(flow(), KEY, fm).restore(again, fm)  # "Use saved session?": the default, y
    assert again.index == 1 and again.is_done(0) and again.current.mode == "seamless"
    assert load_session(model).workers == 2


def test_window_key_codes_and_images() -> None:
    from dfl.ui.merge_window import decode_key, frame_view, help_image

    assert decode_key(-1) is None and decode_key(9) == TAB and decode_key(27) == ESC
    assert decode_key(ord(">")) == ">" and decode_key(ord("w"), shift=True) == "W"
    assert decode_key(0x10000 | ord("x")) == "x"  # GTK's modifier bits dropped
    assert decode_key(0xFF53) is None  # an arrow key
    view = frame_view(np.zeros((40, 30, 3), np.uint8), 2.0, ["a status line that is long"])
    assert view.shape[0] > 80 and view.shape[1] > 60 and view.dtype == np.uint8
    assert help_image().shape[0] > 400


def test_checkerboard_view_marks_only_outside_the_mask() -> None:
    from dfl.ui.merge_window import CHECKER_PX, checkerboard_view

    image = np.full((20, 20, 3), 200, np.uint8)
    mask = np.zeros((20, 20), np.uint8)
    mask[:, 10:] = 255  # the right half is face
    view = checkerboard_view(image, mask).astype(int)
    assert (view[:, 10:] == 150).all()  # face: dimmed to 3/4, no squares
    assert view[0, 0, 0] == 150 and view[0, CHECKER_PX, 0] == 150 + 64  # squares outside
    assert view[CHECKER_PX, 0, 0] == 150 + 64 and view[CHECKER_PX, CHECKER_PX, 0] == 150
