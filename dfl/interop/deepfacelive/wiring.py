"""How each model's networks make DeepFaceLive's three outputs (docs/deepfacelive.md §2), as an
ONNX graph and, for verification, with Keras itself.

  df (Quick96, SAEHD df): code = inter(encoder(x)); dst mask = decoder_dst(code) mask;
      face, face mask = decoder_src(code).
  liae (SAEHD liae): dst code = concat(inter_B, inter_AB); swap code = concat(inter_AB, inter_AB);
      one decoder.
  amp (AMP): src = inter_src(encoder(x)), dst = inter_dst(encoder(x)); the swap code takes its
      first floor(C·morph) channels from src and the rest from dst (C = the codes' channels);
      dst mask = decoder(dst) mask; face, face mask = decoder(swap code).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import keras
import numpy as np
import onnx

from dfl.interop.deepfacelive import contract
from dfl.interop.deepfacelive.errors import ExportError
from dfl.interop.deepfacelive.graph import OnnxGraph, tensor_info
from dfl.interop.deepfacelive.layers import Converter
from dfl.nn import blocks

NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)
MASK = 1  # a decoder's outputs are [image, mask]
CODE_AXIS = 1  # the channel axis of a code in the ONNX graph (NCHW, or a flat vector's features)

LAYOUTS: dict[str, tuple[str, ...]] = {
    "df": ("encoder", "inter", "decoder_src", "decoder_dst"),
    "liae": ("encoder", "inter_AB", "inter_B", "decoder"),
    "amp": ("encoder", "inter_src", "inter_dst", "decoder"),
}
MORPH_LAYOUTS = frozenset({"amp"})  # layouts with the morph_value input

Networks = Mapping[str, keras.Model]
Outputs = tuple[str, str, str]  # ONNX names of the dst mask, the swapped face and its mask
KerasOutputs = tuple[np.ndarray, np.ndarray, np.ndarray]  # the same as Keras computes them


def layout_of(networks: Networks, layout: str | None = None) -> str:
    """`layout` (a model's ModelSpec.export_layout) when given and the networks have its parts,
    else 'df', 'liae' or 'amp' from the networks' names; ExportError for anything else."""
    names = set(networks)
    if layout is not None:
        if layout not in LAYOUTS:
            raise ExportError(f"unknown export layout {layout!r}: choose from {', '.join(LAYOUTS)}")
        missing = [n for n in LAYOUTS[layout] if n not in names]
        if missing:
            raise ExportError(f"the {layout} layout needs networks {', '.join(missing)}")
        return layout
    for layout, needed in LAYOUTS.items():
        if set(needed) <= names:
            return layout
    known = "; ".join(f"{k}: {', '.join(v)}" for k, v in LAYOUTS.items())
    raise ExportError(
        f"cannot export a model with networks {', '.join(sorted(names))}: "
        f"the .dfm export knows these layouts ({known})"
    )


def has_morph(networks: Networks, layout: str | None = None) -> bool:
    return layout_of(networks, layout) in MORPH_LAYOUTS


def resolution_of(networks: Networks) -> int:
    """The model's input resolution (static), from the encoder's input shape."""
    shape = tuple(networks["encoder"].inputs[0].shape)
    if len(shape) != 4 or shape[1] != shape[2] or shape[1] is None or shape[3] != 3:
        raise ExportError(f"the encoder takes {shape}: a .dfm needs a square (R, R, 3) input")
    return int(shape[1])


def code_channels(networks: Networks) -> int:
    """AMP: the channels of the inter codes (the morph splits them)."""
    return int(networks["inter_src"].outputs[0].shape[-1])


# ----------------------------------------------------------------------------- ONNX
def _df(cv: Converter, nets: Networks, x: str, _morph: str | None) -> Outputs:
    code = cv.network(nets["inter"], cv.network(nets["encoder"], [x], "encoder"), "inter")
    mask = cv.network(nets["decoder_dst"], code, "decoder_dst", outputs=[MASK])[0]
    face, face_mask = cv.network(nets["decoder_src"], code, "decoder_src")
    return mask, face, face_mask


def _liae(cv: Converter, nets: Networks, x: str, _morph: str | None) -> Outputs:
    g = cv.graph
    features = cv.network(nets["encoder"], [x], "encoder")
    ab = cv.network(nets["inter_AB"], features, "inter_AB")[0]
    b = cv.network(nets["inter_B"], features, "inter_B")[0]
    dst_code = g.node("Concat", [b, ab], "dst_code", axis=CODE_AXIS)
    swap_code = g.node("Concat", [ab, ab], "swap_code", axis=CODE_AXIS)
    mask = cv.network(nets["decoder"], [dst_code], "decoder_dst", outputs=[MASK])[0]
    face, face_mask = cv.network(nets["decoder"], [swap_code], "decoder_swap")
    return mask, face, face_mask


def _amp(cv: Converter, nets: Networks, x: str, morph: str | None) -> Outputs:
    if morph is None:
        raise ValueError("AMP needs the morph_value input")
    g = cv.graph
    features = cv.network(nets["encoder"], [x], "encoder")
    src = cv.network(nets["inter_src"], features, "inter_src")[0]
    dst = cv.network(nets["inter_dst"], features, "inter_dst")[0]
    channels = code_channels(nets)
    rank = len(nets["inter_src"].outputs[0].shape)
    # channel c comes from src when c < floor(C·morph): a 0/1 mask, no dynamic slicing
    index_shape = [1, channels] + [1] * (rank - 2)
    index = g.constant(np.arange(channels, dtype=np.float32).reshape(index_shape), "morph/index")
    scaled = g.node("Mul", [morph, g.constant(np.float32(channels), "morph/C")], "morph/scaled")
    count = g.node("Floor", [scaled], "morph/count")
    from_src = g.node("Less", [index, count], "morph/from_src")
    swap_code = g.node("Where", [from_src, src, dst], "swap_code")
    mask = cv.network(nets["decoder"], [dst], "decoder_dst", outputs=[MASK])[0]
    face, face_mask = cv.network(nets["decoder"], [swap_code], "decoder_swap")
    return mask, face, face_mask


WIRES: dict[str, Callable[[Converter, Networks, str, str | None], Outputs]] = {
    "df": _df,
    "liae": _liae,
    "amp": _amp,
}


def build_onnx(
    networks: Networks,
    graph_name: str,
    quantize: bool = False,
    doc: str = "",
    layout: str | None = None,
) -> onnx.ModelProto:
    """The .dfm ONNX model of these networks (wired as `layout`, else as their names say):
    NHWC in and out, NCHW inside."""
    layout = layout_of(networks, layout)
    res = resolution_of(networks)
    graph = OnnxGraph(quantize)
    for name in (contract.IN_FACE, contract.MORPH_VALUE, *contract.OUTPUTS):
        graph.reserve(name)
    n = contract.BATCH_DIM
    inputs = [tensor_info(contract.IN_FACE, [n, res, res, 3])]
    morph = None
    if layout in MORPH_LAYOUTS:
        inputs.append(tensor_info(contract.MORPH_VALUE, [1]))
        morph = contract.MORPH_VALUE
    x = graph.node("Transpose", [contract.IN_FACE], "in_face_nchw", perm=list(NHWC_TO_NCHW))
    results = WIRES[layout](Converter(graph), networks, x, morph)
    outputs = []
    for name, tensor, channels in zip(
        contract.OUTPUTS, results, contract.OUTPUT_CHANNELS, strict=True
    ):
        graph.node("Transpose", [tensor], name.split(":")[0], output=name, perm=list(NCHW_TO_NHWC))
        outputs.append(tensor_info(name, [n, res, res, channels]))
    return graph.to_model(graph_name, inputs, outputs, doc)


# ---------------------------------------------------------------------------- Keras
def _run(network: keras.Model, x: np.ndarray | list[np.ndarray]) -> list[np.ndarray]:
    out = network(x, training=False)
    out = out if isinstance(out, (list, tuple)) else [out]
    return [np.asarray(keras.ops.convert_to_numpy(t)) for t in out]


def morph_mask(channels: int, morph: float) -> np.ndarray:
    """True for the code channels taken from src: c < floor(C·morph), in float32 as the graph."""
    count = np.floor(np.float32(channels) * np.float32(morph))
    return np.arange(channels, dtype=np.float32) < count


def reference_outputs(
    networks: Networks,
    images: np.ndarray,
    morphs: Sequence[float | None] = (None,),
    layout: str | None = None,
) -> list[KerasOutputs]:
    """(dst mask, swapped face, its mask) computed by Keras, NHWC numpy, for each morph value
    (ignored without morph); the encoder and the dst mask are computed once."""
    layout = layout_of(networks, layout)
    x = np.asarray(images, dtype=np.float32)
    with blocks.no_grad():
        features = _run(networks["encoder"], x)[0]
        if layout == "df":
            code = _run(networks["inter"], features)[0]
            mask = _run(networks["decoder_dst"], code)[MASK]
            face, face_mask = _run(networks["decoder_src"], code)
            return [(mask, face, face_mask)] * len(morphs)
        if layout == "liae":
            ab = _run(networks["inter_AB"], features)[0]
            b = _run(networks["inter_B"], features)[0]
            mask = _run(networks["decoder"], np.concatenate([b, ab], axis=-1))[MASK]
            face, face_mask = _run(networks["decoder"], np.concatenate([ab, ab], axis=-1))
            return [(mask, face, face_mask)] * len(morphs)
        src = _run(networks["inter_src"], features)[0]
        dst = _run(networks["inter_dst"], features)[0]
        mask = _run(networks["decoder"], dst)[MASK]
        results = []
        for morph in morphs:
            from_src = morph_mask(src.shape[-1], 0.0 if morph is None else morph)
            face, face_mask = _run(networks["decoder"], np.where(from_src, src, dst))
            results.append((mask, face, face_mask))
        return results
