"""How the classifier is scored and shown: its confusion matrix and the pictures `eval` leaves
in the run directory."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from core.files import save_figure


def confusion(targets: torch.Tensor, preds: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(num_classes, num_classes) counts: row the true class, column the predicted one."""
    pairs = targets.long() * num_classes + preds.long()
    return torch.bincount(pairs, minlength=num_classes**2).view(num_classes, num_classes)


def plot_confusion(
    targets: torch.Tensor, preds: torch.Tensor, path: str, num_classes: int = 10
) -> None:
    """A confusion-matrix heat map with counts (rows: true class, columns: predicted)."""
    cm = confusion(targets, preds, num_classes)
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(cm.log1p(), cmap="Blues")
    for i in range(num_classes):
        for j in range(num_classes):
            ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if i == j else "black")  # fmt: skip
    ax.set(xlabel="predicted", ylabel="true", xticks=range(num_classes), yticks=range(num_classes))
    ax.set_title("MNIST test confusion matrix")
    _save(fig, path)


def plot_mistakes(
    images: torch.Tensor, targets: torch.Tensor, probs: torch.Tensor, path: str, n: int = 24
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
        ax.set_title(f"{targets[i]}→{probs[i].argmax()} ({probs[i].max():.2f})", fontsize=8)
    fig.suptitle("worst mistakes: true→predicted (confidence)")
    _save(fig, path)


def _save(fig, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
