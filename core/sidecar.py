"""The JSON sidecar beside an exported file: input and output names, dtypes and shapes (dynamic
dimensions by name), what the graph leaves out (labels, vocabulary, post-processing), the round-trip
check's result, and the run and commit it came from, so that a user can run the file without this
package."""

import subprocess
from pathlib import Path
from typing import Any

import torch


def describe(spec, cfg, path: Path, check: dict) -> dict[str, Any]:
    """The sidecar of the file at `path`, written from `spec` (a `core.export.ExportSpec`) by
    `cfg` (an `ExportConfig`), and the round-trip `check`'s result."""

    batch = spec.dynamic.get(spec.input_names[0], {}).get(0)  # outputs share the first input's

    def tensors(names, values, dynamic):
        return [
            {
                "name": n,
                "dtype": str(v.dtype).removeprefix("torch."),
                "shape": [dynamic(n).get(d, s) for d, s in enumerate(v.shape)],
            }
            for n, v in zip(names, values, strict=True)
        ]

    with torch.no_grad():
        outputs = spec.module(*spec.inputs)
    outputs = outputs if isinstance(outputs, tuple | list) else (outputs,)
    return {
        "file": path.name,
        "format": cfg.format,
        "quantize": cfg.quantize,
        "inputs": tensors(spec.input_names, spec.inputs, lambda n: spec.dynamic.get(n, {})),
        "outputs": tensors(
            spec.output_names, outputs, lambda n: spec.dynamic.get(n, {0: batch} if batch else {})
        ),
        **spec.sidecar,
        "check": check,
        "run": str(Path(cfg.out_dir).resolve()),
        "commit": commit(),
        "torch": torch.__version__,
    }


def commit() -> str | None:
    """The git commit of this checkout (None outside one)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
