"""`push`: a finished run as a Hugging Face Hub-style model folder (the weights, the config, the
run's metrics and a model card), uploaded with `huggingface_hub` when a repository is named.

    showcase vision classify push --to shared/classifier [--repo owner/name]

The folder loads where a run folder does: `--init-from FOLDER` (or `hf:owner/name` once
uploaded), `eval`/`predict --out-dir FOLDER`, and `showcase app --runs DIR` with the folder at the
demo's place in DIR. Training state (the resumable checkpoint, the best-so-far weights, the log) is
left behind.
"""

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from core.config import ChangesDefaults
from core.demo import Demo
from core.errors import ShowcaseError, UsageError
from core.files import write_text
from core.run import BEST, CHECKPOINT, REPORT, check_task, run_config
from core.sidecar import commit

LEFT_BEHIND = {CHECKPOINT, BEST, "log.jsonl"}
"""Files of a run folder that are training state, not the model."""


@dataclasses.dataclass
class PushConfig(ChangesDefaults):
    """Write a finished run as a Hub-style model folder and, with --repo, upload it."""

    to: str
    """The model folder to write (new, or empty)."""
    out_dir: str = "runs/default"
    """Run directory of the trained model."""
    repo: str | None = None
    """Upload the folder to this Hugging Face Hub repository (owner/name); needs a token
    (`hf auth login` or $HF_TOKEN) and network."""
    private: bool = False
    """With --repo: create the repository as private."""
    json: bool = False
    """Print one JSON object instead of text."""


def push_command(demo: Demo) -> Callable[[PushConfig], dict]:
    """The demo's `push` command: a function of its own PushConfig (whose --out-dir default is
    the demo's run folder), so every domain lists it in one line of COMMANDS."""
    config = dataclasses.dataclass(type("PushConfig", (PushConfig,), {"DEMO": demo}))

    def push_run(cfg: config) -> dict:
        return push(cfg)

    push_run.__annotations__ = {"cfg": config, "return": dict}
    return push_run


def push(cfg: PushConfig) -> dict:
    """Write the run in `cfg.out_dir` as a model folder at `cfg.to`; upload it to `cfg.repo` if
    named. Returns {"folder", "files", "url"}."""
    demo: Demo = type(cfg).DEMO
    check_task(cfg.out_dir, f"{demo.domain}.{demo.task}")
    target = Path(cfg.to)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"--to {cfg.to} exists and is not an empty folder: choose a new one")
    run_dir = Path(cfg.out_dir)
    if not (run_dir / REPORT).is_file():
        raise ShowcaseError(f"{run_dir} has no {REPORT}: its training did not finish")
    if cfg.repo:
        hub_token()  # before anything is written: no token, no folder to clean up
    files = sorted(p for p in run_dir.iterdir() if p.is_file() and p.name not in LEFT_BEHIND)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".push-") as scratch:
        folder = Path(scratch) / "model"
        folder.mkdir()
        for path in files:
            shutil.copy2(path, folder / path.name)
        write_text(folder / "README.md", model_card(demo, run_dir))
        if target.exists():
            target.rmdir()
        os.replace(folder, target)  # the folder appears whole or not at all
    written = {
        "folder": str(target),
        "files": sorted(p.name for p in target.iterdir()),
        "url": None,
    }
    if cfg.repo:
        written["url"] = upload(target, cfg.repo, cfg.private)
    where = f" and uploaded it to {written['url']}" if written["url"] else ""
    print(json.dumps(written) if cfg.json else f"wrote {target}{where}")
    return written


def model_card(demo: Demo, run_dir: Path) -> str:
    """The folder's README.md: Hub metadata (library, tags, dataset, licence), what the model is,
    the run's measured metrics, its data and licence, and how to use it."""
    report = json.loads((run_dir / REPORT).read_text())
    metrics = {
        k: v
        for k, v in report.get("metrics", {}).items()
        if isinstance(v, int | float) and "seconds" not in k  # measures, not timings
    }
    rows = "\n".join(f"| {k} | {v:.6g} |" for k, v in metrics.items())
    config = run_config(run_dir)
    seed = config.get("seed")
    dataset, licence = demo.dataset, demo.licence or "See the dataset's own terms."
    local, title = False, f"{demo.name}: {demo.description}"
    if config.get("hf_dataset"):
        source = config["hf_dataset"]
        local = Path(source).is_absolute() or Path(source).exists()
        dataset = f"the data in {Path(source).name}" if local else source
        licence = f"See the terms of {dataset}, the run's own data (--hf-dataset)."
        title += f", trained on {dataset}"
    if config.get("synthetic"):
        dataset, licence = "synthetic data", "A smoke test on generated data: no dataset terms."
    hub_data = "" if local else f"datasets: [{dataset}]\n"  # Hub metadata names Hub datasets
    steps, seconds = report.get("steps"), report.get("wall_seconds") or 0
    trained = f"{steps} steps, {seconds:.0f} s on {report.get('device')}, seed {seed}"
    return f"""---
library_name: torch-showcase
tags: [torch-showcase, pytorch, {demo.domain}, {demo.task}]
{hub_data}license: other
---

# {title}

Trained by torch-showcase's `showcase {demo.name} train` ({trained}); pushed from commit
{commit() or "unknown"}. `config.json` holds every setting of the run.

## Results

Measured by the run on its own validation and test data (`metrics.json`):

| metric | value |
| --- | --- |
{rows}

## Data and licence

The weights are derived from {dataset}, whose terms apply to them too: {licence}

## Use

```
showcase {demo.name} eval --out-dir FOLDER
showcase {demo.name} train --init-from FOLDER     # fine-tune (or --init-from hf:owner/name)
```
"""


def hub_token() -> str:
    """The Hugging Face token (`hf auth login` or $HF_TOKEN), or one line saying how to get one."""
    try:
        import huggingface_hub
    except ImportError:
        raise ShowcaseError("--repo needs huggingface_hub: pip install huggingface_hub") from None
    token = huggingface_hub.get_token()
    if not token:
        raise ShowcaseError(
            "--repo needs a Hugging Face token: run `hf auth login` or set HF_TOKEN"
        )
    return token


def upload(folder: Path, repo: str, private: bool) -> str:
    """Upload `folder` to the Hub repository `repo` (created if missing); its URL. No token, no
    network or a refusal: one line, and the folder stays written."""
    import huggingface_hub

    hub_token()
    try:
        api = huggingface_hub.HfApi()
        api.create_repo(repo, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo)
    except Exception as exc:  # offline, refused, rate-limited: one line
        raise ShowcaseError(
            f"could not upload {folder} to {repo} ({type(exc).__name__}); it stays written: "
            f"`hf upload {repo} {folder}` uploads it later"
        ) from None
    return f"https://huggingface.co/{repo}"
