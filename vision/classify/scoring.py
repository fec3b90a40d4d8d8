"""How the classifier is scored and shown: its confusion matrix and the pictures `eval` leaves
in the run directory."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from core.files import save_figure
from core.metrics import accuracy
from core.shift import Shift, middle_sets, plot_shifts, run_shifts
from vision.classify.predict import predict_logits
from vision.shifts import background, blur, contrast, move, rotate, scale, thicken, thin


def image_shift(shift):
    """A condition of the suite on (uint8 images (N, 28, 28), labels): `shift` works on floats."""

    def apply(data, severity: float, generator: torch.Generator):
        x, y = data
        shifted = shift(x.float().div(255).unsqueeze(1), severity, generator)  # (N, 1, 28, 28)
        return shifted.squeeze(1).mul(255).round().to(torch.uint8), y

    return apply


SHIFTS = [
    Shift("rotation", (15, 30, 45), image_shift(rotate), "degrees"),
    Shift("scale", (0.8, 0.65, 0.5), image_shift(scale), "zoom"),
    Shift("position", (3, 5, 7), image_shift(move), "pixels"),
    Shift("thick", (0.5, 1, 1.5), image_shift(thicken), "pixels grown"),
    Shift("thin", (0.33, 0.67, 1), image_shift(thin), "of a 1-pixel erosion"),
    Shift("blur", (0.75, 1.25, 1.75), image_shift(blur), "sigma, pixels"),
    Shift("contrast", (0.6, 0.4, 0.2), image_shift(contrast), "ink level"),
    Shift("background", (0.2, 0.4, 0.6), image_shift(background), "gray level"),
]
"""The classifier's shift suite: stroke width, scale, position, rotation, blur, contrast and
background level, mild to strong (the middle one is the target's)."""


def confusion(targets: torch.Tensor, preds: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(num_classes, num_classes) counts: row the true class, column the predicted one."""
    pairs = targets.long() * num_classes + preds.long()
    return torch.bincount(pairs, minlength=num_classes**2).view(num_classes, num_classes)


def plot_confusion(targets: torch.Tensor, preds: torch.Tensor, path: str, names: list[str]) -> None:
    """A confusion-matrix heat map with counts (rows: true class, columns: predicted)."""
    num_classes = len(names)
    cm = confusion(targets, preds, num_classes)
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(cm.log1p(), cmap="Blues")
    for i in range(num_classes):
        for j in range(num_classes):
            ax.text(
                j,
                i,
                int(cm[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if i == j else "black",
            )
    ax.set(xlabel="predicted", ylabel="true", xticks=range(num_classes), yticks=range(num_classes))
    ax.set_xticklabels(names)
    ax.set_yticklabels(names)
    ax.set_title("test confusion matrix")
    _save(fig, path)


def plot_mistakes(
    images: torch.Tensor,
    targets: torch.Tensor,
    probs: torch.Tensor,
    path: str,
    names: list[str],
    n: int = 24,
) -> None:
    """The `n` test images whose true class got the lowest probability."""
    true_prob = probs[torch.arange(len(targets)), targets]
    wrong = (probs.argmax(-1) != targets).nonzero().flatten()
    worst = wrong[true_prob[wrong].argsort()][:n]
    cols = 8
    rows = max(1, (len(worst) + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, worst.tolist(), strict=False):
        ax.imshow(images[i].cpu(), cmap="gray")
        title = f"{names[targets[i]]}→{names[probs[i].argmax()]} ({probs[i].max():.2f})"
        ax.set_title(title, fontsize=8)
    fig.suptitle("worst mistakes: true→predicted (confidence)")
    _save(fig, path)


def plot_shift_mistakes(shifted: dict, probs: dict, path: str, n: int = 8) -> None:
    """For each condition at its middle severity (`shifted[name]`: images and labels;
    `probs[name]`: the model's probabilities), its `n` worst mistakes."""
    fig, axes = plt.subplots(len(shifted), n, figsize=(n * 1.2, len(shifted) * 1.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for row, (name, (images, targets)) in zip(axes, shifted.items(), strict=True):
        p = probs[name]
        true_prob = p[torch.arange(len(targets)), targets]
        wrong = (p.argmax(-1) != targets).nonzero().flatten()
        worst = wrong[true_prob[wrong].argsort()][:n]
        row[0].text(-0.1, 0.5, name, transform=row[0].transAxes, ha="right", va="center")
        for ax, i in zip(row, worst.tolist(), strict=False):
            ax.imshow(images[i].numpy(), cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"{targets[i]}→{p[i].argmax()}", fontsize=8)
    fig.suptitle("worst mistakes under each shift (middle severity): true→predicted")
    _save(fig, path)


def score_shifts(model, test: tuple, train_cfg: dict, out_dir: str) -> dict:
    """The shift suite's table on the test images; saves its curves and worst mistakes."""
    mean, std, tta = train_cfg["mean"], train_cfg["std"], train_cfg.get("tta", False)

    def probs(data) -> torch.Tensor:
        return predict_logits(model, data[0], mean, std, tta=tta).softmax(-1).cpu()

    table = run_shifts(SHIFTS, test, lambda data: accuracy(probs(data), data[1]).item())
    middle = middle_sets(SHIFTS, test)
    plot_shifts(table, "test accuracy", f"{out_dir}/shift.png")
    plot_shift_mistakes(
        middle, {k: probs(v) for k, v in middle.items()}, f"{out_dir}/shift_mistakes.png"
    )
    return table


def _save(fig, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
