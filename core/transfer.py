"""Start from a trained model (transfer learning): `--init-from` loads every weight of an earlier run
whose name and shape match the new model's, and `--freeze` keeps matching parameters fixed.

    report = init_from(model, path, "runs/vision-classify")   # loaded / re-initialised / skipped
    frozen = freeze(model, r"^features\\.")             # requires_grad off for these
"""

import re
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from core.errors import ShowcaseError, UsageError


def init_from(model: nn.Module, path: Path, source: str) -> dict:
    """Copy into `model` every tensor of the weights file `path` (what `source` named) whose name
    and shape match; the model's other tensors keep their fresh initialisation. Prints and returns
    what was loaded, re-initialised (a name of both with another shape, e.g. a new class count's
    head) and skipped."""
    try:
        found = load_file(str(path))
    except (OSError, ValueError) as exc:
        raise ShowcaseError(f"--init-from {source}: not readable weights ({exc})") from None
    found = {k.removeprefix("_orig_mod."): v for k, v in found.items()}
    own = model.state_dict()
    loaded = [k for k, v in own.items() if k in found and found[k].shape == v.shape]
    reshaped = [k for k, v in own.items() if k in found and found[k].shape != v.shape]
    fresh = [k for k in own if k not in found]
    skipped = [k for k in found if k not in own]
    if not [k for k in loaded if not k.endswith("num_batches_tracked")]:  # counters alone: none
        raise ShowcaseError(
            f"--init-from {source}: none of its {len(found)} tensors fits this "
            "model (another demo's run?)"
        )
    with torch.no_grad():
        for name in loaded:
            own[name].copy_(found[name])
    report = {
        "source": source,
        "loaded": len(loaded),
        "reinitialised": reshaped + fresh,
        "skipped": skipped,
    }
    print(
        f"--init-from {source}: loaded {len(loaded)} of {len(own)} tensors; "
        f"re-initialised {names(reshaped + fresh)}; skipped {names(skipped)}"
    )
    return report


def names(keys: list[str], most: int = 4) -> str:
    """`a, b and 3 more`, or `none`."""
    if not keys:
        return "none"
    shown = ", ".join(keys[:most])
    return shown + (f" and {len(keys) - most} more" if len(keys) > most else "")


def freeze(model: nn.Module, pattern: str) -> list[str]:
    """Keep the parameters whose name matches the regular expression `pattern` fixed: no
    gradient, so no update (an optimizer skips a parameter without one)."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"--freeze {pattern!r} is not a regular expression: {exc}") from None
    frozen = [name for name, p in model.named_parameters() if regex.search(name)]
    if not frozen:
        some = names([n for n, _ in model.named_parameters()])
        raise UsageError(f"--freeze {pattern!r} matches no parameter (they are named {some})")
    for name, p in model.named_parameters():
        if name in frozen:
            p.requires_grad_(False)
    print(f"--freeze {pattern!r}: {len(frozen)} parameter tensors fixed ({names(frozen)})")
    return frozen
