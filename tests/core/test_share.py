"""`push`: a finished run as a Hub-style model folder that loads where a run folder does."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from core.errors import ShowcaseError, UsageError
from core.run import BEST, CHECKPOINT, WEIGHTS
from showcase import catalog
from tests.test_demos import COMMAND_ARGS, IDS, READY, command_config
from tests.test_old_runs import FIXTURES


def push(demo, run: Path, to: Path, **fields) -> dict:
    command = catalog.commands(demo)["push"]
    return command(command_config(command, str(run), {"to": str(to), **fields}))


@pytest.mark.parametrize("demo", READY, ids=IDS)
def test_a_pushed_folder_holds_the_model_and_loads_where_a_run_does(demo, tmp_path):
    run = Path(shutil.copytree(FIXTURES / f"{demo.domain}-{demo.task}", tmp_path / "run"))
    (run / CHECKPOINT).write_bytes(b"training state")  # left behind, as the best weights
    written = push(demo, run, tmp_path / "shared")
    folder = Path(written["folder"])
    assert {WEIGHTS, "config.json", "metrics.json", "README.md"} <= set(written["files"])
    assert not {CHECKPOINT, BEST, "log.jsonl"} & set(written["files"])
    assert (folder / WEIGHTS).read_bytes() == (run / WEIGHTS).read_bytes()
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: torch-showcase\n")
    assert f"# {demo.name}: {demo.description}" in card
    assert "datasets: [synthetic data]" in card  # the fixture runs' real data: none
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    number = next(
        k for k, v in metrics.items() if isinstance(v, int | float) and "seconds" not in k
    )
    assert f"| {number} |" in card  # the run's own measured numbers
    evaluate = catalog.commands(demo)["eval"]
    make_args = COMMAND_ARGS[(demo.domain, demo.task)]["eval"]
    assert evaluate(command_config(evaluate, str(folder), make_args(tmp_path)))
    if demo.app:
        assert catalog.tab(demo).load(str(folder), torch.device("cpu")) is not None


def test_init_from_a_pushed_folder_loads_every_weight(tmp_path):
    from core.run import run_config, source_weights
    from core.transfer import init_from
    from vision import CLASSIFY
    from vision.classify.model import build_model

    run = Path(shutil.copytree(FIXTURES / "vision-classify", tmp_path / "run"))
    folder = Path(push(CLASSIFY, run, tmp_path / "shared")["folder"])
    cfg = run_config(folder)
    model = build_model(cfg["model"], cfg["channels"], cfg["dropout"])
    report = init_from(model, source_weights(str(folder)), str(folder))
    assert report["loaded"] == len(model.state_dict()) and not report["reinitialised"]


def test_push_refuses_in_one_line_and_keeps_what_is_written(tmp_path, monkeypatch):
    from rl import DQN
    from vision import CLASSIFY

    run = Path(shutil.copytree(FIXTURES / "vision-classify", tmp_path / "run"))
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="exists and is not an empty folder"):
        push(CLASSIFY, run, taken)
    assert (taken / "notes.txt").read_text() == "mine"
    with pytest.raises(ShowcaseError, match="holds a vision.classify run, not rl.dqn"):
        push(DQN, run, tmp_path / "other")
    with pytest.raises(ShowcaseError, match="no trained model in"):
        push(CLASSIFY, tmp_path / "nothing", tmp_path / "none")
    assert not (tmp_path / "other").exists() and not (tmp_path / "none").exists()
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no stored token either
    with pytest.raises(ShowcaseError, match="--repo needs a Hugging Face token"):
        push(CLASSIFY, run, tmp_path / "a", repo="someone/digits")
    assert not (tmp_path / "a").exists()  # refused before anything was written
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: offline
    with pytest.raises(ShowcaseError, match="could not upload .* `hf upload someone/digits"):
        push(CLASSIFY, run, tmp_path / "b", repo="someone/digits")
    assert (tmp_path / "b" / WEIGHTS).is_file()  # written before the upload failed
    (run / "metrics.json").unlink()  # weights, but training stopped before its report
    with pytest.raises(ShowcaseError, match="has no metrics.json: its training did not finish"):
        push(CLASSIFY, run, tmp_path / "c")


def test_the_card_names_the_demos_dataset_and_its_terms(tmp_path, monkeypatch):
    import core.share
    from vision import CLASSIFY

    run = Path(shutil.copytree(FIXTURES / "vision-classify", tmp_path / "run"))
    monkeypatch.setattr(core.share, "run_config", lambda run_dir: {"seed": 0})  # real data
    card = core.share.model_card(CLASSIFY, run)
    assert "datasets: [MNIST]" in card and CLASSIFY.licence in card
    mine = {"seed": 0, "hf_dataset": "/data/my_digits"}
    monkeypatch.setattr(core.share, "run_config", lambda run_dir: mine)
    card = core.share.model_card(CLASSIFY, run)
    assert "datasets:" not in card and CLASSIFY.licence not in card  # Hub metadata: Hub data only
    title = next(line for line in card.splitlines() if line.startswith("# "))
    assert title.endswith("CNN digit classifier, trained on the data in my_digits")
    monkeypatch.setattr(core.share, "run_config", lambda d: {"seed": 0, "hf_dataset": "ann/digits"})
    card = core.share.model_card(CLASSIFY, run)
    assert "datasets: [ann/digits]" in card and "See the terms of ann/digits" in card
