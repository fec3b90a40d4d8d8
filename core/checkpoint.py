"""Checkpoints as safetensors plus JSON: no pickle, so loading an untrusted file runs no code.

A training checkpoint is one safetensors file: tensors under prefixes (`model.`, `optim.`,
`rng.`) and everything else as JSON in the file's metadata. Every write goes to a temporary
file that is renamed over the target, so a crash never leaves a half-written checkpoint.
"""

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from core.errors import ShowcaseError


def atomic_write(path: Path, write) -> None:
    """Call `write(tmp_path)`, then rename the temporary file over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_weights(model: nn.Module, path: Path, meta: dict[str, Any] | None = None) -> None:
    """Write a model's weights (and JSON metadata) to a safetensors file, atomically."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in unwrap(model).state_dict().items()}
    metadata = {"meta": json.dumps(meta or {})}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and JSON metadata of a safetensors file; a bad file is a one-line error."""
    if not Path(path).is_file():
        raise ShowcaseError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is no dict)
            meta = json.loads((f.metadata() or {}).get("meta", "{}"))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ShowcaseError(f"{path} is not a readable safetensors checkpoint ({exc})") from exc
    return tensors, meta


def load_weights(model: nn.Module, path: Path) -> dict[str, Any]:
    """Load weights into `model`, checking every name and shape; return the file's metadata."""
    tensors, meta = read_file(path)
    load_state(unwrap(model), tensors, str(path))
    return meta


def load_state(model: nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Copy `tensors` into `model`; any missing, extra or mis-shaped tensor is a clear error."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    if missing or extra:
        raise ShowcaseError(
            f"{source} does not fit this model: missing {missing[:3]}, unexpected {extra[:3]}"
        )
    for name, expected in own.items():
        value = tensors[name]
        if value.shape != expected.shape:
            raise ShowcaseError(
                f"{source}: tensor {name!r} has shape {tuple(value.shape)} in the checkpoint "
                f"but {tuple(expected.shape)} in the model"
            )
    model.load_state_dict(tensors)


def save_checkpoint(
    path: Path, model: nn.Module, optimizer, scheduler, scaler, extra: dict
) -> None:
    """Write the full training state: weights, optimizer, scheduler, scaler, RNGs and `extra`.
    A sampler without an optimizer passes None for it."""
    tensors = {
        f"model.{k}": v.detach().contiguous().cpu() for k, v in unwrap(model).state_dict().items()
    }
    optim_state = (
        optimizer.state_dict() if optimizer is not None else {"state": {}, "param_groups": []}
    )
    per_param: dict[str, dict[str, Any]] = {}
    for idx, state in optim_state["state"].items():
        per_param[str(idx)] = {}
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{idx}.{key}"] = value.detach().contiguous().cpu()
            else:
                per_param[str(idx)][key] = value
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    np_state = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np_state[1].astype(np.int64))
    meta = {
        "optim": {"param_groups": optim_state["param_groups"], "scalars": per_param},
        "scheduler": scheduler.state_dict() if scheduler is not None else {},
        "scaler": scaler.state_dict() if scaler is not None else {},
        "rng": {"python": _py_rng(), "numpy": [np_state[0], *np_state[2:]]},
        **extra,
    }
    metadata = {"meta": json.dumps(meta)}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_checkpoint(path: Path, model: nn.Module, optimizer, scheduler, scaler) -> dict:
    """Restore what `save_checkpoint` wrote; return its `extra` fields."""
    tensors, meta = read_file(path)
    load_state(
        unwrap(model), {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, str(path)
    )
    state: dict[int, dict[str, Any]] = {}
    for idx, scalars in meta["optim"]["scalars"].items():
        state[int(idx)] = dict(scalars)
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    if optimizer is not None:
        optimizer.load_state_dict({"state": state, "param_groups": meta["optim"]["param_groups"]})
    if scheduler is not None:
        scheduler.load_state_dict(meta["scheduler"])
    if scaler is not None and meta["scaler"]:
        scaler.load_state_dict(meta["scaler"])
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    kind, pos, has_gauss, cached = meta["rng"]["numpy"]
    np.random.set_state(
        (kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, cached)
    )
    version, internal, gauss = meta["rng"]["python"]
    random.setstate((version, tuple(internal), gauss))
    return {k: v for k, v in meta.items() if k not in ("optim", "scheduler", "scaler", "rng")}


def _py_rng() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP and/or torch.compile wrappers."""
    model = getattr(model, "_orig_mod", model)
    if isinstance(model, DistributedDataParallel):
        model = model.module
    return getattr(model, "_orig_mod", model)
