"""Export a saved model to DeepFaceLive's .dfm: load, convert, write to a temp file, verify it
with onnxruntime, then rename into place. A failure leaves no file behind (an older .dfm at the
same path stays as it was)."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dfl.interop.deepfacelive import contract
from dfl.interop.deepfacelive.errors import ExportError
from dfl.interop.deepfacelive.verify import Verification, verify_file
from dfl.models.loading import SavedModel

# Not fsutil's temp mark: a trainer saving this model meanwhile removes fsutil temp files here.
EXPORT_TEMP_MARK = ".exporting-"
MODEL_FILE_SUFFIX = "_model" + contract.DFM_SUFFIX  # DFL: <name>_<Model>_model.dfm
MAX_ONNX_BYTES = (1 << 31) - 1  # protobuf's limit for one message: a .dfm is a single file
GIB = 1 << 30


@dataclass(frozen=True)
class ExportResult:
    path: Path
    size_bytes: int
    convert_s: float  # building the graph and writing the file
    verify_s: float  # onnxruntime checks and the comparison with Keras
    quantized: bool
    verification: Verification


def default_output(folder: Path) -> Path:
    """`<model folder>/<name>_<Model>_model.dfm`, DFL's file name, inside the model's folder."""
    return Path(folder) / f"{Path(folder).name}{MODEL_FILE_SUFFIX}"


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}{EXPORT_TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")


def _write_synced(path: Path, data: bytes) -> None:
    from dfl.store.fsutil import fsync_fd

    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        fsync_fd(f.fileno())


def write_dfm(
    networks: Mapping[str, Any],
    path: Path | str,
    *,
    quantize: bool = False,
    graph_name: str = "dfl",
    doc: str = "",
    layout: str | None = None,
) -> ExportResult:
    """Convert `networks` (a df, liae or AMP layout: `layout`, else as their names say) to a
    .dfm at `path`, checked with onnxruntime against the networks; ExportError (with nothing
    written) when anything fails."""
    import onnx

    from dfl.interop.deepfacelive.wiring import build_onnx
    from dfl.store.fsutil import fsync_dir, replace_file

    path = Path(path)
    if not path.parent.is_dir():
        raise ExportError(f"folder {path.parent} does not exist")
    start = time.perf_counter()
    proto = build_onnx(networks, graph_name, quantize=quantize, doc=doc, layout=layout)
    size = proto.ByteSize()
    if size > MAX_ONNX_BYTES:
        hint = "" if quantize else "; export quantized to halve the conv weights"
        raise ExportError(
            f"the model needs {size / GIB:.1f} GiB but one ONNX file holds at most 2 GiB{hint}"
        )
    try:
        onnx.checker.check_model(proto)
        data = proto.SerializeToString()
    except (onnx.checker.ValidationError, ValueError) as exc:
        raise ExportError(f"the converted model is not valid ONNX: {exc}") from exc
    del proto  # the serialized bytes are all that is needed now: free the copy of the weights
    temp = _temp_path(path)
    try:
        _write_synced(temp, data)
        convert_s = time.perf_counter() - start
        start = time.perf_counter()
        verification = verify_file(temp, networks, quantized=quantize, layout=layout)
        verify_s = time.perf_counter() - start
        replace_file(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    fsync_dir(path.parent)
    return ExportResult(path, len(data), convert_s, verify_s, quantize, verification)


def export_saved_model(
    model: SavedModel, output: Path | str | None = None, quantize: bool = False
) -> ExportResult:
    """Write `model` as a .dfm (default path: default_output(model.folder))."""
    path = Path(output) if output is not None else default_output(model.folder)
    doc = f"{model.name}_{model.model_type} at iteration {model.iteration}, exported by dfl"
    if model.export_layout is None:
        raise ExportError(f"{model.model_type} models cannot be exported to DeepFaceLive")
    return write_dfm(
        model.networks,
        path,
        quantize=quantize,
        graph_name=model.model_type,
        doc=doc,
        layout=model.export_layout,
    )
