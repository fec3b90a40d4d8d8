"""ONNX files for `core.export`: written by torch.onnx's dynamo exporter, run and quantized by
ONNX Runtime. `onnx`, `onnxscript` and `onnxruntime` come with the `export` extra."""

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from core.errors import ShowcaseError


def write_onnx(
    module: torch.nn.Module,
    inputs: tuple[torch.Tensor, ...],
    names: tuple[list[str], list[str]],
    dynamic_shapes: tuple,
    path: Path,
) -> None:
    """The dynamo exporter's ONNX file of `module` (input and output `names`), optimised, without
    its per-node stack traces (a fifth of a small model's file, and the exporting machine's paths)."""
    try:
        import onnx

        with warnings.catch_warnings():  # the tracer's notes on torch internals
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                inputs,
                dynamo=True,
                input_names=names[0],
                output_names=names[1],
                dynamic_shapes=dynamic_shapes,
                verbose=False,
            )
    except ImportError as exc:  # onnx and onnxscript come with the `export` extra
        raise ShowcaseError(f"ONNX export needs {exc.name}: pip install -e '.[export]'") from None
    program.optimize()
    model = program.model_proto
    for node in model.graph.node:
        del node.metadata_props[:]
    del model.graph.value_info[:]
    onnx.save(model, str(path))


def write_onnx_chain(
    parts: list[torch.nn.Module],
    inputs: tuple[torch.Tensor, ...],
    names: tuple[list[str], list[str]],
    dynamic_shapes: tuple,
    path: Path,
) -> list[Path]:
    """One ONNX file of `parts` applied in turn, each exported alone and the graphs joined: a part
    ends where the exporter loses a dimension (a GRU's time axis after a strided convolution).
    Between parts every dimension but the last stays dynamic; outputs keep no fixed shape.
    Returns each part's own file (beside `path`)."""
    import onnx
    import onnx.compose

    joined, x, pieces = None, inputs, []
    for i, part in enumerate(parts):
        ins = names[0] if i == 0 else [f"link{i}"]
        outs = names[1] if i == len(parts) - 1 else [f"link{i + 1}"]
        auto = {d: torch.export.Dim.AUTO for d in range(x[0].dim() - 1)}
        piece = path.with_name(f"part{i}.onnx")
        pieces.append(piece)
        write_onnx(part, x, (ins, outs), dynamic_shapes if i == 0 else (auto,), piece)
        model = onnx.load(str(piece))
        graph = onnx.compose.add_prefix(
            model, f"part{i}/", rename_inputs=False, rename_outputs=False
        )
        onnx.save(free_outputs(model), str(piece))
        links = [(f"link{i}", f"link{i}")]
        joined = graph if joined is None else onnx.compose.merge_models(joined, graph, links)
        with torch.no_grad():
            x = (part(*x),)
    free_outputs(joined)
    opsets = {o.domain: o.version for o in joined.opset_import}  # each part listed its own
    del joined.opset_import[:]
    joined.opset_import.extend(onnx.helper.make_opsetid(d, v) for d, v in opsets.items())
    onnx.save(joined, str(path))
    return pieces


def free_outputs(model):
    """`model` with no fixed output shapes (a part's trace may have fixed a dynamic one)."""
    for output in model.graph.output:
        output.type.tensor_type.ClearField("shape")
    return model


def session(path: Path):
    """An ONNX Runtime CPU session of `path`."""
    try:
        import onnxruntime
    except ImportError:
        raise ShowcaseError("ONNX Runtime is missing: pip install -e '.[export]'") from None
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def feeds(names: list[str], tensors: tuple[torch.Tensor, ...]) -> dict[str, np.ndarray]:
    """ONNX Runtime's inputs: each tensor as a numpy array under its name."""
    return {n: t.detach().cpu().numpy() for n, t in zip(names, tensors, strict=True)}


@contextlib.contextmanager
def quiet_root_logger() -> Iterator[None]:
    """ONNX Runtime's quantizer warns on the root logger: keep those lines off the terminal."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize(
    source: Path,
    target: Path,
    mode: str,
    calibration: list[dict],
    ops: tuple[str, ...] = (),
    ranges: str = "minmax",
) -> None:
    """int8 through ONNX Runtime: "static" QDQ with activation ranges from the `calibration`
    feeds (their extremes, or with `ranges` "percentile" their 99.999th percentile), one scale per
    tensor (a quick classifier's int8 file gave its float answer on more MNIST training images per
    tensor than per channel), on the op types `ops` (empty: ONNX Runtime's default set); "dynamic" (int8 weights, activations quantized as they come) for
    attention and linear models; or "weights" (`int8_weights`) where ONNX Runtime has no int8
    kernel (a GRU)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = source.with_name("prepared.onnx")
    with quiet_root_logger():
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        if mode == "weights":
            int8_weights(prepared, target)
            return
        if mode == "dynamic":
            quantize_dynamic(str(prepared), str(target), weight_type=QuantType.QInt8)
            int8_weights(target, target)  # what it left in float32: embeddings
            return

        methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile}

        class Feeds(CalibrationDataReader):
            def __init__(self) -> None:
                self.rows = iter(calibration)

            def get_next(self):
                return next(self.rows, None)

        quantize_static(
            str(prepared),
            str(target),
            Feeds(),
            quant_format=QuantFormat.QDQ,
            per_channel=False,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
            op_types_to_quantize=list(ops) or None,
            calibrate_method=methods[ranges],
        )


WEIGHT_AXIS = {
    ("Conv", 1): 0,
    ("Gather", 0): 0,
    ("GRU", 1): 1,
    ("GRU", 2): 1,
    ("MatMul", 1): -1,
    ("Slice", 0): 0,
}
"""(op type, input index) -> the axis of a weight that holds its output channels (or, for an
embedding table, its rows; for a GRU's weights sliced into gates, its gate rows): each gets its
own int8 scale."""


def int8_weights(source: Path, target: Path, smallest: int = 8192) -> None:
    """Weights-only int8: each float32 weight of at least `smallest` values that feeds an input
    of WEIGHT_AXIS (or a Gemm's B) is stored as int8 with one symmetric scale per output channel,
    and a DequantizeLinear node turns it back into float32 when the graph runs; smaller ones (a
    mel filterbank) save little and stay float32. The file shrinks about fourfold and the
    arithmetic stays float32: for ops ONNX Runtime's quantizer has no int8 kernel for (a GRU),
    and for what dynamic quantization leaves in float32."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    weights = {w.name: w for w in graph.initializer if w.data_type == onnx.TensorProto.FLOAT}
    axes: dict[str, int | None] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            axis = WEIGHT_AXIS.get((node.op_type, index))
            if node.op_type == "Gemm" and index == 1:
                trans_b = any(a.name == "transB" and a.i for a in node.attribute)
                axis = 0 if trans_b else 1
            if axis is not None and name in weights and axes.get(name, axis) == axis:
                axes[name] = axis
            elif name in weights:
                axes[name] = None  # used another way too: left in float32
    dequantize = []
    for name, axis in axes.items():
        w = numpy_helper.to_array(weights[name])
        if axis is None or w.size < smallest or w.ndim < 2:
            continue
        axis %= w.ndim
        others = tuple(d for d in range(w.ndim) if d != axis)
        scale = np.abs(w).max(axis=others) / 127  # (channels,)
        scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
        shape = [1] * w.ndim
        shape[axis] = -1
        q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
        stored = {
            f"{name}_int8": q,
            f"{name}_scale": scale,
            f"{name}_zero": np.zeros_like(scale, dtype=np.int8),
        }
        graph.initializer.remove(weights[name])
        graph.initializer.extend(numpy_helper.from_array(a, n) for n, a in stored.items())
        dequantize.append(helper.make_node("DequantizeLinear", list(stored), [name], axis=axis))
    nodes = dequantize + list(graph.node)  # a weight's DequantizeLinear before its users
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(target))
