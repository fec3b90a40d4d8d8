"""`python -m benchmarks` without the bench extra: one line naming it, before anything trains."""

import sys

import pytest
import torch

from benchmarks.__main__ import main
from tests.conftest import real_data


@pytest.mark.parametrize("name, peer", [("rl-dqn", "stable_baselines3"), ("recsys", "surprise")])
def test_missing_peer_library_is_one_line_naming_the_extra(name, peer, monkeypatch):
    monkeypatch.setitem(sys.modules, peer, None)  # as if it were not installed
    monkeypatch.setattr(sys, "argv", ["python -m benchmarks", name, "--quick"])
    with pytest.raises(SystemExit) as exit_:
        main()
    message = str(exit_.value.code)
    assert message == f'python -m benchmarks {name} needs {peer}: pip install -e ".[bench]"'


def test_a_run_the_benchmark_refuses_is_one_line(monkeypatch, tmp_path, capsys):
    """A --keep-runs DIR that already holds one of the benchmark's runs: the run's one line."""
    import benchmarks.speech_adapt_tune as tune
    from core.errors import ShowcaseError

    def run(args):
        raise ShowcaseError(f"{tmp_path}/tune-plain-george already holds a run")

    monkeypatch.setattr(tune, "run", run)
    monkeypatch.setattr(sys, "argv", ["python -m benchmarks", "speech-adapt-tune", "--quick"])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 1 and len(err) == 1
    assert (
        err[0]
        == f"python -m benchmarks speech-adapt-tune: error: {tmp_path}/tune-plain-george already holds a run"
    )


def test_rl_quartiles_count_an_unsolved_run_as_slower_than_any_solved_one():
    from benchmarks.rl_dqn import quartiles

    assert quartiles([4, 1, 3, 2, 5]) == [2, 3, 4]
    assert quartiles([1, 2, None, None]) == [1.75, None, None]


def test_vision_detect_peers_train_and_score_on_the_same_scenes():
    from benchmarks.vision_detect import PEERS, peer_detect, score, train_peer
    from core.parse import build
    from vision.detect.data import make_data
    from vision.detect.train import DetectConfig

    cfg = build(
        DetectConfig,
        synthetic=True,
        image_size=64,
        max_digits=3,
        max_scale=1.5,
        batch_size=4,
        val_scenes=0,
        test_scenes=4,
        device="cpu",
    )
    data = make_data(cfg)
    assert set(PEERS) == {"ssdlite", "fcos"}
    fcos, steps, stopped = train_peer(
        "fcos", cfg, data.pool, budget=600, device=torch.device("cpu"), max_steps=2
    )
    assert steps == 2 and stopped is None and not fcos.training
    assert fcos.transform.min_size == (64,) and fcos.transform.max_size == 64  # no resize
    dets = peer_detect("fcos", fcos, data.test.images)
    assert len(dets) == 4 and all(((d["labels"] >= 0) & (d["labels"] < 10)).all() for d in dets)
    assert set(score(dets, data.test)) == {"map", "map_50"}


def test_speech_cnn_peer_trains_and_scores_the_single_test_clips():
    from benchmarks.speech_cnn import DigitCNN, cnn_peer
    from core.parse import build
    from speech.ctc.train import SpeechConfig

    assert DigitCNN()(torch.randn(3, 40, 101)).shape == (3, 10)
    cfg = build(SpeechConfig, synthetic=True, device="cpu", out_dir="unused")
    result = cnn_peer(cfg, epochs=2)
    # synthetic clips: 2 speakers x 10 digits x 12 takes; takes 0-4 test, take 11 validation
    assert result["test_clips"] == 100 and result["train_clips"] == 120
    assert 0 <= result["clip_acc"] <= 1 and 0 <= result["val_acc"] <= 1
    assert result["epoch"] in (1, 2) and result["train_seconds"] > 0


def test_speech_benchmark_reports_both_peers(monkeypatch):
    import dataclasses

    import benchmarks.speech_ctc as bench
    from benchmarks.__main__ import BenchConfig

    def train(args, name, **overrides):  # a stand-in for each CTC run (ours, probe, Wav2Letter)
        metrics = {"test_wer": 0.5, "test_cer": 0.25, "test_wer_greedy": 0.5, "clip_acc": 0.75}
        return {
            "metrics": metrics,
            "steps": 3,
            "wall_seconds": 2.0,
            "device": "cpu",
            "config": {"out_dir": "unused"},
        }

    real_peer = bench.cnn_peer
    monkeypatch.setattr(bench, "train", train)
    monkeypatch.setattr(bench, "transcribe_seconds", lambda *_: 0.01)
    monkeypatch.setattr(bench, "shift_table", lambda args, report: {"clean": 0.75})
    monkeypatch.setattr(
        bench,
        "cnn_peer",
        lambda cfg, epochs: real_peer(dataclasses.replace(cfg, synthetic=True), epochs=epochs),
    )
    args = BenchConfig("speech-ctc", quick=True, device="cpu")
    result = bench.run(args)
    assert result["clip_acc"] == 0.75 and result["wav2letter_test_wer"] == 0.5
    assert result["plain_clip_acc"] == 0.75 and result["shift_default"] == {"clean": 0.75}
    assert 0 <= result["cnn_clip_acc"] <= 1 and result["cnn_epochs"] == "1 of 1"


def test_speech_loso_reports_each_speaker(monkeypatch):
    import benchmarks.speech_ctc as bench
    import benchmarks.speech_loso as loso
    from benchmarks.__main__ import BenchConfig

    held_out = []

    def train(args, name, **overrides):  # a stand-in for one leave-one-speaker-out run
        held_out.append(overrides["holdout_speaker"])
        return {"metrics": {"test_wer": 0.1 * len(held_out)}}

    monkeypatch.setattr(bench, "train", train)
    result = loso.run(BenchConfig("speech-loso", device="cpu"))
    assert held_out == bench.SPEAKERS
    assert result["loso_wer"]["george"] == 0.1 and result["loso_wer_max"] == 0.6
    assert abs(result["loso_wer_mean"] - 0.35) < 1e-9


def test_speech_adapt_starts_from_the_speakers_loso_run(monkeypatch, tmp_path):
    import benchmarks.speech_adapt as adapt
    from benchmarks.__main__ import BenchConfig

    runs = []

    def train(args, name, **overrides):  # a stand-in for each run: LOSO, adapted, plain, scratch
        runs.append((name, overrides))
        wer = {"loso": 0.3, "adapt": 0.05, "plain": 0.1, "scratch": 0.5}[name.split("-")[0]]
        config = {"out_dir": str(tmp_path / name)}
        return {"metrics": {"test_wer": wer}, "wall_seconds": 60.0, "config": config}

    monkeypatch.setattr(adapt, "train", train)
    monkeypatch.setattr(adapt, "zero_shot", lambda base, config, device, data_dir, part: 0.3)
    result = adapt.run(BenchConfig("speech-adapt", device="cpu", quick=True))
    names = [name for name, _ in runs]
    assert names == ["loso-george", "adapt-george", "plain-george", "scratch-george"]
    assert runs[1][1]["init_from"] == str(tmp_path / "loso-george")
    assert runs[1][1]["adapt_val_takes"] == adapt.VAL_TAKES  # the test takes leave those out
    assert "init_from" not in runs[3][1] and runs[1][1]["adapt_takes"] == adapt.TAKES
    for (_, fields), recipe in zip(runs[1:], ["chosen", "plain", "chosen"], strict=True):
        recipe = adapt.RECIPES[adapt.CHOSEN if recipe == "chosen" else recipe]
        assert fields.pop("max_steps") == 2  # --quick's, over the recipe's
        assert {k: v for k, v in recipe.items() if k != "max_steps"}.items() <= fields.items()
        assert not set(adapt.RECIPES[adapt.CHOSEN]) - set(recipe) & set(fields)  # no other's
    assert result["george"]["zero_shot_wer"] == 0.3 and result["george"]["adapted_wer"] == 0.05
    assert result["george"]["scratch_wer"] == 0.5 and result["george"]["plain_wer"] == 0.1


def test_speech_adapt_tune_scores_validation_alone_and_picks_the_best(monkeypatch, tmp_path):
    import benchmarks.speech_adapt as adapt
    import benchmarks.speech_adapt_tune as tune
    from benchmarks.__main__ import BenchConfig

    runs = []
    val = {name: 0.01 * (k + 1) for k, name in enumerate(adapt.RECIPES)}
    val["cosine"] = val["levels"] = 0.005  # the lowest validation WER: a tie, cosine listed first

    def train(args, name, **overrides):
        runs.append((name, overrides))
        if name.startswith("loso-"):
            return {"config": {"out_dir": str(tmp_path / name)}}
        return {"metrics": {"val_wer": val[name.split("-", 1)[1].rsplit("-", 1)[0]]}, "config": {}}

    monkeypatch.setattr(tune, "train", train)
    monkeypatch.setattr(adapt, "train", train)
    monkeypatch.setattr(tune, "zero_shot", lambda base, config, device, data_dir, part: 0.03)
    result = tune.run(BenchConfig("speech-adapt-tune", device="cpu", quick=True))
    tuned = [overrides for name, overrides in runs if name.startswith("tune-")]
    assert len(tuned) == len(adapt.RECIPES) and all(o["test_utterances"] == 0 for o in tuned)
    assert result["best"] == "cosine" and result["cosine"]["speakers_met"] == 1
    assert result["plain"]["val_wer"] == {"george": 0.01} and result["plain"]["speakers_met"] == 0


def test_vision_detect_transfer_curves_both_starts(tmp_path):
    """--quick: the classifier, then the digits-backbone detector from scratch and from it, each
    with its test curve from the log (scored at every evaluation, never selecting)."""
    real_data("MNIST")
    import benchmarks.vision_detect_transfer as transfer
    from benchmarks.__main__ import BenchConfig

    args = BenchConfig("vision-detect-transfer", device="cpu", quick=True, keep_runs=str(tmp_path))
    row = transfer.run(args)
    for name in ("scratch", "from_digits"):
        assert sorted(row[f"{name}_curve"]) == [2, 4] and 0 <= row[f"{name}_map"] <= 1
        assert row[f"{name}_steps_to_target"] is None  # four steps reach no 0.80
    assert row["test_scenes"] == 8 and (tmp_path / "from_digits" / "model.safetensors").is_file()
