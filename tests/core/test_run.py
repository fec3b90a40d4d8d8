"""One run-state for every loop: resume checks, early stopping, interrupts, tied weights, reports."""

import json
import os
import signal
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.checkpoint import load_weights, read_file, save_checkpoint, save_weights
from core.command import resume_hint
from core.config import TrainConfig
from core.errors import ShowcaseError
from core.files import atomic_write
from core.loop import fit, setup
from core.models import MLP
from core.run import Run
from core.tensor_data import TensorLoader
from core.watch import Samples
from tests.core.test_loop import blobs, crashes_at, step, train


class TiedLM(nn.Module):
    """An embedding shared with the output layer, as the translation Transformer has."""

    def __init__(self, vocab_size=11, d_model=6):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.out = nn.Linear(d_model, vocab_size, bias=False)
        self.out.weight = self.embed.weight

    def forward(self, x):
        return self.out(self.embed(x))


def test_tied_weights_save_and_load(tmp_path):
    model = TiedLM()
    save_weights(model, tmp_path / "w.safetensors")  # main: "Some tensors share memory"
    again = TiedLM()
    load_weights(again, tmp_path / "w.safetensors")
    assert torch.equal(again.embed.weight, model.embed.weight)
    assert again.out.weight is again.embed.weight  # still one parameter
    opt = torch.optim.Adam(model.parameters())
    save_checkpoint(tmp_path / "c.safetensors", model, opt, None, None, {})
    tensors, _ = read_file(tmp_path / "c.safetensors")
    assert torch.equal(tensors["model.out.weight"], model.embed.weight.detach())


def test_tied_model_trains_and_resumes(tmp_path):
    cfg = TrainConfig(out_dir=str(tmp_path / "r"), max_steps=6, batch_size=8, ckpt_every=3)
    device = setup(cfg)
    x = torch.randint(0, 11, (64,))
    fit(
        TiedLM(),
        lambda m, b: (F.cross_entropy(m(b[0]), b[0]), {}),
        TensorLoader.for_config((x,), cfg),
        cfg,
        device=device,
    )
    assert (tmp_path / "r" / "model.safetensors").exists()


def monitored(tmp_path, scores, name="es", **overrides):
    fields = {
        "max_steps": 100,
        "batch_size": 32,
        "lr": 0.05,
        "eval_every": 5,
        "patience": 2,
        **overrides,
    }
    cfg = TrainConfig(out_dir=str(tmp_path / name), **fields)
    device = setup(cfg)
    torch.manual_seed(0)
    model = MLP(2, [16], 4)
    x, y = blobs()
    snapshots = {}

    def evaluate(m):
        snapshots[len(snapshots)] = {k: v.clone() for k, v in m.state_dict().items()}
        return {"score": scores[len(snapshots) - 1]}

    result = fit(
        model,
        step,
        TensorLoader.for_config((x, y), cfg),
        cfg,
        device=device,
        evaluate=evaluate,
        monitor="score",
    )
    return model, result, snapshots


def test_early_stopping_restores_the_best_weights(tmp_path):
    model, result, snapshots = monitored(tmp_path, [0.5, 0.9, 0.8, 0.7, 0.95])
    assert result.stopped_early and result.steps == 20 and result.best == {"score": 0.9}
    for name, value in model.state_dict().items():  # the weights evaluated second (step 10)
        assert torch.equal(value, snapshots[1][name])
    _, meta = read_file(tmp_path / "es" / "model.safetensors")
    assert meta["step"] == 10 and result.weights_step == 10  # main recorded step 20


def test_resume_after_early_stopping_trains_on(tmp_path):
    _, first, _ = monitored(tmp_path, [0.5, 0.9, 0.8, 0.7], max_steps=40)
    assert first.stopped_early and first.steps == 20
    improving = [0.91 + 0.001 * k for k in range(8)]
    _, result, _ = monitored(tmp_path, improving, max_steps=60, resume=True)
    assert result.steps == 60 and not result.stopped_early and result.weights_step == 60


@pytest.mark.parametrize(
    "change, message",
    [
        ({"seed": 1}, "--seed was 0 in the saved run, now 1"),
        ({"batch_size": 64}, "--batch-size was 32"),
        ({"max_steps": 4}, "past --max-steps 4"),
    ],
)
def test_resume_with_a_changed_config_is_refused(tmp_path, change, message):
    train(tmp_path, max_steps=10)
    with pytest.raises(ShowcaseError, match=message):
        train(tmp_path, **{"max_steps": 10, **change, "resume": True})
    model, result = train(tmp_path, max_steps=15, resume=True)  # more steps are fine
    assert result.steps == 15


def test_fit_refuses_a_plain_dataloader_at_the_start(tmp_path):
    cfg = TrainConfig(out_dir=str(tmp_path / "dl"), max_steps=5, batch_size=32)
    device = setup(cfg)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*blobs()), batch_size=32)
    with pytest.raises(ShowcaseError, match="endless loader with state_dict, load_state_dict"):
        fit(MLP(2, [8], 4), step, loader, cfg, device=device)


def test_fit_refuses_a_loader_built_for_another_grad_accum(tmp_path):
    cfg = TrainConfig(out_dir=str(tmp_path / "ga"), max_steps=5, batch_size=32, grad_accum=2)
    device = setup(cfg)
    with pytest.raises(ShowcaseError, match="built for grad_accum 1 but --grad-accum is 2"):
        fit(MLP(2, [8], 4), step, TensorLoader(blobs(), 32), cfg, device=device)
    loader = TensorLoader.for_config(blobs(), TrainConfig(batch_size=32, grad_accum=2, seed=3))
    assert (loader.grad_accum, loader.seed, loader.chunk) == (2, 3, 16)


def test_log_reports_real_samples_and_the_rate_each_step_used(tmp_path):
    # recsys asks for 1,000,000 samples a step and gets the whole (smaller) data set.
    _, result = train(tmp_path, max_steps=5, log_every=5, schedule="linear", lr=0.1)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["lr"] == pytest.approx(0.1 * (1 - 4 / 5))  # main logged 0.0 after the last step
    counter = Samples()
    counter.add((torch.zeros(7, 2), torch.zeros(7)))
    counter.add((torch.zeros(5, 2), torch.zeros(5)))
    assert counter.count == 12


def test_ctrl_c_writes_a_checkpoint_and_resume_is_exact(tmp_path):
    straight, _ = train(tmp_path, "straight", max_steps=20)
    calls = 0

    def interrupted(model, batch):
        nonlocal calls
        calls += 1
        if calls == 8:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C in the middle of step 8
        return step(model, batch)

    with pytest.raises(KeyboardInterrupt):
        train(tmp_path, "cut", interrupted, max_steps=20)  # no --ckpt-every: none on schedule
    _, meta = read_file(tmp_path / "cut" / "checkpoint.safetensors")
    assert meta["state"]["step"] == 8
    resumed, _ = train(tmp_path, "cut", max_steps=20, resume=True)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_interrupt_hint_tells_whether_a_checkpoint_exists(tmp_path):
    cfg = TrainConfig(out_dir=str(tmp_path / "h"))
    assert "no checkpoint was written yet" in resume_hint(cfg)
    train(tmp_path, "h", max_steps=3)
    assert "continue with --resume" in resume_hint(cfg) and "step 3" in resume_hint(cfg)


def test_run_counts_checkpoints_for_loops_that_advance_several_steps(tmp_path):
    cfg = TrainConfig(out_dir=str(tmp_path / "s"), ckpt_every=10, max_steps=100)
    run = Run(cfg, MLP(2, [4], 2))
    saved = []
    run.save = lambda: saved.append(run.state.step)
    for _ in range(10):
        run.state.step += 4  # four environments side by side
        run.end_step()
    assert saved == [12, 20, 32, 40]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")

    def failing(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, failing)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["metrics.json"]
    atomic_write(tmp_path / "new.json", lambda tmp: Path(tmp).write_text("{}"))
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o666 & ~mask  # as open() would


class Clock:
    """A stand-in for `time` in core.run: each step of `slow` takes 0.05 s of it, whatever the
    machine's load."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def slow(monkeypatch):
    import core.run

    clock = Clock()
    monkeypatch.setattr(core.run, "time", clock)

    def slow_step(model, batch):
        clock.now += 0.05
        return step(model, batch)

    return slow_step


def test_max_seconds_stops_training_and_says_so(tmp_path, slow):
    _, result = train(tmp_path, "timed", slow, max_steps=1000, max_seconds=0.3)
    assert result.steps == 6 and result.stopped_early  # 6 steps of 0.05 s reach 0.3 s
    _, meta = read_file(tmp_path / "timed" / "checkpoint.safetensors")
    assert meta["state"]["step"] == result.steps  # the stop wrote its checkpoint


def test_a_run_stopped_by_max_seconds_continues_on_resume(tmp_path, slow):
    _, first = train(tmp_path, "timed", slow, max_steps=40, max_seconds=0.3)
    assert first.stopped_early and first.steps == 6
    # The same command again trains on (main trained nothing): the budget counts from this start.
    _, again = train(tmp_path, "timed", slow, max_steps=40, max_seconds=0.3, resume=True)
    assert again.steps == 12 and again.stopped_early
    model, last = train(tmp_path, "timed", max_steps=40, resume=True)  # no time limit: finish
    assert last.steps == 40 and not last.stopped_early
    straight, _ = train(tmp_path, "straight", max_steps=40)
    for a, b in zip(straight.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # three time-cut segments resume exactly


def logged_steps(run_dir, kind="train"):
    lines = (Path(run_dir) / "log.jsonl").read_text().splitlines()
    return [r["step"] for r in map(json.loads, lines) if r["kind"] == kind]


def test_a_new_run_starts_a_fresh_log_and_a_resumed_one_appends(tmp_path):
    with pytest.raises(RuntimeError):
        train(tmp_path, "r", crashes_at(8), max_steps=20)  # crashes before its first checkpoint
    assert logged_steps(tmp_path / "r") == [5]
    train(tmp_path, "r", max_steps=20, ckpt_every=10)  # a new run in that folder
    assert logged_steps(tmp_path / "r") == [5, 10, 15, 20]  # main: [5, 5, 10, 15, 20]
    with pytest.raises(RuntimeError):
        train(tmp_path, "r", crashes_at(8), max_steps=28, ckpt_every=10, resume=True)  # step 28
    assert logged_steps(tmp_path / "r") == [5, 10, 15, 20, 25]
    train(tmp_path, "r", max_steps=30, ckpt_every=10, resume=True)  # from the step-20 checkpoint
    assert logged_steps(tmp_path / "r") == [5, 10, 15, 20, 25, 30]  # main: 25 twice


def test_tensorboard_hides_a_crashed_run_and_the_steps_a_resume_redoes(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from core.logger import RunLogger

    def segment(start, steps, offset):
        logger = RunLogger(tmp_path, 30, start, True, tensorboard=True)
        for s in steps:
            logger.log("train", s, {"loss": s + offset})
        logger.close()
        events = EventAccumulator(str(tmp_path / "tensorboard"))
        events.Reload()
        return [(e.step, e.value) for e in events.Scalars("train/loss")]

    segment(0, [5, 10, 15], 0.0)  # crashed
    assert segment(0, [5, 10], 100.0) == [(5, 105.0), (10, 110.0)]  # a new run
    assert segment(5, [10, 15], 200.0) == [(5, 105.0), (10, 210.0), (15, 215.0)]  # resumed at 5
