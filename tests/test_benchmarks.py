"""`python -m benchmarks` without the bench extra: one line naming it, before anything trains."""

import sys

import pytest
import torch

from benchmarks.__main__ import main


@pytest.mark.parametrize("name, peer", [("rl-dqn", "stable_baselines3"), ("recsys", "surprise")])
def test_missing_peer_library_is_one_line_naming_the_extra(name, peer, monkeypatch):
    monkeypatch.setitem(sys.modules, peer, None)  # as if it were not installed
    monkeypatch.setattr(sys, "argv", ["python -m benchmarks", name, "--quick"])
    with pytest.raises(SystemExit) as exit_:
        main()
    message = str(exit_.value.code)
    assert message == f'python -m benchmarks {name} needs {peer}: pip install -e ".[bench]"'


def test_rl_quartiles_count_an_unsolved_run_as_slower_than_any_solved_one():
    from benchmarks.rl_dqn import quartiles

    assert quartiles([4, 1, 3, 2, 5]) == [2, 3, 4]
    assert quartiles([1, 2, None, None]) == [1.75, None, None]


def test_vision_detect_peers_train_and_score_on_the_same_scenes():
    from benchmarks.vision_detect import PEERS, peer_detect, score, train_peer
    from core.config import build
    from vision.detect.train import DetectConfig, make_data

    cfg = build(DetectConfig, synthetic=True, image_size=64, max_digits=3, max_scale=1.5,
                batch_size=4, val_scenes=0, test_scenes=4, device="cpu")  # fmt: skip
    data = make_data(cfg)
    assert set(PEERS) == {"ssdlite", "fcos"}
    fcos, steps, stopped = train_peer("fcos", cfg, data.pool, budget=600, device=torch.device("cpu"),
                                      max_steps=2)  # fmt: skip
    assert steps == 2 and stopped is None and not fcos.training
    assert fcos.transform.min_size == (64,) and fcos.transform.max_size == 64  # no resize
    dets = peer_detect("fcos", fcos, data.test.images)
    assert len(dets) == 4 and all(((d["labels"] >= 0) & (d["labels"] < 10)).all() for d in dets)
    assert set(score(dets, data.test)) == {"map", "map_50"}
