"""`export`: every exported file agrees with the eager model on real test inputs, runs from its
sidecar alone, and bad input gets one line with nothing invalid left behind."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

import core.export
import core.export_check
from core.command import config_class
from core.errors import ShowcaseError, UsageError
from core.parse import build
from showcase import catalog
from tests.conftest import real_data

# demo -> the train flags of a small run on its real data (the environment, for RL)
RUNS = {
    "vision classify": {"max_steps": 30},
    "vision detect": {"max_steps": 3, "batch_size": 8, "val_scenes": 16, "test_scenes": 64},
    "recsys mf": {"max_steps": 3},
    "rl dqn": {
        "max_steps": 400,
        "learning_starts": 100,
        "eval_every": 400,
        "eval_episodes": 2,
        "final_episodes": 2,
    },
    "speech ctc": {"max_steps": 20, "eval_every": 20, "train_utterances": 200},
    "translation seq2seq": {
        "max_steps": 20,
        "eval_every": 0,
        "d_model": 64,
        "layers": 1,
        "d_ff": 128,
        "vocab_size": 1000,
    },
}
DATA = {
    "vision classify": "MNIST",
    "vision detect": "MNIST",
    "recsys mf": "ml-100k",
    "speech ctc": "fsdd",
    "translation seq2seq": "multi30k",
}
# speech: ONNX only; the translator: two files (its own test)
BOTH_FORMATS = [name for name in RUNS if name not in ("speech ctc", "translation seq2seq")]


def commands(name: str) -> dict:
    return catalog.commands(next(d for d in catalog.all_demos() if d.name == name))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """A short real-data run of each exportable demo, trained once for this module."""
    folder = tmp_path_factory.mktemp("runs")
    out = {}
    for name, fields in RUNS.items():
        if name in DATA:
            real_data(DATA[name])
        train = commands(name)["train"]
        run_dir = folder / name.replace(" ", "-")
        train(build(config_class(train), out_dir=str(run_dir), device="cpu", **fields))
        out[name] = run_dir
    return out


def export(name: str, run_dir, out, **fields) -> dict:
    command = commands(name)["export"]
    return command(build(config_class(command), out_dir=str(run_dir), out=str(out), **fields))


@pytest.mark.parametrize("name", BOTH_FORMATS)
def test_onnx_and_pt2_agree_with_the_eager_model(runs, tmp_path, name):
    onnx_file = export(name, runs[name], tmp_path)
    assert onnx_file["check"]["max_abs_diff"] <= core.export_check.FLOAT_TOLERANCE
    pt2_file = export(name, runs[name], tmp_path, format="pt2")
    assert pt2_file["check"]["max_abs_diff"] <= core.export_check.FLOAT_TOLERANCE
    sidecar = json.loads(Path(onnx_file["sidecar"]).read_text())
    assert sidecar["format"] == "onnx" and sidecar["run"].endswith(runs[name].name)
    assert sidecar["inputs"][0]["shape"][0] == "batch"
    assert sidecar["outputs"][0]["shape"][0] == "batch"


def test_the_onnx_file_runs_from_its_sidecar_alone(runs, tmp_path):
    """A user without this package: onnxruntime, numpy and the sidecar; any batch size."""
    written = export("vision classify", runs["vision classify"], tmp_path)
    sidecar = json.loads(Path(written["sidecar"]).read_text())
    (spec,) = sidecar["inputs"]
    images = np.zeros((3, *spec["shape"][1:]), dtype=spec["dtype"])
    images[:, 4:24, 12:16] = 255  # a bar: a "1"
    sess = onnxruntime.InferenceSession(str(tmp_path / sidecar["file"]))
    (logits,) = sess.run([sidecar["outputs"][0]["name"]], {spec["name"]: images})
    assert logits.shape == (3, len(sidecar["labels"]))
    assert len({sidecar["labels"][k] for k in logits.argmax(1)}) == 1  # three alike images


def test_the_speech_file_takes_any_length_and_transcribes_as_the_model_does(runs, tmp_path):
    """Checked on test utterances of several lengths; then a real recording read with soundfile,
    run with onnxruntime and decoded greedily from the sidecar, as a user without this package."""
    import soundfile

    from speech.ctc.data import fsdd_dir, to_8k
    from speech.ctc.decode import greedy
    from speech.ctc.export import Recognizer
    from speech.ctc.predict import load_trained

    written = export("speech ctc", runs["speech ctc"], tmp_path)
    assert written["check"]["inputs"] == 8 and written["check"]["max_abs_diff"] <= 1e-4
    sidecar = json.loads(Path(written["sidecar"]).read_text())
    assert sidecar["inputs"][0]["shape"] == [1, "samples"]
    assert sidecar["outputs"][0]["shape"] == [1, "frames", len(sidecar["vocabulary"])]
    audio, rate = soundfile.read(fsdd_dir(None) / "7_jackson_32.wav", dtype="float32")
    assert rate == sidecar["sample_rate"]
    sess = onnxruntime.InferenceSession(written["file"])
    (log_probs,) = sess.run(None, {"waves": audio[None]})
    best = log_probs[0].argmax(-1)
    keep = (best != sidecar["blank"]) & np.r_[True, best[1:] != best[:-1]]
    text = "".join(sidecar["vocabulary"][k] for k in best[keep])
    run = load_trained(str(runs["speech ctc"]), torch.device("cpu"))
    with torch.no_grad():
        eager = Recognizer(run.model, run.features)(to_8k(audio, rate)[None])
    assert text == greedy(eager, torch.tensor([eager.shape[1]]))[0]
    assert log_probs.shape == eager.shape


def test_the_translator_exports_an_encoder_and_a_step_that_translate_as_the_model_does(
    runs, tmp_path
):
    run = runs["translation seq2seq"]
    for fields in ({}, {"format": "pt2"}):
        written = export("translation seq2seq", run, tmp_path, **fields)
        for part in ("encoder", "step"):
            assert written[part]["check"]["max_abs_diff"] <= core.export_check.FLOAT_TOLERANCE
    written = export("translation seq2seq", run, tmp_path)
    assert written["greedy_agreement"] == 1.0  # 32 test sentences, translated alike
    assert (tmp_path / "tokenizer.json").is_file()
    step = json.loads(Path(written["step"]["sidecar"]).read_text())
    assert [i["shape"][2] for i in step["inputs"] if i["name"] == "k0"] == ["past"]
    int8 = export("translation seq2seq", run, tmp_path, quantize="int8")
    assert int8["greedy_agreement"] >= 0.8
    for part in ("encoder", "step"):
        float_size = Path(written[part]["file"]).stat().st_size
        assert Path(int8[part]["file"]).stat().st_size < float_size / 2


def test_int8_files_are_smaller_and_give_the_same_answers(runs, tmp_path):
    for name in ("vision classify", "vision detect", "speech ctc"):
        float32 = export(name, runs[name], tmp_path)
        int8 = export(name, runs[name], tmp_path, quantize="int8")
        assert int8["check"]["agreement"] >= core.export_check.INT8_AGREEMENT
        assert Path(int8["file"]).stat().st_size < Path(float32["file"]).stat().st_size / 2


def test_bad_input_is_one_line_and_leaves_nothing_invalid(runs, tmp_path, monkeypatch):
    with pytest.raises(ShowcaseError, match="no trained model in"):
        export("vision classify", tmp_path / "nothing", tmp_path / "out")
    with pytest.raises(ShowcaseError, match="holds a recsys.mf run, not vision.classify"):
        export("vision classify", runs["recsys mf"], tmp_path / "out")
    with pytest.raises(UsageError, match="--quantize int8 goes with --format onnx"):
        export(
            "vision classify",
            runs["vision classify"],
            tmp_path / "out",
            format="pt2",
            quantize="int8",
        )
    with pytest.raises(UsageError, match="rl dqn exports float32 only"):
        export("rl dqn", runs["rl dqn"], tmp_path / "out", quantize="int8")
    with pytest.raises(UsageError, match="speech ctc exports --format onnx"):
        export("speech ctc", runs["speech ctc"], tmp_path / "out", format="pt2")
    monkeypatch.setattr(
        core.export_check, "FLOAT_TOLERANCE", -1.0
    )  # every file now fails its check
    with pytest.raises(ShowcaseError, match="differs from the eager model .*: not written"):
        export("recsys mf", runs["recsys mf"], tmp_path / "out")
    assert not list((tmp_path / "out").iterdir())  # no file, no sidecar, no scratch folder


def test_export_from_the_command_line_is_one_line_on_bad_flags(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "vision.classify", "export", "--format", "tflite"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "tflite" in result.stderr


def test_a_single_input_export_round_trips_a_plain_module(tmp_path):
    """The core mechanism alone, on a module of two inputs with a shared dynamic batch."""

    class Sum(torch.nn.Module):
        def forward(self, a, b):
            return a @ b.T, (a * 2).sum(1)

    spec = core.export.ExportSpec(
        name="sum",
        module=Sum(),
        inputs=(torch.randn(5, 3), torch.randn(5, 3)),
        input_names=["a", "b"],
        output_names=["ab", "twice"],
        dynamic={"a": {0: "batch"}, "b": {0: "batch"}},
        sidecar={},
    )
    cfg = build(core.export.ExportConfig, out=str(tmp_path))
    written = core.export.export(spec, cfg)
    sess = onnxruntime.InferenceSession(written["file"])
    a, b = np.ones((2, 3), np.float32), np.ones((2, 3), np.float32)
    ab, twice = sess.run(None, {"a": a, "b": b})
    assert ab.shape == (2, 2) and np.allclose(twice, 6.0)
