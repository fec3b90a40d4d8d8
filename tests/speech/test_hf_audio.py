"""`--hf-dataset` for the speech recognizer: transcribed recordings in an audio folder with a
metadata.csv (written here, tone 'digits' at 16 kHz stereo), and the one-line errors bad folders
get."""

import numpy as np
import pandas as pd
import pytest
import soundfile

from core.errors import ShowcaseError
from core.parse import build
from speech.ctc.data import synthetic_clips
from speech.ctc.recordings import load_hf_audio
from speech.ctc.train import SpeechConfig, SpeechEvalConfig, evaluate, main


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """60 recordings, each a tone digit, with their transcripts and speakers in metadata.csv, and
    one file that is not audio."""
    folder = tmp_path_factory.mktemp("calls")
    clips = synthetic_clips()
    rows = []
    for k in range(60):
        wave = clips.audio[clips.starts[k] : clips.starts[k] + clips.lengths[k]].numpy()
        up = np.repeat(wave, 2)  # 16 kHz
        soundfile.write(folder / f"{k}.wav", np.stack([up, up], 1), 16_000)
        rows.append({"file_name": f"{k}.wav", "transcription": clips.texts[k], "speaker": "ann"})
    (folder / "broken.wav").write_bytes(b"RIFF but not audio")
    rows.append({"file_name": "broken.wav", "transcription": "zero", "speaker": "ann"})
    pd.DataFrame(rows).to_csv(folder / "metadata.csv", index=False)
    return folder


def test_an_audio_folder_trains_and_evaluates(folder, tmp_path, capsys):
    clips, note = load_hf_audio(str(folder), [], seed=0)
    assert "broken.wav" in capsys.readouterr().err
    assert len(clips.lengths) == 60 and clips.speaker_names == ["ann"]
    assert int((clips.index == 0).sum()) in (12, 13) and "a seeded 20%" in note  # a fifth of 61
    assert abs(int(clips.lengths[0]) - 1600) <= 2  # back at 8 kHz
    cfg = build(
        SpeechConfig,
        hf_dataset=str(folder),
        out_dir=str(tmp_path / "run"),
        device="cpu",
        max_steps=2,
        beam=2,
    )
    report = main(cfg)
    assert "a seeded 20% of it held out as test" in report["metrics"]["test_recordings"]
    assert "test: no test split in the source" in capsys.readouterr().out
    scored = evaluate(SpeechEvalConfig(out_dir=cfg.out_dir, device="cpu"))["metrics"]
    assert scored["test_wer"] == pytest.approx(report["metrics"]["test_wer"])


def test_eval_scores_a_tone_run_on_an_audio_folder(folder, tmp_path):
    """`eval --hf-dataset`: a run trained on other recordings (the synthetic tones) scores every
    recording of a folder without a test split, whatever --gain-spread composed its training."""
    wide = {"gain_spread": 2.0}  # as speaker adaptation trains: not a flag for the folder's run
    cfg = build(
        SpeechConfig, synthetic=True, out_dir=str(tmp_path / "run"), max_steps=2, beam=2, **wide
    )
    main(cfg)
    scored = evaluate(SpeechEvalConfig(out_dir=cfg.out_dir, device="cpu", hf_dataset=str(folder)))
    metrics = scored["metrics"]
    assert metrics["test_recordings"] == "the source's train split (every row of it)"
    assert set(metrics["per_speaker_wer"]) == {"ann"} and metrics["test_wer"] >= 0
    with pytest.raises(ShowcaseError, match="--hf-split dev: the source has no such split"):
        evaluate(SpeechEvalConfig(out_dir=cfg.out_dir, hf_dataset=str(folder), hf_split="dev"))


def test_bad_folders_get_one_line(folder):
    with pytest.raises(ShowcaseError, match="no column 'sentence'"):
        load_hf_audio(str(folder), ["text=sentence"], seed=0)
    with pytest.raises(ShowcaseError, match="--hf-dataset brings its own split"):
        build(SpeechConfig, hf_dataset=str(folder), holdout_speaker="theo")


def test_split_folders_and_transcripts_the_model_cannot_spell(folder, tmp_path, capsys):
    split = tmp_path / "split"
    for part, rows in (("train", range(0, 40)), ("test", range(40, 50))):
        (split / part).mkdir(parents=True)
        names = []
        for k in rows:
            (split / part / f"{k}.wav").write_bytes((folder / f"{k}.wav").read_bytes())
            text = "zero, Café 9!" if k == 0 else "one"
            names.append({"file_name": f"{k}.wav", "transcription": text})
        pd.DataFrame(names).to_csv(split / part / "metadata.csv", index=False)
    clips, note = load_hf_audio(str(split), [], seed=0)
    assert note == "the source's test split" and int((clips.index == 0).sum()) == 10
    assert clips.speaker_names == ["all"]
    assert "1 transcript(s) hold characters the model does not spell" in capsys.readouterr().err
