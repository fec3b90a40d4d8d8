"""CTC speech recognizer on spoken digits (FSDD).

    showcase speech ctc train                              # composed utterances, official split
    showcase speech ctc train --holdout-speaker theo       # train on five speakers, test on theo
    showcase speech ctc train --librispeech DIR            # the same model on LibriSpeech folders
    showcase speech ctc eval --out-dir runs/speech-ctc     # WER/CER, clip accuracy, per-speaker table
    showcase speech ctc transcribe a.wav b.flac --json     # words with start and end seconds

Training utterances join 1-7 recordings of one speaker (FSDD takes 5-49; 45-49 validate); test
utterances join the official test takes 0-4 the same way, and each is also decoded alone.
"""

import dataclasses
import time
from typing import ClassVar, Literal

import torch

from core import distributed
from core.config import EvalConfig, TrainConfig
from core.device import pick_device
from core.errors import UsageError, fraction, non_negative, positive, within
from core.hf_data import scored_source
from core.loop import fit, setup
from core.parse import from_run
from core.report import report_eval, report_train
from core.seq_data import LengthLoader
from core.share import push_command
from core.shift import shift_summary
from speech import CTC
from speech.ctc.data import GAIN_SPREAD, SAMPLE_RATE, check_split
from speech.ctc.decode import LexiconDecoder
from speech.ctc.export import export_model
from speech.ctc.features import Features, spec_augment, warp
from speech.ctc.model import CTCConfig, build_model, ctc_loss
from speech.ctc.predict import lexicon_words, load_trained, save_lexicon, transcribe
from speech.ctc.scoring import plot_alignment, score, score_shifts, takes, validation_scores
from speech.ctc.utterances import make_collate, make_split
from speech.shifts import augment as shift_audio

TASK = "speech.ctc"


@dataclasses.dataclass
class SpeechConfig(TrainConfig):
    DEMO = CTC
    PRESET_FIELD: ClassVar[str] = "model"
    PRESETS: ClassVar[dict] = {"gru": {}, "wav2letter": {"lr": 1e-3, "dropout": 0.0}}
    LEGACY: ClassVar[dict] = {"robust": False}  # runs from before --robust
    DEFAULTS: ClassVar[dict] = {
        "max_steps": 2800,
        "batch_size": 32,
        "lr": 3e-3,
        "weight_decay": 1e-2,
        "schedule": "cosine",
        "warmup_steps": 50,
        "grad_clip": 5.0,
        "eval_every": 350,
    }

    model: Literal["gru", "wav2letter"] = "gru"
    """gru: conv subsampling + BiGRU (ours); wav2letter: torchaudio's Wav2Letter (the peer)."""
    channels: int = 32
    """Channels of the subsampling convolutions."""
    hidden: int = 128
    """GRU width per direction."""
    layers: int = 2
    """GRU layers."""
    dropout: float = 0.1
    n_mels: int = 40
    """Mel bands of the log-mel features."""
    stride: Literal[2, 4] = 4
    """10-ms input frames per output frame of the GRU model (4 halves the recurrent work of 2)."""
    train_utterances: int = 12_000
    """Composed training utterances (a fixed set drawn from --seed)."""
    test_utterances: int = 1_000
    """Composed test utterances (0: none, and no test scored: a run tuning on validation)."""
    val_utterances: int = 300
    """Composed validation utterances from the carved-out training recordings (0: no carve)."""
    max_words: int = 7
    """Most digits per utterance."""
    gain_spread: float = GAIN_SPREAD
    """Each recording in a training utterance is scaled by e^u, u uniform in [-spread, spread]
    (0.7: 0.5x to 2x; 2: up to 17 dB, as one speaker's recordings of other days can differ)."""
    holdout_speaker: str | None = None
    """Train on the other speakers and test on this one (FSDD: george, jackson, lucas, nicolas,
    theo, yweweler)."""
    leave_out: str | None = None
    """Drop this speaker's recordings entirely: with --holdout-speaker, an inner fold for tuning
    the leave-one-speaker-out protocol without its test speaker."""
    adapt_takes: int = 0
    """With --holdout-speaker X: train on X's first N takes of each digit alone and test on X's
    other takes (speaker adaptation: fine-tune a run that never heard X, via --init-from)."""
    adapt_val_takes: int = 0
    """With --adapt-takes N: K of the other takes of each digit, drawn from --seed, validate (they
    pick the kept weights, and a fine-tuning recipe is tuned on them); the rest test."""
    librispeech: str | None = None
    """Train and test on a LibriSpeech-layout folder instead (every 10th utterance is test)."""
    lexicon: str | None = None
    """A word list (one per line) for the beam search; default: the training transcripts' words
    (kept in the run's lexicon.txt for eval, transcribe and the app)."""
    beam: int = 16
    """Beam size of the lexicon search."""
    spec_augment: bool = True
    """Frequency and time masking of the training features."""
    single_clips: bool = False
    """Also train on every training recording alone."""
    warp: float = 0.0
    """Stretch each training utterance's spectrum and tempo by random factors in [1 - warp,
    1 + warp] (0: off)."""
    robust: bool = True
    """Shift the training utterances (`speech/shifts.py:augment`): speed and noise (white to brown,
    or babble of other utterances) each on half of them, reverberation on a quarter, clipping on a
    tenth, so the model holds up under `eval --shift`."""
    batch_seconds: float = 240.0
    """Most seconds of padded audio per optimizer step (long utterances make smaller batches)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        positive(self, "channels", "hidden", "layers", "n_mels", "beam", "batch_seconds")
        positive(self, "train_utterances", "max_words")
        non_negative(self, "val_utterances", "test_utterances")
        fraction(self, "dropout")
        check_split(self)
        within(self, "[0, 0.5)", "warp")


def make_step(features: Features, augment: bool, spread: float = 0.0, robust: bool = False):
    """The training step: audio shifts (with `robust`), features (no autocast), warping,
    SpecAugment, CTC loss."""

    def step(model, batch):
        waves, samples, ids, id_lengths = batch
        with torch.no_grad(), torch.autocast(waves.device.type, enabled=False):
            if robust:
                waves, samples = shift_audio(waves, samples)
            x, frames = features(waves, samples)  # (B, F, T)
            if spread:
                x, frames = warp(x, frames, spread)
            if augment:
                x = spec_augment(x)
        emissions, lengths = model(x, frames)
        return ctc_loss(emissions, lengths, ids, id_lengths), {}

    return step


def main(cfg: SpeechConfig) -> dict:
    """Train, keep the best validation checkpoint, report test WER/CER and clip accuracy."""
    device = setup(cfg)
    split = make_split(cfg)
    lengths = split.train.lengths(split.clips)  # (U,) on the host, for the loader's batches
    # the beam search knows the training transcripts' words only: a test word may be unknown
    words = lexicon_words(cfg.lexicon, split.train.transcripts(split.clips))
    if distributed.is_main():
        save_lexicon(cfg.out_dir, words)
    split = dataclasses.replace(split, clips=split.clips.to(device))
    features = Features(cfg.n_mels).to(device)
    model = build_model(
        cfg.model,
        CTCConfig(cfg.n_mels, cfg.channels, cfg.hidden, cfg.layers, cfg.dropout, stride=cfg.stride),
    )
    collate = make_collate(split.clips, split.train, device)
    tokens = int(cfg.batch_seconds * SAMPLE_RATE)  # of padded audio per batch
    loader = LengthLoader.for_config(lengths, collate, cfg, max_tokens=tokens)
    decoder = LexiconDecoder(words, cfg.beam)

    @distributed.on_main  # rank 0 decodes alone; every rank gets its numbers
    def validate(m):
        return validation_scores(m, features, split, decoder)

    check, monitor = (validate, "val_wer") if split.val is not None else (None, None)
    step = make_step(features, cfg.spec_augment, cfg.warp, cfg.robust)
    result = fit(
        model, step, loader, cfg, device=device, evaluate=check, monitor=monitor, mode="min"
    )
    metrics = dict(result.best)
    if cfg.test_utterances:  # 0: a tuning run, scored on its validation alone
        metrics |= distributed.on_main(score)(model, features, split, decoder)
    shown = [k for k in metrics if k.startswith(("test_", "clip"))] or list(metrics)
    notes = (f"test: {split.note}",) if split.note else ()
    metrics |= {"test_recordings": split.note} if split.note else {}
    return report_train(cfg, TASK, metrics, result, device, shown=shown, notes=notes)


@dataclasses.dataclass
class SpeechEvalConfig(EvalConfig):
    DEMO = CTC
    DEFAULTS: ClassVar[dict] = {"batch_size": 64}

    shift: bool = False
    """Also score the shift suite on single recordings (white, pink and babble noise, clipping,
    speed, pitch, reverberation; three severities each); saves shift.png, shift_failures.png."""
    split: Literal["test", "val"] = "test"
    """The recordings the shift suite shifts: the test takes, or the validation takes (for
    choosing training settings without the test set)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.split != "test" and not self.shift:
            raise UsageError("--split chooses the recordings of --shift: add --shift")


def evaluate(cfg: SpeechEvalConfig) -> dict:
    """Test WER/CER, clip accuracy and a per-speaker WER table; saves alignment.png (one test
    utterance's spectrogram with its CTC alignment)."""
    t0 = time.perf_counter()
    device = pick_device(cfg.device)
    run = load_trained(cfg.out_dir, device)
    model, features = run.model, run.features
    own = dict(librispeech=None, holdout_speaker=None, leave_out=None, adapt_takes=0)
    own |= dict(adapt_val_takes=0, gain_spread=GAIN_SPREAD)  # nor how it composed its own
    run_cfg = from_run(SpeechConfig, scored_source(cfg, run.config, **own))
    run_cfg.test_utterances = run_cfg.test_utterances or SpeechConfig.test_utterances  # tuning run
    split = make_split(run_cfg, cfg.data_dir)
    # a run from before word lists were stored: the list its training would have stored
    words = run.words or lexicon_words(run_cfg.lexicon, split.train.transcripts(split.clips))
    decoder = LexiconDecoder(words, run_cfg.beam)
    split = dataclasses.replace(split, clips=split.clips.to(device))
    clips = split.clips
    metrics = score(model, features, split, decoder, cfg.batch_size)
    per_speaker = metrics["per_speaker_wer"]
    metrics |= {"test_recordings": split.note} if split.note else {}
    plot_alignment(model, features, clips, split.test, f"{cfg.out_dir}/alignment.png")
    table = "\n".join(f"  {name:10s} {w:.4f}" for name, w in per_speaker.items())
    clip = f" clip_acc {metrics['clip_acc']:.4f}" if "clip_acc" in metrics else ""  # single clips
    where = f" ({run_cfg.hf_dataset}: {split.note})" if split.note else ""
    summary = (
        f"test_wer {metrics['test_wer']:.4f} test_cer {metrics['test_cer']:.4f}{clip}{where}\n"
        f"per-speaker WER:\n{table}\nwrote {cfg.out_dir}/alignment.png"
    )
    if cfg.shift:
        plan = split.test_clips if cfg.split == "test" else split.val_clips
        if plan is None:
            raise UsageError(f"--shift needs single {cfg.split} recordings; this run has none")
        suite = takes(clips, plan)
        shifted = score_shifts(model, features, suite, decoder, cfg.out_dir, cfg.batch_size)
        metrics["shift"] = {**shifted, "split": cfg.split}
        summary += f"\n{shift_summary(shifted, f'{cfg.split} clip_acc')}"
        summary += f"\nwrote {cfg.out_dir}/shift.png and {cfg.out_dir}/shift_failures.png"
    return report_eval(cfg, TASK, metrics, run.step, time.perf_counter() - t0, device, summary)


COMMANDS = {
    "train": main,
    "eval": evaluate,
    "transcribe": transcribe,
    "export": export_model,
    "push": push_command(CTC),
}
