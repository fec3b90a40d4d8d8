import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from core.checkpoint import load_weights, save_weights
from core.config import TrainConfig
from core.errors import ShowcaseError
from core.loop import fit, setup
from core.metrics import accuracy
from core.models import MLP
from core.tensor_data import TensorLoader


def blobs(n=256, seed=0):
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=gen)
    centers = torch.tensor([[3.0, 0], [0, 3.0], [-3.0, 0], [0, -3.0]])
    x = centers[y] + 0.5 * torch.randn(n, 2, generator=gen)
    return x, y


def step(model, batch):
    x, y = batch
    logits = model(x)
    return F.cross_entropy(logits, y), {"acc": accuracy(logits.detach(), y)}


def train(tmp_path, name="run", step_fn=step, dropout=0.2, **overrides):
    fields = {"max_steps": 20, "batch_size": 32, "lr": 0.05, "log_every": 5, **overrides}
    cfg = TrainConfig(out_dir=str(tmp_path / name), **fields)
    device = setup(cfg)
    model = MLP(2, [32, 32], 4, dropout=dropout)
    x, y = blobs()
    loader = TensorLoader((x, y), cfg.batch_size, grad_accum=cfg.grad_accum, seed=cfg.seed)
    result = fit(model, step_fn, loader, cfg, device=device)
    return model, result


def test_fit_reaches_full_train_accuracy(tmp_path):
    model, result = train(tmp_path, max_steps=200, dropout=0.0)
    x, y = blobs()
    assert result.steps == 200
    assert accuracy(model(x), y).item() == 1.0
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 200 and "samples_per_s" in log[-1]


def crashes_at(call: int):
    """A step that raises on its `call`-th call: a run killed mid-training."""
    calls = 0

    def crashing_step(model, batch):
        nonlocal calls
        calls += 1
        if calls == call:
            raise RuntimeError("simulated crash")
        return step(model, batch)

    return crashing_step


@pytest.mark.parametrize("ema", [0.0, 0.9], ids=["plain", "ema"])
def test_resume_is_bit_exact(tmp_path, ema):
    opts = {"ckpt_every": 5, "schedule": "cosine", "warmup_steps": 3, "ema": ema}
    straight, _ = train(tmp_path, "straight", **opts)
    with pytest.raises(RuntimeError):
        train(tmp_path, "resumed", crashes_at(13), **opts)
    resumed, result = train(tmp_path, "resumed", resume=True, **opts)
    assert result.steps == 20
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_ema_changes_the_kept_weights(tmp_path):
    plain, _ = train(tmp_path, "plain")
    averaged, _ = train(tmp_path, "averaged", ema=0.9)
    assert not torch.equal(plain.state_dict()["0.weight"], averaged.state_dict()["0.weight"])


def test_grad_accum_matches_one_big_batch(tmp_path):
    one, _ = train(tmp_path, "one", dropout=0.0)
    two, _ = train(tmp_path, "two", dropout=0.0, grad_accum=2)
    for a, b in zip(one.state_dict().values(), two.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_non_finite_loss_stops_with_step(tmp_path):
    def exploding(model, batch):
        loss, metrics = step(model, batch)
        return loss * float("nan") if metrics[
            "acc"
        ] >= 0 and exploding.calls == 7 else loss, metrics

    exploding.calls = 0

    def counting(model, batch):
        exploding.calls += 1
        return exploding(model, batch)

    with pytest.raises(
        ShowcaseError, match=r"loss is nan at step 7; last good checkpoint: .*step 5"
    ):
        train(tmp_path, step_fn=counting, ckpt_every=5)


def test_early_stopping_keeps_best_weights(tmp_path):
    cfg = TrainConfig(
        out_dir=str(tmp_path / "es"),
        max_steps=100,
        batch_size=32,
        lr=0.05,
        eval_every=5,
        patience=2,
    )
    device = setup(cfg)
    model = MLP(2, [16], 4)
    x, y = blobs()
    scores = iter([0.5, 0.9, 0.8, 0.7, 0.95])
    result = fit(
        model,
        step,
        TensorLoader((x, y), 32),
        cfg,
        device=device,
        evaluate=lambda m: {"score": next(scores)},
        monitor="score",
    )
    assert result.stopped_early and result.steps == 20
    assert result.best == {"score": 0.9}


def test_finished_run_is_not_overwritten(tmp_path):
    train(tmp_path, max_steps=3)
    before = (tmp_path / "run" / "checkpoint.safetensors").read_bytes()
    with pytest.raises(ShowcaseError, match="already holds a run"):
        train(tmp_path, max_steps=3)
    assert (tmp_path / "run" / "checkpoint.safetensors").read_bytes() == before


def test_resume_without_checkpoint_is_clear(tmp_path):
    with pytest.raises(ShowcaseError, match="nothing to resume"):
        setup(TrainConfig(out_dir=str(tmp_path / "none"), resume=True))


def test_shape_mismatch_names_tensor_and_shapes(tmp_path):
    save_weights(MLP(2, [32], 4), tmp_path / "w.safetensors")
    with pytest.raises(
        ShowcaseError, match=r"'0.weight' has shape \(32, 2\) in the checkpoint but \(64, 2\)"
    ):
        load_weights(MLP(2, [64], 4), tmp_path / "w.safetensors")


def test_corrupt_checkpoint_is_one_line_error(tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ShowcaseError, match="not a readable safetensors"):
        load_weights(MLP(2, [4], 4), tmp_path / "bad.safetensors")


def test_loader_shards_and_resumes():
    x = torch.arange(10)
    loader = TensorLoader((x,), 4, seed=1)
    it = iter(loader)
    first = [next(it)[0] for _ in range(3)]  # 2 per epoch: crosses an epoch
    assert loader.state_dict() == {"epoch": 1, "pos": 4}
    assert len(set(torch.cat(first[:2]).tolist())) == 8
    again = TensorLoader((x,), 4, seed=1)
    again.load_state_dict({"epoch": 1, "pos": 0})
    assert torch.equal(next(iter(again))[0], first[2])


def test_config_saved_in_run_dir(tmp_path):
    cfg = TrainConfig(out_dir=str(tmp_path / "c"), lr=0.123)
    setup(cfg)
    saved = json.loads((tmp_path / "c" / "config.json").read_text())
    assert TrainConfig(**saved) == dataclasses.replace(cfg)


def test_loader_shards_over_two_ranks(monkeypatch):
    import core.tensor_data as tensor_data

    x = torch.arange(64)
    whole = [next(iter(TensorLoader((x,), 16, seed=5)))[0]]
    shards = []
    for rank in (0, 1):
        monkeypatch.setattr(tensor_data.distributed, "world_size", lambda: 2)
        monkeypatch.setattr(tensor_data.distributed, "rank", lambda r=rank: r)
        shards.append(next(iter(TensorLoader((x,), 16, seed=5)))[0])
    assert len(shards[0]) == len(shards[1]) == 8
    assert torch.equal(torch.cat(shards), whole[0])  # together: the 1-process batch, in order


def test_single_process_jobs_refuse_torchrun(monkeypatch, tmp_path):
    from core.parse import build
    from recsys.mf.train import MFTrainConfig
    from recsys.mf.train import main as mf_main
    from rl.dqn.train import DQNConfig
    from rl.dqn.train import main as dqn_main

    monkeypatch.setenv("WORLD_SIZE", "2")
    for main, cls in ((dqn_main, DQNConfig), (mf_main, MFTrainConfig)):
        cfg = build(cls, synthetic=True, max_steps=3, out_dir=str(tmp_path / cls.__name__))
        with pytest.raises(ShowcaseError, match="runs in one process; start it without torchrun"):
            main(cfg)
        assert not (tmp_path / cls.__name__).exists()  # refused before writing anything
