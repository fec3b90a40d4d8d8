"""The shift suite of `eval --shift`: a demo's test data under named conditions (a gray background,
blur, noise, ...), each at a few severities, scored with the demo's own metric.

The shifted copies are made in memory from the real test data at evaluation time, each condition
from its own seeded generator, so a suite is the same for a seed on every run and nothing is
written to the data root. A demo declares its conditions:

    SHIFTS = [Shift("blur", (0.75, 1.25, 1.75), apply=blur_images, unit="sigma, pixels"), ...]
    table = run_shifts(SHIFTS, test_data, score=accuracy_of, seed=0)
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.files import save_figure


@dataclass(frozen=True)
class Shift:
    """One condition: `apply(data, severity, generator)` returns a shifted copy of the test data
    (labels, boxes and transcripts kept right); the middle severity is the one targets name."""

    name: str
    severities: tuple[float, ...]
    apply: Callable[[Any, float, torch.Generator], Any]
    unit: str = ""

    @property
    def middle(self) -> float:
        return self.severities[len(self.severities) // 2]


def shift_generator(seed: int, index: int) -> torch.Generator:
    """The generator the `index`-th condition of a suite draws from (the same at every severity)."""
    return torch.Generator().manual_seed(seed * 1000 + index)


def run_shifts(
    shifts: list[Shift], data: Any, score: Callable[[Any], float], seed: int = 0
) -> dict[str, Any]:
    """The metric on the clean data and on every condition at every severity:
    `{"clean": m, "conditions": {name: {"severities": [...], "scores": [...], "unit": ...}}}`."""
    conditions = {}
    for i, shift in enumerate(shifts):
        scores = []
        for severity in shift.severities:
            scores.append(score(shift.apply(data, severity, shift_generator(seed, i))))
        conditions[shift.name] = {
            "severities": list(shift.severities),
            "scores": scores,
            "unit": shift.unit,
        }
    return {"clean": score(data), "seed": seed, "conditions": conditions}


def middle_sets(shifts: list[Shift], data: Any, seed: int = 0) -> dict[str, Any]:
    """Each condition's shifted data at its middle severity, the same as `run_shifts` scored for
    `seed` (for pictures of what goes wrong)."""
    return {s.name: s.apply(data, s.middle, shift_generator(seed, i)) for i, s in enumerate(shifts)}


def at_middle(table: dict[str, Any]) -> dict[str, float]:
    """Each condition's score at its middle severity."""
    return {
        name: row["scores"][len(row["scores"]) // 2] for name, row in table["conditions"].items()
    }


def shift_rows(table: dict[str, Any], digits: int = 4) -> dict[str, Any]:
    """A table as a benchmark row keeps it: the clean score, then each condition's scores mild to
    strong, rounded."""
    rows = {
        name: [round(m, digits) for m in row["scores"]] for name, row in table["conditions"].items()
    }
    return {"clean": round(table["clean"], digits), **rows}


def shift_summary(table: dict[str, Any], metric: str) -> str:
    """Lines of text: the clean score, then one line per condition with its score per severity."""
    lines = [f"{metric} clean {table['clean']:.4f}"]
    for name, row in table["conditions"].items():
        cells = "  ".join(
            f"{s:g}: {m:.4f}" for s, m in zip(row["severities"], row["scores"], strict=True)
        )
        lines.append(f"  {name:<12} {cells}" + (f"  ({row['unit']})" if row["unit"] else ""))
    return "\n".join(lines)


def plot_shifts(table: dict[str, Any], metric: str, path: str | Path) -> None:
    """The metric against severity (mild to strong), a line per condition, the clean score dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, row in table["conditions"].items():
        steps = range(1, len(row["scores"]) + 1)
        ax.plot(steps, row["scores"], marker="o", label=name)
    ax.axhline(table["clean"], color="gray", linestyle="--", label="clean")
    most = max(len(row["scores"]) for row in table["conditions"].values())
    ax.set(xlabel="severity (mild to strong)", ylabel=metric, xticks=range(1, most + 1))
    ax.legend(fontsize=8, ncol=2)
    ax.set_title(f"{metric} under shifted test data")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)
    plt.close(fig)
