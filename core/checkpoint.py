"""Checkpoints as safetensors plus JSON: no pickle, so loading an untrusted file runs no code.

A training checkpoint is one safetensors file: tensors under prefixes (`model.`, `optim.`,
`rng.<rank>.`) and everything else as JSON in the file's metadata. Every write goes to a temporary
file that is renamed over the target, so a crash never leaves a half-written checkpoint.
"""

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from core.errors import ShowcaseError
from core.files import atomic_write


def save_weights(model: nn.Module, path: Path, meta: dict[str, Any] | None = None) -> None:
    """Write a model's weights (and JSON metadata) to a safetensors file, atomically.
    Tied parameters (one tensor under two names) are stored once and restored under both."""
    tensors, aliases = flatten(unwrap(model).state_dict())
    metadata = {"meta": json.dumps({**(meta or {}), "aliases": aliases})}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def flatten(state: dict[str, torch.Tensor], prefix: str = "") -> tuple[dict, dict[str, str]]:
    """CPU copies of `state` keyed `prefix + name`, each shared tensor once; and the aliases
    (dropped name -> kept name) that safetensors, which refuses shared memory, cannot hold."""
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    storages: set[int] = set()
    for name, value in state.items():
        value = value.detach()
        key = (
            value.untyped_storage().data_ptr(),
            value.storage_offset(),
            value.dtype,
            tuple(value.shape),
            tuple(value.stride()),
        )
        if value.numel() and key in seen:
            aliases[prefix + name] = seen[key]
            continue
        seen[key] = prefix + name
        shared = value.numel() and value.untyped_storage().data_ptr() in storages
        storages.add(value.untyped_storage().data_ptr())
        value = value.contiguous().cpu()
        tensors[prefix + name] = value.clone() if shared else value  # a partial view: its own copy
    return tensors, aliases


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
    for alias, kept in meta.pop("aliases", {}).items():
        tensors[alias] = tensors[kept]
    return tensors, meta


def read_meta(path: Path) -> dict[str, Any]:
    """The JSON metadata of a safetensors file, without reading its tensors."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return json.loads((f.metadata() or {}).get("meta", "{}"))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ShowcaseError(f"{path} is not a readable safetensors checkpoint ({exc})") from exc


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
    path: Path,
    model: nn.Module,
    optimizer,
    scheduler,
    scaler,
    extra: dict,
    rngs: list | None = None,
) -> None:
    """Write the full training state: weights, optimizer, scheduler, scaler, the RNG states of
    every rank (`rngs`, each rank's `rng_state()` in rank order; default: this process's) and
    `extra`. A sampler without an optimizer passes None for it."""
    rngs = [rng_state()] if rngs is None else rngs
    tensors, aliases = flatten(unwrap(model).state_dict(), "model.")
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
    for rank, (rng_tensors, _) in enumerate(rngs):
        tensors.update({f"rng.{rank}.{k}": v for k, v in rng_tensors.items()})
    meta = {
        "optim": {"param_groups": optim_state["param_groups"], "scalars": per_param},
        "scheduler": scheduler.state_dict() if scheduler is not None else {},
        "scaler": scaler.state_dict() if scaler is not None else {},
        "rng": [rng_meta for _, rng_meta in rngs],
        "world_size": len(rngs),
        "aliases": aliases,
        **extra,
    }
    metadata = {"meta": json.dumps(meta)}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_checkpoint(
    path: Path, model: nn.Module, optimizer, scheduler, scaler, rank: int = 0, world: int = 1
) -> dict:
    """Restore what `save_checkpoint` wrote (rank `rank`'s RNGs of `world` among them); return its
    `extra`."""
    tensors, meta = read_file(path)
    if meta.get("world_size") != world:
        raise ShowcaseError(
            f"{path} was written by {meta.get('world_size')} process(es); resume it with the same "
            f"number (now {world}) so that every random stream continues"
        )
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
    prefix = f"rng.{rank}."
    set_rng_state(
        {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}, meta["rng"][rank]
    )
    skip = ("optim", "scheduler", "scaler", "rng", "world_size")
    return {k: v for k, v in meta.items() if k not in skip}


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """This process's random streams: tensors (torch CPU, CUDA, MPS, NumPy's key) and JSON parts."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = state
    if torch.backends.mps.is_available():
        tensors["mps"] = torch.mps.get_rng_state()
    np_state = np.random.get_state()
    tensors["numpy"] = torch.from_numpy(np_state[1].astype(np.int64))
    version, internal, gauss = random.getstate()
    return tensors, {
        "python": [version, list(internal), gauss],
        "numpy": [np_state[0], *np_state[2:]],
    }


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Restore what `rng_state` returned."""
    torch.set_rng_state(tensors["torch"])
    cuda_states = [tensors[f"cuda.{i}"] for i in range(len(tensors)) if f"cuda.{i}" in tensors]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    if "mps" in tensors and torch.backends.mps.is_available():
        torch.mps.set_rng_state(tensors["mps"])
    kind, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, tensors["numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP and/or torch.compile wrappers."""
    model = getattr(model, "_orig_mod", model)
    if isinstance(model, DistributedDataParallel):
        model = model.module
    return getattr(model, "_orig_mod", model)
