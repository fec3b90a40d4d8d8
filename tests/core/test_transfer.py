"""`--init-from` and `--freeze`: what fits is loaded and said, frozen weights stay bit-identical,
and a source that fits nothing, or a pattern that matches nothing, is one line."""

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from core.errors import ShowcaseError, UsageError
from core.parse import build
from core.run import source_weights
from core.transfer import freeze, init_from
from vision.classify.train import ClassifyConfig, main


def test_matching_tensors_load_and_a_new_head_is_reinitialised(tmp_path, capsys):
    from safetensors.torch import save_file

    source = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    save_file(source.state_dict(), tmp_path / "model.safetensors")
    target = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 5))  # 5 classes now
    head = target[2].weight.clone()
    report = init_from(target, tmp_path / "model.safetensors", "the source")
    assert report["loaded"] == 2 and report["reinitialised"] == ["2.weight", "2.bias"]
    assert torch.equal(target[0].weight, source[0].weight)
    assert torch.equal(target[2].weight, head)  # its fresh initialisation
    line = capsys.readouterr().out.strip()
    assert (
        line
        == "--init-from the source: loaded 2 of 4 tensors; re-initialised 2.weight, 2.bias; skipped none"
    )


def test_a_run_starts_from_another_and_frozen_weights_stay_bit_identical(tmp_path, capsys):
    first = tmp_path / "first"
    main(build(ClassifyConfig, out_dir=str(first), max_steps=3, synthetic=True, device="cpu"))
    second = tmp_path / "second"
    main(
        build(
            ClassifyConfig,
            out_dir=str(second),
            max_steps=3,
            synthetic=True,
            device="cpu",
            init_from=str(first),
            freeze=r"^features\.0\.",
        )
    )
    said = capsys.readouterr().out
    assert f"--init-from {first}: loaded" in said and "--freeze" in said
    before, after = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    frozen = [
        k
        for k in before
        if k.startswith("features.0.") and "running" not in k and "num_batches" not in k
    ]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert not torch.equal(before["head.weight"], after["head.weight"])  # the rest trained on
    assert json.loads((second / "config.json").read_text())["init_from"] == str(first)


def test_bad_sources_and_patterns_are_one_line(tmp_path, monkeypatch):
    model = nn.Sequential(nn.Linear(4, 8))
    with pytest.raises(ShowcaseError, match="no model.safetensors there"):
        source_weights(str(tmp_path / "nowhere"))
    from safetensors.torch import save_file

    save_file({"encoder.weight": torch.zeros(3, 3)}, tmp_path / "other.safetensors")
    with pytest.raises(ShowcaseError, match="none of its 1 tensors fits this model"):
        init_from(model, tmp_path / "other.safetensors", "other")
    normed = nn.Sequential(nn.BatchNorm1d(8))  # its step counter alone fits: still no start
    save_file(
        {"0.num_batches_tracked": torch.tensor(3), "0.weight": torch.ones(4)}, tmp_path / "bn"
    )
    with pytest.raises(ShowcaseError, match="none of its 2 tensors fits this model"):
        init_from(normed, tmp_path / "bn", "bn")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ShowcaseError, match="cannot fetch it from the Hugging Face Hub"):
        source_weights("hf:nobody/nothing")
    with pytest.raises(UsageError, match="matches no parameter"):
        freeze(model, "^head")
    with pytest.raises(UsageError, match="is not a regular expression"):
        freeze(model, "(")
