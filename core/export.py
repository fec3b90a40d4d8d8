"""A trained model leaves Python: an ONNX file (torch.onnx's dynamo exporter) or a torch.export
program (`.pt2`), optionally int8 (ONNX Runtime's quantizer), each checked against the eager
model on real inputs before it is kept, with a JSON sidecar that says how to feed it.

    # a demo's export.py: what to export, on which real inputs, with what it needs to know
    spec = ExportSpec("vision-classify", wrapped_model, (images,), ["images"], ["logits"],
                      dynamic={"images": {0: "batch"}}, sidecar={"labels": [...]}, int8="static",
                      calibration=[(batch,) for batch in training_batches])
    written = export(spec, cfg)          # cfg: ExportConfig (--format, --quantize, --out)

A file that fails its check is removed, never left behind as if valid.
"""

import dataclasses
import inspect
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from core.config import ChangesDefaults
from core.errors import UsageError
from core.export_check import compare, numpy, summary
from core.files import write_text
from core.onnx_files import feeds, quantize, session, write_onnx, write_onnx_chain
from core.sidecar import describe


@dataclasses.dataclass
class ExportConfig(ChangesDefaults):
    """Fields of every demo's `export` command; a demo changes the `out_dir` default."""

    out_dir: str = "runs/default"
    """Run directory of the trained model to export."""
    format: Literal["onnx", "pt2"] = "onnx"
    """onnx: an ONNX file for ONNX Runtime (or any ONNX runtime); pt2: a torch.export program."""
    quantize: Literal["none", "int8"] = "none"
    """int8: weights (and, for convolutional models, activations) in 8 bits; onnx only."""
    out: str = "exported"
    """Folder the model file and its JSON sidecar are written to."""
    data_dir: str | None = None
    """Data root for the real check and calibration inputs (default: $SHOWCASE_DATA, else the user
    cache dir)."""
    json: bool = False
    """Print what was written as one JSON object."""

    def __post_init__(self) -> None:
        if self.quantize == "int8" and self.format != "onnx":
            raise UsageError(
                "--quantize int8 goes with --format onnx (a .pt2 program stays float32)"
            )


@dataclasses.dataclass
class ExportSpec:
    """What a demo exports: a module of tensors in and tensors out, real example inputs, and what a
    user needs to feed it without this package."""

    name: str
    """File stem, e.g. `vision-classify`."""
    module: nn.Module
    inputs: tuple[torch.Tensor, ...]
    """Real inputs (a few test samples): the trace's examples and the round-trip check."""
    input_names: list[str]
    output_names: list[str]
    dynamic: dict[str, dict[int, str]]
    """Input name -> {dimension: its name}, e.g. {"images": {0: "batch"}}; an output named here
    too has its own (by default an output's dimension 0 is the first input's batch, if it has
    one)."""
    sidecar: dict[str, Any]
    """Labels, vocabulary files, normalisation, post-processing: what the graph leaves out."""
    int8: Literal["static", "dynamic", "weights"] | None = None
    """How this model is quantized: static QDQ (convolutions: calibrated activations too), dynamic
    (attention and linear layers: int8 weights, activations as they come), weights (int8 storage,
    float32 arithmetic: a GRU); None: it is not."""
    calibration: list[tuple[torch.Tensor, ...]] = dataclasses.field(default_factory=list)
    """Real training inputs that fix the int8 activation ranges (static only)."""
    int8_ops: tuple[str, ...] = ()
    """ONNX op types static int8 covers, e.g. ("Conv",) (empty: ONNX Runtime's default set)."""
    int8_ranges: Literal["minmax", "percentile"] = "minmax"
    """How static int8 sets each activation's range from the calibration inputs: their extremes,
    or their 99.999th percentile (a few outliers then no longer coarsen every other value)."""
    answer: Callable[[list[np.ndarray]], np.ndarray] | None = None
    """The model's answer per input row from its outputs (e.g. the top-1 class), for the int8
    check; None: the first output's argmax over its last dimension."""
    more_inputs: list[tuple[torch.Tensor, ...]] = dataclasses.field(default_factory=list)
    """Further real inputs of other sizes along the dynamic axes, checked too (a file that runs
    only at its traced size fails)."""
    parts: list[nn.Module] = dataclasses.field(default_factory=list)
    """`module` as a chain of parts whose ONNX graphs are joined into one file (empty: one part):
    for a model the exporter cannot trace in one piece."""
    formats: tuple[str, ...] = ("onnx", "pt2")
    """The --format values this model exports to."""
    bounds: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    """A dynamic dimension's name -> its (min, max), where the model limits it (a table's length)."""


def export(spec: ExportSpec, cfg: ExportConfig) -> dict[str, Any]:
    """Write `spec` in `cfg.format` (int8 if asked) to `cfg.out`, check it, and return what was
    written: {"file", "sidecar", "check"}."""
    if cfg.format not in spec.formats:
        raise UsageError(f"{cfg.DEMO} exports --format {' or '.join(spec.formats)}")
    if cfg.quantize == "int8" and spec.int8 is None:
        raise UsageError(f"{cfg.DEMO} exports float32 only: leave out --quantize")
    folder = Path(cfg.out)
    folder.mkdir(parents=True, exist_ok=True)
    for module in [spec.module, *spec.parts]:
        module.eval()
    checks = [spec.inputs, *spec.more_inputs]
    with torch.no_grad():
        expected = [numpy(spec.module(*inputs)) for inputs in checks]
    suffix = "-int8" if cfg.quantize == "int8" else ""
    path = folder / f"{spec.name}{suffix}.{cfg.format}"
    pieces = []  # a chain's parts, as ONNX files
    with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as scratch:
        tmp = Path(scratch) / path.name
        if cfg.format == "pt2":
            write_pt2(spec, tmp)
            program = torch.export.load(str(tmp)).module()
            with torch.no_grad():
                got = [numpy(program(*inputs)) for inputs in checks]
        else:
            names = (spec.input_names, spec.output_names)
            if spec.parts:
                pieces = write_onnx_chain(spec.parts, spec.inputs, names, dynamic_shapes(spec), tmp)
            else:
                write_onnx(spec.module, spec.inputs, names, dynamic_shapes(spec), tmp)
            if cfg.quantize == "int8":
                calibration = [feeds(spec.input_names, row) for row in spec.calibration]
                int8 = Path(scratch) / "int8.onnx"
                quantize(tmp, int8, spec.int8, calibration, spec.int8_ops, spec.int8_ranges)
                os.replace(int8, tmp)
            run = session(tmp).run
            got = [run(spec.output_names, feeds(spec.input_names, inputs)) for inputs in checks]
        check = compare(spec, expected, got, cfg.quantize == "int8", pieces)
        os.replace(tmp, path)  # only a checked file reaches its name
    sidecar = path.with_suffix(path.suffix + ".json")
    write_text(sidecar, json.dumps(describe(spec, cfg, path, check), indent=2) + "\n")
    written = {"file": str(path), "sidecar": str(sidecar), "check": check}
    print(
        json.dumps(written) if cfg.json else f"wrote {path} and {sidecar.name} ({summary(check)})"
    )
    return written


def dynamic_shapes(spec: ExportSpec) -> tuple:
    """torch.export's form of `spec.dynamic`: one {dim: Dim} per input (None: all static), the
    inputs of a `*args` parameter as one tuple."""
    dims = {
        n: torch.export.Dim(n, **dict(zip(("min", "max"), b, strict=False)))
        for n, b in spec.bounds.items()
    }
    shapes = []
    for name in spec.input_names:
        axes = spec.dynamic.get(name, {})
        shapes.append({d: dims.setdefault(n, torch.export.Dim(n)) for d, n in axes.items()} or None)
    params = inspect.signature(spec.module.forward).parameters.values()
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        named = sum(p.kind == p.POSITIONAL_OR_KEYWORD for p in params)
        return (*shapes[:named], tuple(shapes[named:]))
    return tuple(shapes)


def write_pt2(spec: ExportSpec, path: Path) -> None:
    program = torch.export.export(spec.module, spec.inputs, dynamic_shapes=dynamic_shapes(spec))
    torch.export.save(program, str(path))
