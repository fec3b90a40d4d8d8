"""speech ctc: composition, features, the model, decoding, alignment, transcribe and bad input."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from torch.overrides import TorchFunctionMode

from core.checkpoint import read_meta
from core.errors import MissingData, ShowcaseError
from core.parse import build
from speech.ctc.data import VOCAB, WORDS, encode, load_fsdd, synthetic_clips, targets
from speech.ctc.decode import LexiconDecoder, greedy, word_times
from speech.ctc.features import Features
from speech.ctc.model import CTCConfig, CTCModel, ctc_loss
from speech.ctc.predict import TranscribeConfig, app_tab, lexicon_words, transcribe
from speech.ctc.recordings import load_librispeech
from speech.ctc.train import SpeechConfig, SpeechEvalConfig, evaluate, main
from speech.ctc.utterances import assemble, compose, pad_silence
from tests.conftest import real_data

ROOT = Path(__file__).resolve().parents[2]


def test_composition_is_deterministic_and_transcripts_match_the_clips():
    clips = synthetic_clips()
    pool = torch.arange(len(clips.lengths))
    plan, again = compose(clips, pool, 200, seed=7), compose(clips, pool, 200, seed=7)
    assert torch.equal(plan.clips, again.clips) and torch.equal(plan.silences, again.silences)
    assert not torch.equal(plan.clips, compose(clips, pool, 200, seed=8).clips)
    words = (plan.clips >= 0).sum(1)
    assert words.min() >= 1 and words.max() <= 7
    for row, text in zip(plan.clips.tolist(), plan.transcripts(clips), strict=True):
        ids = [c for c in row if c >= 0]
        assert text.split() == [WORDS[clips.digits[c]] for c in ids]
        assert len({clips.speakers[c].item() for c in ids}) == 1  # one speaker per utterance
    assert (plan.silences[:, 0] == 0).any() and (plan.silences[:, 0] > 0).any()  # bare starts too
    gaps = plan.silences[:, 1:][plan.silences[:, 1:] > 0]
    assert gaps.min() >= 400 and gaps.max() <= 2400  # 50-300 ms at 8 kHz
    assert plan.gains.min() >= 0.49 and plan.gains.max() <= 2.02  # e^-0.7 to e^0.7
    wide = compose(clips, pool, 200, seed=7, spread=2.0).gains  # --gain-spread 2
    assert wide.min() >= math.exp(-2) and wide.max() <= math.exp(2) and wide.max() > 4
    waves, lengths = assemble(clips, plan, torch.arange(10))
    assert torch.equal(lengths, plan.lengths(clips)[:10])
    r = 3  # the second clip of utterance 3 sits after the first clip and the silences
    first, second = plan.clips[r, 0], plan.clips[r, 1]
    at = plan.silences[r, 0] + clips.lengths[first] + plan.silences[r, 1]
    piece = waves[r, at : at + clips.lengths[second]]
    start = clips.starts[second]
    expected = clips.audio[start : start + clips.lengths[second]] * plan.gains[r, 1]
    torch.testing.assert_close(piece, expected)
    assert waves[r, lengths[r] :].abs().sum() == 0  # padding stays silent


def test_features_and_model_shapes():
    features = Features(40)
    waves = torch.randn(3, 8000)
    x, frames = features(waves, torch.tensor([8000, 4000, 1200]))
    assert x.shape == (3, 40, 101) and frames.tolist() == [101, 51, 16]
    assert x[1, :, 51:].abs().sum() == 0  # padded frames are zero after normalisation
    model = CTCModel(CTCConfig(hidden=32, layers=1))
    emissions, lengths = model(x, frames)
    assert emissions.shape == (3, 51, len(VOCAB)) and lengths.tolist() == [51, 26, 8]
    torch.testing.assert_close(emissions.exp().sum(-1), torch.ones(3, 51))
    model = CTCModel(CTCConfig(hidden=32, layers=1, stride=4))  # a second stride-2 convolution
    emissions, lengths = model(x, frames)
    assert emissions.shape == (3, 26, len(VOCAB)) and lengths.tolist() == [26, 13, 4]
    assert model.output_lengths(frames).tolist() == lengths.tolist()
    with pytest.raises(ValueError, match="stride must be 2 or 4"):
        CTCModel(CTCConfig(stride=3))
    padded, samples = pad_silence(waves[:2, :4000], torch.tensor([4000, 1200]), pad=100)
    assert padded.shape == (2, 4200) and samples.tolist() == [4200, 1400]
    assert padded[:, :100].abs().sum() == 0 and torch.equal(padded[0, 100:4100], waves[0, :4000])


def test_ctc_loss_falls_on_a_tiny_batch():
    torch.manual_seed(0)
    clips = synthetic_clips()
    plan = compose(clips, torch.arange(len(clips.lengths)), 8, seed=1, max_words=2)
    waves, lengths = assemble(clips, plan, torch.arange(8))
    ids, id_lengths = targets(plan.transcripts(clips))
    features, model = Features(40), CTCModel(CTCConfig(hidden=64, layers=1, dropout=0.0))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, frames = features(waves, lengths)
    losses = []
    for _ in range(300):
        loss = ctc_loss(*model(x, frames), ids, id_lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    model.eval()
    assert LexiconDecoder(WORDS)(*model(x, frames)) == plan.transcripts(clips)


def emissions_for(path: list[int]) -> torch.Tensor:
    """(T, V) log-probs that put 0.9 on the given token of each frame."""
    e = torch.full((len(path), len(VOCAB)), 0.1 / (len(VOCAB) - 1))
    e[torch.arange(len(path)), torch.tensor(path)] = 0.9
    return e.log()


def ids(text):
    return encode(text).tolist()


def test_greedy_and_beam_decoding_on_hand_made_emissions():
    # "t-wo" with a doubled o, a space, then "on" with a doubled n across a blank: "two onn"
    path = [
        0,
        *ids("t"),
        *ids("w"),
        0,
        *ids("o"),
        *ids("o"),
        0,
        *ids(" "),
        *ids("o"),
        *ids("n"),
        0,
        *ids("n"),
        *ids("e"),
        0,
    ]
    e = emissions_for(path)[None]
    lengths = torch.tensor([len(path)])
    assert greedy(e, lengths) == ["two onne"]  # best path: what the frames say
    assert LexiconDecoder(WORDS)(e, lengths) == ["two one"]  # snapped to the lexicon's words
    assert LexiconDecoder(["tw", "onne"])(e, lengths) == ["tw onne"]  # another lexicon


def test_error_rates_match_torchmetrics():
    from torchmetrics.functional.text import char_error_rate, word_error_rate

    from speech.ctc.scoring import wer_cer

    refs = ["one two three", "nine", "five five six seven", "zero"]
    hyps = ["one too three", "", "five six seven seven eight", "zero"]
    ours = wer_cer(hyps, refs)
    assert ours["wer"] == pytest.approx(float(word_error_rate(hyps, refs)), abs=1e-6)
    assert ours["cer"] == pytest.approx(float(char_error_rate(hyps, refs)), abs=1e-6)
    assert wer_cer(refs, refs) == {"wer": 0.0, "cer": 0.0}


def test_forced_alignment_times_fall_inside_the_utterance():
    path = (
        [0] * 5
        + ids("t") * 3
        + ids("w") * 2
        + ids("o") * 3
        + [0] * 4
        + ids(" ")
        + ids("s") * 2
        + ids("i") * 2
        + ids("x") * 3
        + [0] * 6
    )
    words = word_times(emissions_for(path), "two six", seconds_per_frame=0.02)
    assert [w["word"] for w in words] == ["two", "six"]
    assert words[0]["start"] == pytest.approx(5 * 0.02) and words[0]["end"] == pytest.approx(
        13 * 0.02
    )
    assert words[1]["start"] == pytest.approx(18 * 0.02) and words[1]["end"] == pytest.approx(
        25 * 0.02
    )
    assert (
        0
        <= words[0]["start"]
        < words[0]["end"]
        <= words[1]["start"]
        < words[1]["end"]
        <= len(path) * 0.02
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A shortened real-data run of the default model without its robust training (600 steps,
    about 3.5 minutes on 2 CPU cores: CTC needs some 300 steps before it leaves the all-blank
    output, and the noisy, reverberant and resampled utterances of --robust need twice the steps
    to reach the plain model's accuracy)."""
    root = real_data("fsdd", "recordings")
    out = tmp_path_factory.mktemp("speech") / "run"
    short = {"max_steps": 600, "val_utterances": 0, "test_utterances": 200, "log_every": 200}
    data_dir = str(root.parent.parent)
    cfg = build(
        SpeechConfig, data_dir=data_dir, out_dir=str(out), device="cpu", robust=False, **short
    )
    return cfg, main(cfg)


@pytest.mark.real_data
@pytest.mark.slow
def test_short_real_run_recognises_digits(trained):
    _, report = trained
    assert report["metrics"]["clip_acc"] >= 0.8  # chance: 0.1
    assert report["metrics"]["test_wer"] <= 0.10


def write_16k_stereo(path, wave_8k):
    import torchaudio.functional as AF

    up = AF.resample(torch.as_tensor(wave_8k), 8000, 16000).numpy()
    soundfile.write(path, np.stack([up, 0.5 * up], 1), 16000)


@pytest.mark.real_data
@pytest.mark.slow
def test_transcribe_a_real_clip_at_16k_stereo_and_bad_files(trained, tmp_path, capsys):
    cfg, _ = trained
    recordings = real_data("fsdd", "recordings")
    paths = []
    for digit in range(10):  # official test recordings of one speaker, one per digit
        wave, _ = soundfile.read(recordings / f"{digit}_theo_2.wav", dtype="float32")
        write_16k_stereo(tmp_path / f"{digit}.wav", wave)
        paths.append(str(tmp_path / f"{digit}.wav"))
    result = transcribe(TranscribeConfig(paths=paths, out_dir=cfg.out_dir, device="cpu", json=True))
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [line["text"] for line in lines] == [t["text"] for t in result["transcripts"]]
    right = [line for digit, line in enumerate(lines) if line["text"] == WORDS[digit]]
    assert len(right) >= 8  # the fixture's model gets about 85-90% of single test clips
    for line in right:
        (word,) = line["words"]
        assert word["word"] == line["text"] and 0 <= word["start"] < word["end"] <= 2.5
    # silence and a too-short clip give empty transcripts; unreadable and empty files are errors
    soundfile.write(tmp_path / "silence.wav", np.zeros(8000, dtype=np.float32), 8000)
    soundfile.write(tmp_path / "short.wav", wave[:200], 8000)  # 25 ms
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 8000)
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    files = ["7.wav", "silence.wav", "short.wav", "empty.wav", "junk.wav", "absent.wav"]
    with pytest.raises(ShowcaseError, match="3 file\\(s\\) could not be transcribed"):
        transcribe(
            TranscribeConfig(
                paths=[str(tmp_path / f) for f in files], out_dir=cfg.out_dir, device="cpu"
            )
        )
    out, err = capsys.readouterr()
    assert f"{tmp_path / '7.wav'}: " in out  # the good file is still transcribed
    assert f"{tmp_path / 'silence.wav'}: \n" in out and f"{tmp_path / 'short.wav'}: \n" in out
    assert "empty.wav: holds no audio" in err and "junk.wav: not readable audio" in err
    assert "absent.wav: no such file" in err


@pytest.mark.real_data
@pytest.mark.slow
def test_long_file_is_transcribed_in_chunks(trained, tmp_path, capsys):
    cfg, _ = trained
    recordings = real_data("fsdd", "recordings")
    pieces = []
    for name in ["3_theo_0.wav", "1_theo_1.wav", "4_theo_2.wav"] * 4:  # 12 digits, ~25 s
        wave, _ = soundfile.read(recordings / name, dtype="float32")
        pieces += [wave, np.zeros(16000, dtype=np.float32)]
    soundfile.write(tmp_path / "long.wav", np.concatenate(pieces), 8000)
    result = transcribe(
        TranscribeConfig(
            paths=[str(tmp_path / "long.wav")], out_dir=cfg.out_dir, device="cpu", chunk_seconds=6.0
        )
    )
    from speech.ctc.scoring import wer_cer

    words = result["transcripts"][0]["words"]
    truth = " ".join(["three one four"] * 4)
    assert wer_cer([result["transcripts"][0]["text"]], [truth])["wer"] <= 0.25
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and starts[-1] > 20  # times are in the whole file's seconds


@pytest.mark.real_data
def test_fsdd_loads_every_recording_verified(tmp_path):
    recordings = real_data("fsdd", "recordings")
    clips = load_fsdd(str(recordings.parent.parent))
    assert len(clips.lengths) == 3000 and clips.speaker_names[0] == "george"
    assert int((clips.index < 5).sum()) == 300  # the official test set
    folder = tmp_path / "fsdd" / "recordings"
    folder.mkdir(parents=True)
    (tmp_path / "fsdd" / "SHA256SUMS").symlink_to(recordings.parent / "SHA256SUMS")
    for p in recordings.iterdir():
        (folder / p.name).symlink_to(p)
    (folder / "7_theo_2.wav").unlink()
    (folder / "7_theo_2.wav").write_bytes((recordings / "7_theo_2.wav").read_bytes()[:-10])
    with pytest.raises(ShowcaseError, match="7_theo_2.wav is damaged"):
        load_fsdd(str(tmp_path))


def test_bad_flags_are_one_line(tmp_path):
    for args, message in [
        (["--holdout-speaker", "bob", "--synthetic"], "unknown speaker 'bob'"),
        (["--beam", "0"], "--beam must be > 0"),
        (["--gain-spread", "nan"], "--gain-spread must be in [0, 5], got nan"),
    ]:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "showcase",
                "speech",
                "ctc",
                "train",
                *args,
                "--out-dir",
                str(tmp_path / "r"),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_librispeech_folder_trains_and_fsdd_offline_error_is_clear(tmp_path, monkeypatch):
    import speech.ctc.data as speech_data

    clips = synthetic_clips()
    chapter = tmp_path / "libri" / "19" / "198"
    chapter.mkdir(parents=True)
    lines = []
    for k in range(30):  # 16 kHz flac, as LibriSpeech ships it; your own recordings may be wav
        wave = clips.audio[clips.starts[k] : clips.starts[k] + clips.lengths[k]].numpy()
        write_16k_stereo(chapter / f"19-198-{k:04d}.{'wav' if k == 1 else 'flac'}", wave)
        lines.append(f"19-198-{k:04d} {clips.texts[k].upper()}")
    (chapter / "19-198.trans.txt").write_text("\n".join(lines) + "\n")
    loaded = load_librispeech(tmp_path / "libri")
    assert loaded.texts[:2] == [clips.texts[0], clips.texts[1]] and len(loaded.lengths) == 30
    assert abs(int(loaded.lengths[0]) - int(clips.lengths[0])) <= 2  # back at 8 kHz
    cfg = build(
        SpeechConfig,
        librispeech=str(tmp_path / "libri"),
        out_dir=str(tmp_path / "run"),
        device="cpu",
        max_steps=3,
        hidden=16,
        layers=1,
        batch_size=4,
        log_every=1,
    )
    assert main(cfg)["steps"] == 3
    monkeypatch.setattr(speech_data, "FSDD_URL", "http://127.0.0.1:9/fsdd.tar.gz")
    with pytest.raises(MissingData, match="FSDD is missing in .* cannot be downloaded .* put its"):
        load_fsdd(str(tmp_path))  # the tour skips a demo on MissingData


def libri_folder(root: Path, texts: list[str]) -> Path:
    """A LibriSpeech-layout folder of one chapter: synthetic tone clips with the given texts."""
    clips = synthetic_clips()
    chapter = root / "19" / "198"
    chapter.mkdir(parents=True)
    for k, _ in enumerate(texts):
        wave = clips.audio[clips.starts[k] : clips.starts[k] + clips.lengths[k]].numpy()
        soundfile.write(chapter / f"19-198-{k:04d}.wav", wave, 8000)
    lines = [f"19-198-{k:04d} {text.upper()}" for k, text in enumerate(texts)]
    (chapter / "19-198.trans.txt").write_text("\n".join(lines) + "\n")
    return root


def spy_on_lexicons(monkeypatch, *modules) -> list[list[str]]:
    """The word lists every LexiconDecoder built in `modules` gets, in order."""
    seen = []

    def spy(words, beam_size=16):
        seen.append(sorted(words))
        return LexiconDecoder(words, beam_size)

    for module in modules:
        monkeypatch.setattr(module, "LexiconDecoder", spy)
    return seen


def test_the_beam_search_words_come_from_training_transcripts_and_stay_with_the_run(
    tmp_path, monkeypatch, capsys
):
    import speech.ctc.predict as predict
    import speech.ctc.train as train

    # every 10th utterance is test (0, 10, 20), every 10th + 1 validation: test words and
    # validation words must not reach the beam search
    texts = [
        WORDS[k % 3]
        + (
            " secret"
            if k % 10 == 0
            else " spare"
            if k % 10 == 1
            else " known"
            if k % 10 == 5
            else ""
        )
        for k in range(30)
    ]
    folder = libri_folder(tmp_path / "libri", texts)
    out = tmp_path / "run"
    seen = spy_on_lexicons(monkeypatch, train, predict)
    cfg = build(
        SpeechConfig,
        librispeech=str(folder),
        out_dir=str(out),
        device="cpu",
        max_steps=3,
        hidden=16,
        layers=1,
        batch_size=4,
        log_every=1,
    )
    main(cfg)
    training = ["known", "one", "two", "zero"]
    assert seen == [training]
    assert (out / "lexicon.txt").read_text() == "known\none\ntwo\nzero\n"
    clip = str(folder / "19" / "198" / "19-198-0003.wav")
    evaluate(SpeechEvalConfig(out_dir=str(out), device="cpu"))
    transcribe(TranscribeConfig(paths=[clip], out_dir=str(out), device="cpu"))
    app_tab().load(str(out), torch.device("cpu"))
    assert seen == [training] * 4  # eval, transcribe and the app tab use the run's list
    (tmp_path / "mine.txt").write_text("alpha beta\n")
    transcribe(
        TranscribeConfig(
            paths=[clip], out_dir=str(out), device="cpu", lexicon=str(tmp_path / "mine.txt")
        )
    )
    assert seen[-1] == ["alpha", "beta"]  # --lexicon still overrides it
    # a run trained before the list was stored still loads: eval rebuilds it from the training
    # transcripts, transcribe and the app fall back to the ten digit words
    (out / "lexicon.txt").unlink()
    evaluate(SpeechEvalConfig(out_dir=str(out), device="cpu"))
    transcribe(TranscribeConfig(paths=[clip], out_dir=str(out), device="cpu"))
    app_tab().load(str(out), torch.device("cpu"))
    assert seen[-3:] == [training, sorted(WORDS), sorted(WORDS)]
    capsys.readouterr()


def test_eval_reports_the_step_its_weights_come_from(tmp_path, capsys):
    out = tmp_path / "run"
    main(
        build(
            SpeechConfig,
            synthetic=True,
            out_dir=str(out),
            device="cpu",
            max_steps=4,
            eval_every=2,
            hidden=16,
            layers=1,
            batch_size=8,
            log_every=2,
        )
    )
    step = read_meta(out / "model.safetensors")["step"]
    assert step in (2, 4)
    report = evaluate(SpeechEvalConfig(out_dir=str(out), device="cpu"))
    assert report["steps"] == step
    assert json.loads((out / "eval.json").read_text())["steps"] == step
    capsys.readouterr()


def test_a_tuning_run_scores_no_test_and_its_eval_does(tmp_path):
    """--test-utterances 0: the run reports its validation alone; `eval` still scores a test."""
    out = tmp_path / "run"
    small = dict(hidden=16, layers=1, batch_size=8, device="cpu", out_dir=str(out))
    report = main(build(SpeechConfig, synthetic=True, max_steps=2, test_utterances=0, **small))
    assert "val_wer" in report["metrics"] and not any("test" in k for k in report["metrics"])
    scored = evaluate(SpeechEvalConfig(out_dir=str(out), device="cpu"))
    assert "test_wer" in scored["metrics"]


class OneDevice(TorchFunctionMode):
    """Raises, as CUDA does, when one operation mixes tensors of two devices (a 0-dim CPU
    tensor may sit beside any); run under it with "meta" as the second device."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch._has_compatible_shallow_copy_type:  # Module.to asks it of both devices
            return func(*args, **kwargs)
        leaves = torch.utils._pytree.tree_leaves((args, kwargs))
        devices = {
            t.device
            for t in leaves
            if isinstance(t, torch.Tensor) and not (t.device.type == "cpu" and t.dim() == 0)
        }
        if len(devices) > 1:
            raise RuntimeError(f"{getattr(func, '__name__', func)} mixes devices {devices}")
        return func(*args, **kwargs)


def test_clips_and_plan_lengths_follow_the_device():
    clips = synthetic_clips()
    plan = compose(clips, torch.arange(len(clips.lengths)), 20, seed=3)
    with OneDevice():
        moved = clips.to("meta")
        tensors = {k: v for k, v in vars(moved).items() if isinstance(v, torch.Tensor)}
        assert len(tensors) == 6 and all(t.is_meta for t in tensors.values())
        lengths = plan.lengths(moved)
    assert lengths.is_meta and lengths.shape == (20,)
    assert torch.equal(plan.lengths(clips), plan.lengths(clips.to("cpu")))


def test_training_scores_on_the_training_device(tmp_path, monkeypatch):
    import core.loop
    import speech.ctc.train as train

    def setup_on_meta(cfg):
        core.loop.setup(cfg)
        return torch.device("meta")

    def fit(model, step, loader, cfg, *, device, **_):
        model.to(device)
        return core.loop.FitResult(steps=0, wall_seconds=0.0)

    def score(model, features, split, decoder, batch_size=64):
        tensors = [
            *model.parameters(),
            *features.buffers(),
            *(v for v in vars(split.clips).values() if isinstance(v, torch.Tensor)),
        ]
        seen.append({t.device.type for t in tensors})
        return {}

    seen = []
    monkeypatch.setattr(train, "setup", setup_on_meta)
    monkeypatch.setattr(train, "fit", fit)
    monkeypatch.setattr(train, "score", score)
    with OneDevice():
        main(
            build(
                SpeechConfig,
                synthetic=True,
                out_dir=str(tmp_path / "run"),
                device="cpu",
                max_steps=1,
                hidden=16,
                layers=1,
            )
        )
    assert seen == [{"meta"}]


def test_word_lists_are_spelled_as_the_model_spells(tmp_path):
    assert lexicon_words(None, ["Don't stop!", "co-op 42 stop"]) == ["coop", "don't", "stop"]
    assert lexicon_words(None) == WORDS
    (tmp_path / "words.txt").write_text("Alpha\ncafé\n")
    with pytest.raises(ShowcaseError, match="words must use a-z and ' only: \\['café'\\]"):
        lexicon_words(str(tmp_path / "words.txt"))
