"""`core.export`'s round-trip check: an exported file must answer as the eager model does on real
inputs (`spec`: an `ExportSpec`), or it is not written."""

from pathlib import Path

import numpy as np
import torch

from core.errors import ShowcaseError
from core.onnx_files import feeds, session

FLOAT_TOLERANCE = 1e-4
"""Largest absolute difference between eager and exported float32 outputs."""


INT8_AGREEMENT = 0.8
"""Smallest share of check inputs on which an int8 file must give the eager model's answer (most:
int8 moves scores a little, and a near tie may flip; a broken file agrees on few)."""


def numpy(outputs) -> list[np.ndarray]:
    """A module's output tensor (or tuple of them) as numpy arrays."""
    outputs = outputs if isinstance(outputs, tuple | list) else (outputs,)
    return [t.detach().cpu().numpy() for t in outputs]


def compare(
    spec,
    expected: list[list[np.ndarray]],
    got: list[list[np.ndarray]],
    int8: bool,
    pieces: list[Path],
) -> dict:
    """The round-trip check on every check input: float32 outputs within FLOAT_TOLERANCE; int8
    gives the eager answer on at least INT8_AGREEMENT of the rows. A chain (`pieces`, its parts'
    files) meets the tolerance part by part on eager inputs (a model may magnify float32 rounding
    past it: the speech GRU does) and gives the eager answers end to end. Raises on failure."""
    count = sum(len(inputs[0]) for inputs in [spec.inputs, *spec.more_inputs])
    same = [
        answers(spec, want) == answers(spec, have) for want, have in zip(expected, got, strict=True)
    ]
    agree = float(np.mean(np.concatenate([np.ravel(s) for s in same])))
    if int8:
        if agree < INT8_AGREEMENT:
            raise ShowcaseError(
                f"the int8 {spec.name} gives the float model's answer on only "
                f"{agree:.0%} of the check inputs: not written"
            )
        return {"inputs": count, "agreement": round(agree, 4)}
    worst = largest_diff(spec.name, spec.output_names, expected, got)
    check = {"inputs": count, "max_abs_diff": worst}
    if pieces:
        check = {**check, "max_abs_diff": part_diff(spec, pieces), "end_to_end_max_abs_diff": worst}
        if agree < 1.0:
            raise ShowcaseError(
                f"exported {spec.name} gives other answers than the eager model: not written"
            )
    if check["max_abs_diff"] > FLOAT_TOLERANCE:
        raise ShowcaseError(
            f"exported {spec.name} differs from the eager model by {check['max_abs_diff']:.2e} "
            f"(> {FLOAT_TOLERANCE:g}): not written"
        )
    return check


def answers(spec, outputs: list[np.ndarray]) -> np.ndarray:
    """The model's answer per input row (default: the first output's argmax, last dimension)."""
    return spec.answer(outputs) if spec.answer else outputs[0].argmax(-1)


def largest_diff(name: str, names: list[str], expected: list, got: list) -> float:
    """The largest |exported - eager| over every output of every check input."""
    worst = 0.0
    for wants, haves in zip(expected, got, strict=True):
        for output, want, have in zip(names, wants, haves, strict=True):
            if want.shape != have.shape:
                raise ShowcaseError(
                    f"exported {name}: output {output} has shape {have.shape}, "
                    f"eager {want.shape}: not written"
                )
            diff = np.abs(want.astype(np.float64) - have.astype(np.float64)).max(initial=0.0)
            worst = max(worst, float(diff))
    return worst


def part_diff(spec, pieces: list[Path]) -> float:
    """The largest difference of any part's file from its eager part, on the eager inputs."""
    worst = 0.0
    for i, (part, piece) in enumerate(zip(spec.parts, pieces, strict=True)):
        run = session(piece)
        names = [n.name for n in run.get_inputs()]
        for x in [spec.inputs, *spec.more_inputs]:
            for earlier in spec.parts[:i]:
                with torch.no_grad():
                    x = (earlier(*x),)
            with torch.no_grad():
                want = numpy(part(*x))
            have = run.run(None, feeds(names, x))
            worst = max(worst, largest_diff(spec.name, [f"part {i}"], [want], [have]))
    return worst


def summary(check: dict) -> str:
    if "agreement" in check:
        return f"int8 gives the float answer on {check['agreement']:.0%} of {check['inputs']} real inputs"
    return f"max |exported - eager| {check['max_abs_diff']:.1e} on {check['inputs']} real inputs"
