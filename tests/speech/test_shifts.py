"""speech shifts: each audio shift does what it says, the suite is seeded and keeps transcripts,
robust training's mix keeps its batch well formed, and `eval --shift` runs on a tiny run."""

import json

import pytest
import torch

from core.errors import ShowcaseError
from core.parse import build
from speech import shifts
from speech.ctc.data import SAMPLE_RATE, synthetic_clips
from speech.ctc.scoring import SHIFTS, Takes, takes
from speech.ctc.train import SpeechConfig, SpeechEvalConfig, evaluate, main
from speech.ctc.utterances import make_split, single
from tests.conftest import real_data


def tone(hz: float = 500.0, seconds: float = 0.5, rows: int = 3) -> tuple:
    """(rows, T) sine tones, each row shorter than the last by a tenth of a second."""
    t = torch.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    waves = torch.sin(2 * torch.pi * hz * t).repeat(rows, 1) * 0.5
    samples = torch.tensor([len(t) - r * SAMPLE_RATE // 10 for r in range(rows)])
    return waves * shifts.valid_mask(waves, samples), samples


def snr(clean, noisy, samples) -> torch.Tensor:
    return 10 * torch.log10(shifts.power(clean, samples) / shifts.power(noisy - clean, samples))


def peak_hz(wave: torch.Tensor) -> float:
    spectrum = torch.fft.rfft(wave).abs()
    return spectrum.argmax().item() * SAMPLE_RATE / len(wave)


def silent_past_lengths(waves, samples) -> bool:
    return bool((waves * ~shifts.valid_mask(waves, samples)).eq(0).all())


@pytest.mark.parametrize("kind", ["white", "pink", "babble"])
def test_noise_is_added_at_the_asked_snr_and_only_within_each_recording(kind):
    waves, samples = tone()
    g = torch.Generator().manual_seed(0)
    noisy, kept = shifts.noise(waves, samples, 10.0, kind=kind, generator=g)
    assert torch.equal(kept, samples)
    assert snr(waves, noisy, samples).tolist() == pytest.approx([10.0] * 3, abs=0.01)
    assert silent_past_lengths(noisy, samples)


def test_noise_kinds_differ_and_babble_is_another_recording():
    waves, samples = tone(rows=3)
    waves[1] = torch.roll(waves[1], 7) * 0.5  # three distinct recordings
    waves[2] = torch.sin(torch.arange(waves.shape[1]) * 0.9) * 0.2 * (waves[2] != 0)
    g = torch.Generator().manual_seed(0)

    def low_over_high(kind: str) -> float:
        noisy, _ = shifts.noise(waves, samples, 0.0, kind=kind, generator=g)
        spectrum = torch.fft.rfft(noisy[0] - waves[0]).abs().pow(2)
        return (spectrum[5:50].mean() / spectrum[1000:1500].mean()).item()

    assert low_over_high("pink") > 10 * low_over_high("white")
    noisy, _ = shifts.noise(waves, samples, 0.0, kind="babble", generator=g, talkers=1)
    heard = noisy[0] - waves[0]  # one other recording, at the first one's power
    assert not torch.allclose(heard / heard.norm(), waves[0] / waves[0].norm(), atol=1e-3)
    with pytest.raises(ValueError, match="unknown noise kind 'brown'"):
        shifts.noise(waves, samples, 10.0, kind="brown")
    with pytest.raises(ValueError, match="at least two recordings"):
        shifts.noise(waves[:1], samples[:1], 10.0, kind="babble")


def test_pink_noise_is_louder_at_low_frequencies_than_white():
    g = torch.Generator().manual_seed(0)
    for slope, low_over_high in ((0.0, (0.5, 2.0)), (1.0, (20.0, 1e9))):
        noise = shifts.colored((8, 8000), torch.full((8,), slope), g)
        spectrum = torch.fft.rfft(noise).abs().pow(2).mean(0)
        ratio = (spectrum[10:100].mean() / spectrum[2000:3000].mean()).item()
        assert low_over_high[0] < ratio < low_over_high[1]


def test_speed_pitch_reverb_and_clipping():
    waves, samples = tone(rows=2)
    g = torch.Generator().manual_seed(1)
    fast, new = shifts.resample_rows(waves, samples, torch.tensor([1.25, 0.8]))
    assert new.tolist() == [int(samples[0] / 1.25), int(samples[1] / 0.8)]
    assert peak_hz(fast[0, : new[0]]) == pytest.approx(625, abs=10)  # tempo and pitch together
    assert silent_past_lengths(fast, new)
    higher, kept = shifts.pitch(waves, samples, 2.0, generator=g)
    assert torch.equal(kept, samples) and higher.shape == waves.shape
    for r in range(2):  # each row two semitones up or down, its length kept
        hz = peak_hz(higher[r, : samples[r]])
        assert min(abs(hz - 500 * 2 ** (2 / 12)), abs(hz - 500 * 2 ** (-2 / 12))) < 15
    click = torch.zeros(1, 8000)
    click[0, 100] = 1.0
    wet, _ = shifts.reverb(click, torch.tensor([8000]), 0.5, generator=g)
    tail = wet[0, 100 + SAMPLE_RATE // 10 :].pow(2).sum() / wet.pow(2).sum()
    assert 0.01 < tail.item() < 0.9  # energy arrives after the direct sound...
    assert shifts.power(wet, torch.tensor([8000])).item() == pytest.approx(1 / 8000, rel=1e-3)
    loud, _ = shifts.clipping(waves, samples, 8.0)
    assert loud.abs().max().item() == 1.0 and (loud.abs() == 1.0).float().mean() > 0.5


def test_augment_keeps_the_batch_well_formed():
    torch.manual_seed(0)
    waves = torch.randn(16, 6000) * 0.1
    samples = torch.randint(2000, 6001, (16,))
    waves = waves * shifts.valid_mask(waves, samples)
    g = torch.Generator().manual_seed(2)
    out, new = shifts.augment(waves, samples, p=1.0, generator=g)
    assert len(out) == 16 and out.shape[1] >= int(new.max())
    assert (new >= (samples / 1.15).floor()).all() and (new <= (samples / 0.85).ceil()).all()
    assert silent_past_lengths(out, new) and torch.isfinite(out).all()
    assert not torch.equal(new, samples)  # every utterance's speed was drawn
    same, _ = shifts.augment(waves, samples, p=0.0)
    assert torch.equal(same, waves)


def tiny_takes() -> Takes:
    clips = synthetic_clips()
    return takes(clips, single(clips, torch.arange(0, 240, 8)))


@pytest.mark.parametrize("shift", SHIFTS, ids=[s.name for s in SHIFTS])
def test_suite_keeps_transcripts_and_is_seeded(shift):
    data = tiny_takes()
    a = shift.apply(data, shift.middle, torch.Generator().manual_seed(3))
    b = shift.apply(data, shift.middle, torch.Generator().manual_seed(3))
    assert torch.equal(a.waves, b.waves) and torch.equal(a.samples, b.samples)
    assert a.texts == data.texts
    assert not torch.equal(a.waves[:, : a.samples.min()], data.waves[:, : a.samples.min()])
    assert silent_past_lengths(a.waves, a.samples)


def tiny_run(tmp_path, **fields):
    out = tmp_path / "run"
    small = {"hidden": 16, "layers": 1, "batch_size": 8, "log_every": 2, "warmup_steps": 0}
    main(build(SpeechConfig, out_dir=str(out), device="cpu", max_steps=4, **small, **fields))
    return out


def test_eval_shift_on_a_tiny_synthetic_run(tmp_path, capsys):
    out = tiny_run(tmp_path, synthetic=True)
    for split in ("test", "val"):
        report = evaluate(SpeechEvalConfig(out_dir=str(out), device="cpu", shift=True, split=split))
        table = report["metrics"]["shift"]
        assert set(table["conditions"]) == {s.name for s in SHIFTS} and table["split"] == split
        assert all(len(row["scores"]) == 3 for row in table["conditions"].values())
        assert f"{split} clip_acc clean" in capsys.readouterr().out
    assert json.loads((out / "eval.json").read_text())["metrics"]["shift"] == table
    for picture in ("shift.png", "shift_failures.png"):
        assert (out / picture).stat().st_size > 1000
    with pytest.raises(ShowcaseError, match="--split chooses the recordings of --shift"):
        SpeechEvalConfig(out_dir=str(out), split="val")


def test_eval_shift_on_val_needs_validation_takes(tmp_path):
    out = tiny_run(tmp_path, synthetic=True, val_utterances=0)
    with pytest.raises(ShowcaseError, match="--shift needs single val recordings"):
        evaluate(SpeechEvalConfig(out_dir=str(out), device="cpu", shift=True, split="val"))


@pytest.mark.real_data
@pytest.mark.slow
def test_eval_shift_leaves_the_data_root_unchanged(tmp_path):
    """The shifted recordings live in memory: FSDD's files are the same before and after."""
    root = real_data("fsdd", "recordings").parent.parent

    def listing() -> dict:
        files = (root / "fsdd").rglob("*")
        return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in files}

    before = listing()
    sizes = {"train_utterances": 50, "test_utterances": 20, "val_utterances": 10}
    out = tiny_run(tmp_path, data_dir=str(root), **sizes)
    report = evaluate(SpeechEvalConfig(out_dir=str(out), device="cpu", shift=True))
    assert len(report["metrics"]["shift"]["conditions"]) == len(SHIFTS)
    assert listing() == before


@pytest.mark.real_data
def test_leave_out_drops_a_speaker_from_every_part_of_the_split(tmp_path):
    """An inner fold of leave-one-speaker-out tuning: the outer test speaker is nowhere."""
    root = real_data("fsdd", "recordings").parent.parent
    sizes = {"train_utterances": 200, "test_utterances": 20, "val_utterances": 20}
    fold = {"holdout_speaker": "theo", "leave_out": "nicolas"}
    split = make_split(
        build(SpeechConfig, data_dir=str(root), out_dir=str(tmp_path), **fold, **sizes)
    )
    names = split.clips.speaker_names
    for plan in (split.train, split.val, split.test, split.test_clips, split.val_clips):
        ids = plan.clips[plan.clips >= 0]
        speakers = {names[s] for s in split.clips.speakers[ids].tolist()}
        assert "nicolas" not in speakers
    test_ids = split.test_clips.clips[:, 0]
    assert {names[s] for s in split.clips.speakers[test_ids].tolist()} == {"theo"}
    with pytest.raises(ShowcaseError, match="--leave-out needs --holdout-speaker"):
        build(SpeechConfig, leave_out="nicolas")
    with pytest.raises(ShowcaseError, match="unknown speaker 'nobody'"):
        make_split(build(SpeechConfig, data_dir=str(root), **{**fold, "leave_out": "nobody"}))


@pytest.mark.real_data
def test_adapt_takes_train_on_the_speakers_first_takes_and_test_on_the_others(tmp_path):
    """Speaker adaptation: the held-out speaker's first takes of each digit are the only training
    recordings, and none of them is tested; --adapt-val-takes carves validation takes after them."""
    root = real_data("fsdd", "recordings").parent.parent
    sizes = {"train_utterances": 100, "test_utterances": 50}
    fold = {"holdout_speaker": "george", "adapt_takes": 5}
    cfg = build(SpeechConfig, data_dir=str(root), out_dir=str(tmp_path), **sizes, **fold)
    split = make_split(cfg)
    clips, names = split.clips, split.clips.speaker_names
    train = split.train.clips[split.train.clips >= 0].unique()
    test = split.test.clips[split.test.clips >= 0].unique()
    assert {names[s] for s in clips.speakers[torch.cat([train, test])].tolist()} == {"george"}
    assert len(train) == 50 and clips.index[train].max() == 4
    assert clips.index[test].min() >= 5 and split.val is None
    with pytest.raises(ShowcaseError, match="--adapt-takes needs --holdout-speaker"):
        build(SpeechConfig, adapt_takes=5)
    with pytest.raises(ShowcaseError, match="--adapt-takes must be in"):
        build(SpeechConfig, holdout_speaker="george", adapt_takes=50)
    tuned = build(
        SpeechConfig, data_dir=str(root), **sizes, **fold, adapt_val_takes=10, val_utterances=20
    )
    split = make_split(tuned)  # 10 seeded takes of 5-49 validate, the other 35 test
    val = split.val_clips.clips[:, 0]  # the single validation recordings
    test = split.test_clips.clips[:, 0]
    takes = clips.index[val].unique()
    assert len(val) == 100 and len(takes) == 10 and takes.min() >= 5
    assert len(test) == 350 and not set(clips.index[test].tolist()) & set(takes.tolist())
    assert clips.index[test].min() >= 5 and takes.max() - takes.min() > 10  # spread, not the next
    assert torch.equal(split.train.clips, make_split(cfg).train.clips)
    with pytest.raises(ShowcaseError, match="--adapt-val-takes must be in"):
        build(SpeechConfig, **fold, adapt_val_takes=45)
    for fields, message in [
        ({"adapt_val_takes": 60}, "--adapt-val-takes goes with --adapt-takes"),
        ({**fold, "adapt_val_takes": 10, "val_utterances": 0}, "needs --val-utterances > 0"),
        ({**fold, "test_utterances": 0}, "--test-utterances 0 \\(a tuning run\\) needs validation"),
        ({"test_utterances": 0, "val_utterances": 0}, "--test-utterances 0"),
        ({"librispeech": str(root), "gain_spread": 2.0}, "--gain-spread composes FSDD"),
    ]:
        with pytest.raises(ShowcaseError, match=message):
            build(SpeechConfig, **fields)
    build(SpeechConfig, **fold, adapt_val_takes=10, test_utterances=0)  # a tuning run
    with pytest.raises(ShowcaseError, match=r"--adapt-val-takes: the speaker has none of takes"):
        tones = {"holdout_speaker": "a", "adapt_takes": 5, "adapt_val_takes": 1}  # take 49
        make_split(build(SpeechConfig, synthetic=True, **tones, **sizes))
