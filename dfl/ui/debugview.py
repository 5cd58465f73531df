"""`dfl train --debug`: show the augmented training samples instead of training (never saves)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2

from dfl.data.batcher import BatchProducer
from dfl.data.faceset import FaceSample
from dfl.models.contract import ModelSpec
from dfl.training.events import Command
from dfl.training.preview import debug_page
from dfl.ui import text
from dfl.ui.console import ConsoleKeys

DEBUG_SEED = 0
POLL_MS = 50
DEBUG_IMAGE = "debug_samples.jpg"


def show_samples(
    spec: ModelSpec,
    options: dict[str, Any],
    src: list[FaceSample],
    dst: list[FaceSample],
    *,
    no_window: bool,
) -> int:
    """Shows one batch at a time; P draws the next, Enter exits. Without a window, writes a file."""
    src_cfg, dst_cfg = spec.augment_configs(options)
    batch_size = spec.batch_size(options, 1)
    with BatchProducer(src, dst, src_cfg, dst_cfg, batch_size, DEBUG_SEED, workers=1) as producer:
        for note in producer.notes:  # e.g. narrower face types, tiny faces (training says them too)
            text.warn(note)
        image = debug_page(producer.get(timeout=60).as_inputs())
        window = None
        if not no_window:
            from dfl.ui.startup import open_preview_window

            window = open_preview_window(False)
        if window is None:
            path = Path.cwd() / DEBUG_IMAGE
            cv2.imwrite(str(path), image)
            text.info(f"Samples written to {path} (no preview window).")
            return 0
        text.info("Debug view: [p] next batch, [Enter] exit. Nothing is trained or saved.")
        window.show(image)
        with ConsoleKeys() as keys:
            while True:
                commands = window.poll(POLL_MS) + keys.poll()
                if Command.SAVE_AND_EXIT in commands:
                    break
                if Command.REFRESH_PREVIEW in commands:
                    window.show(debug_page(producer.get(timeout=60).as_inputs()))
                time.sleep(0)
        window.close()
    return 0
