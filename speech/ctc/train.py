"""CTC speech recognizer on spoken digits (FSDD).

    showcase speech ctc train                              # composed utterances, official split
    showcase speech ctc train --holdout-speaker theo       # train on five speakers, test on theo
    showcase speech ctc train --librispeech DIR            # the same model on LibriSpeech folders
    showcase speech ctc eval --out-dir runs/speech-ctc     # WER/CER, clip accuracy, per-speaker table
    showcase speech ctc transcribe a.wav b.flac --json     # words with start and end seconds

Training utterances join 1-7 recordings of one speaker (FSDD recordings 5-49; 45-49 of each are
carved out for validation and model selection); test utterances are composed the same way from the
official test recordings 0-4, and each test recording is also decoded alone.
"""

import dataclasses
import time
from typing import ClassVar, Literal

import torch

from core import distributed
from core.config import EvalConfig, TrainConfig, fraction, from_run, non_negative, positive
from core.device import pick_device
from core.errors import UsageError
from core.loop import fit, setup
from core.report import report_eval, write_report
from core.seq_data import LengthLoader
from speech import CTC
from speech.ctc.data import (
    SAMPLE_RATE,
    Clips,
    Features,
    Plan,
    assemble,
    compose,
    join,
    load_fsdd,
    load_librispeech,
    pad_silence,
    single,
    synthetic_clips,
    targets,
)
from speech.ctc.decode import LexiconDecoder, greedy
from speech.ctc.model import CTCConfig, build_model, ctc_loss
from speech.ctc.predict import (
    lexicon_words,
    load_trained,
    plot_alignment,
    save_lexicon,
    transcribe,
    wer_cer,
)

TASK = "speech.ctc"


@dataclasses.dataclass
class SpeechConfig(TrainConfig):
    DEMO: ClassVar[str] = "speech ctc"
    PRESET_FIELD: ClassVar[str] = "model"
    PRESETS: ClassVar[dict] = {"gru": {}, "wav2letter": {"lr": 1e-3, "dropout": 0.0}}
    DEFAULTS: ClassVar[dict] = {
        "out_dir": CTC.run_dir,
        "max_steps": 1400,
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
    """10-ms input frames per output frame of the GRU model (4 halves the recurrent work of 2:
    twice the steps in the same time; val WER 0.49% after 1,600 steps vs 1.15% after 800)."""
    train_utterances: int = 12_000
    """Composed training utterances (a fixed set drawn from --seed)."""
    test_utterances: int = 1_000
    """Composed test utterances."""
    val_utterances: int = 300
    """Composed validation utterances from the carved-out training recordings (0: no carve)."""
    max_words: int = 7
    """Most digits per utterance."""
    holdout_speaker: str | None = None
    """Train on the other speakers and test on this one (FSDD: george, jackson, lucas, nicolas,
    theo, yweweler)."""
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
    """Also train on every training recording alone (val: clips +0.7 pts, utterance WER
    +0.7 pts over 800 steps)."""
    warp: float = 0.0
    """Stretch each training utterance's spectrum and tempo by random factors in [1 - warp,
    1 + warp] (0: off; 0.1 with --single-clips: val WER 2.6% vs 1.8% in 800 steps)."""
    batch_seconds: float = 240.0
    """Most seconds of padded audio per optimizer step (long utterances make smaller batches)."""
    synthetic: bool = False
    """Tiny tone 'digits' instead of FSDD (smoke tests only)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        positive(self, "channels", "hidden", "layers", "n_mels", "train_utterances",
                 "test_utterances", "max_words", "beam", "batch_seconds")  # fmt: skip
        non_negative(self, "val_utterances")
        fraction(self, "dropout")
        if not 0 <= self.warp < 0.5:
            raise UsageError(f"--warp must be in [0, 0.5), got {self.warp}")


@dataclasses.dataclass
class Split:
    """The clips, and the plans of the training, validation and test utterances."""

    clips: Clips
    train: Plan
    val: Plan | None
    test: Plan
    test_clips: Plan | None  # single test recordings, decoded alone
    val_clips: Plan | None = None  # single validation recordings


def make_split(cfg: SpeechConfig, data_dir: str | None = None) -> Split:
    """The configured data: FSDD (official or leave-one-speaker-out split), LibriSpeech, or tones."""
    if cfg.librispeech:
        clips = load_librispeech(cfg.librispeech)
        ids = torch.arange(len(clips.lengths))
        test = ids[clips.index == 0]
        val = ids[clips.index == 1] if cfg.val_utterances else ids[:0]
        train = ids[(clips.index != 0) & ((clips.index != 1) | (cfg.val_utterances == 0))]
        return Split(clips, single(clips, train), single(clips, val) if len(val) else None,
                     single(clips, test), None)  # fmt: skip
    clips = synthetic_clips(cfg.seed) if cfg.synthetic else load_fsdd(data_dir or cfg.data_dir)
    ids = torch.arange(len(clips.lengths))
    is_test, is_val = clips.index < 5, clips.index >= 45
    if cfg.holdout_speaker:
        if cfg.holdout_speaker not in clips.speaker_names:
            raise UsageError(f"unknown speaker {cfg.holdout_speaker!r}: choose from "
                             f"{', '.join(clips.speaker_names)}")  # fmt: skip
        is_test = clips.speakers == clips.speaker_names.index(cfg.holdout_speaker)
        is_val = ~is_test & (clips.index >= 45)
    if cfg.synthetic:
        is_val = ~is_test & (clips.index == 11)
    is_val &= cfg.val_utterances > 0
    train_ids, val_ids, test_ids = ids[~is_test & ~is_val], ids[is_val], ids[is_test]
    words = cfg.max_words
    if cfg.synthetic:  # smoke tests: a few utterances of each kind
        cfg = dataclasses.replace(cfg, train_utterances=min(cfg.train_utterances, 200),
                                  val_utterances=min(cfg.val_utterances, 20),
                                  test_utterances=min(cfg.test_utterances, 40))  # fmt: skip
    train = compose(clips, train_ids, cfg.train_utterances, cfg.seed, words)
    if cfg.single_clips:  # bare clips are rare among compositions: add each recording alone
        rest = max(1, cfg.train_utterances - len(train_ids))
        train = join(compose(clips, train_ids, rest, cfg.seed, words), single(clips, train_ids))
    return Split(
        clips,
        train,
        compose(clips, val_ids, cfg.val_utterances, cfg.seed + 1, words) if len(val_ids) else None,
        compose(clips, test_ids, cfg.test_utterances, 10_000 + cfg.seed, words),
        single(clips, test_ids),
        single(clips, val_ids) if len(val_ids) else None,
    )


def make_collate(clips: Clips, plan: Plan, device: torch.device):
    """Batches of (waves (B, T), samples (B,), targets (B, S), target lengths (B,)) on `device`."""
    ids, lengths = targets(plan.transcripts(clips))
    ids, lengths = ids.to(device), lengths.to(device)

    def collate(rows: torch.Tensor):
        waves, samples = assemble(clips, plan, rows)
        rows = rows.to(device)
        return waves, samples, ids[rows], lengths[rows]

    return collate


def spec_augment(x: torch.Tensor) -> torch.Tensor:
    """Two frequency masks (up to 8 bands) and two time masks (up to 10 frames) per utterance."""
    import torchaudio.transforms as T

    x = x.unsqueeze(1)  # (B, 1, F, T): iid masks per utterance
    for mask in (T.FrequencyMasking(8, iid_masks=True), T.TimeMasking(10, iid_masks=True)) * 2:
        x = mask(x)
    return x.squeeze(1)


def warp(x: torch.Tensor, frames: torch.Tensor, spread: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Stretch each utterance's spectrum and tempo by its own random factors in [1 - spread,
    1 + spread] (a vocal-tract-length and speed perturbation in feature space), one grid_sample."""
    import torch.nn.functional as F

    b, f, t = x.shape
    out_t = int(t * (1 + spread)) + 1
    scale = 1 + (torch.rand(b, 2, device=x.device) * 2 - 1) * spread  # (B, [freq, time])
    fy = torch.arange(f, device=x.device)[None, :] / scale[:, :1]  # (B, F) input band per band
    tx = torch.arange(out_t, device=x.device)[None, :] / scale[:, 1:]  # (B, T') input frame
    grid = torch.stack([  # (B, F, T', 2): x = time, y = frequency, in [-1, 1] (align_corners)
        (2 * tx / max(t - 1, 1) - 1)[:, None, :].expand(b, f, out_t),
        (2 * fy / max(f - 1, 1) - 1)[:, :, None].expand(b, f, out_t),
    ], dim=-1)  # fmt: skip
    x = F.grid_sample(x[:, None], grid, align_corners=True, padding_mode="zeros")[:, 0]
    frames = (frames * scale[:, 1]).long().clamp(1, out_t)
    mask = torch.arange(out_t, device=x.device)[None, :] < frames[:, None]
    return x * mask[:, None, :], frames


def make_step(features: Features, augment: bool, spread: float = 0.0):
    """The training step: features (no autocast), warping, SpecAugment, CTC loss."""

    def step(model, batch):
        waves, samples, ids, id_lengths = batch
        with torch.no_grad(), torch.autocast(waves.device.type, enabled=False):
            x, frames = features(waves, samples)  # (B, F, T)
            if spread:
                x, frames = warp(x, frames, spread)
            if augment:
                x = spec_augment(x)
        emissions, lengths = model(x, frames)
        return ctc_loss(emissions, lengths, ids, id_lengths), {}

    return step


@torch.no_grad()
def recognize(model, features: Features, clips: Clips, plan: Plan, decoders: dict,
              batch_size: int = 64) -> tuple[dict[str, list[str]], list[str]]:  # fmt: skip
    """Hypotheses of every decoder in `decoders` (name -> decoder, None: greedy) for every
    utterance of `plan`, from one pass of the model over batches of similar length; and the
    references."""
    model.eval()
    order = torch.argsort(plan.lengths(clips), descending=True).cpu()  # plans live on the host
    hyps = {name: [""] * len(order) for name in decoders}
    for rows in order.split(batch_size):
        waves, samples = pad_silence(*assemble(clips, plan, rows))
        emissions, lengths = model(*features(waves, samples))
        for name, decoder in decoders.items():
            texts = decoder(emissions, lengths) if decoder else greedy(emissions, lengths)
            for r, t in zip(rows.tolist(), texts, strict=True):
                hyps[name][r] = t
    return hyps, plan.transcripts(clips)


def score(model, features, split: Split, decoder, batch_size: int = 64) -> dict:
    """Test WER/CER (lexicon beam search, and greedy), single-clip accuracy, and the WER of each
    speaker's test utterances."""
    hyps, refs = recognize(model, features, split.clips, split.test,
                           {"beam": decoder, "greedy": None}, batch_size)  # fmt: skip
    metrics = {**wer_cer(hyps["beam"], refs, "test_"),
               "test_wer_greedy": wer_cer(hyps["greedy"], refs)["wer"]}  # fmt: skip
    if split.test_clips is not None:
        found, clip_refs = recognize(
            model, features, split.clips, split.test_clips, {"beam": decoder}
        )
        metrics["clip_acc"] = sum(
            h == r for h, r in zip(found["beam"], clip_refs, strict=True)
        ) / len(clip_refs)
    speaker = split.clips.speakers.cpu()[split.test.clips[:, 0]].tolist()
    per_speaker = {}
    for k, name in enumerate(split.clips.speaker_names):
        pairs = [(h, r) for h, r, s in zip(hyps["beam"], refs, speaker, strict=True) if s == k]
        if pairs:
            per_speaker[name] = round(
                wer_cer([h for h, _ in pairs], [r for _, r in pairs])["wer"], 4
            )
    return {**metrics, "per_speaker_wer": per_speaker}


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
    clips = split.clips
    features = Features(cfg.n_mels).to(device)
    model = build_model(
        cfg.model,
        CTCConfig(cfg.n_mels, cfg.channels, cfg.hidden, cfg.layers, cfg.dropout, stride=cfg.stride),
    )
    loader = LengthLoader.for_config(lengths, make_collate(clips, split.train, device), cfg,
                                     max_tokens=int(cfg.batch_seconds * SAMPLE_RATE))  # fmt: skip
    decoder = LexiconDecoder(words, cfg.beam)

    @distributed.on_main  # rank 0 decodes alone; every rank gets its numbers
    def evaluate(m):
        hyps, refs = recognize(m, features, clips, split.val, {"beam": decoder})
        metrics = {"val_wer": wer_cer(hyps["beam"], refs)["wer"]}
        if split.val_clips is not None:
            found, clip_refs = recognize(m, features, clips, split.val_clips, {"beam": decoder})
            hits = sum(h == r for h, r in zip(found["beam"], clip_refs, strict=True))
            metrics["val_clip_acc"] = hits / len(clip_refs)
        return metrics

    val = split.val is not None
    result = fit(model, make_step(features, cfg.spec_augment, cfg.warp), loader, cfg, device=device,
                 evaluate=evaluate if val else None, monitor="val_wer" if val else None,
                 mode="min")  # fmt: skip
    metrics = {**result.best, **distributed.on_main(score)(model, features, split, decoder)}
    report = write_report(cfg, TASK, metrics, result.steps, result.wall_seconds, device)
    if distributed.is_main():
        shown = " ".join(
            f"{k} {v:.4f}" for k, v in metrics.items() if k.startswith(("test_", "clip"))
        )
        print(f"{shown} after {result.steps} steps in {result.wall_seconds:.1f}s")
    return report


@dataclasses.dataclass
class SpeechEvalConfig(EvalConfig):
    DEFAULTS: ClassVar[dict] = {
        "out_dir": CTC.run_dir,
        "batch_size": 64,
    }


def evaluate(cfg: SpeechEvalConfig) -> dict:
    """Test WER/CER, clip accuracy and a per-speaker WER table; saves alignment.png (one test
    utterance's spectrogram with its CTC alignment)."""
    t0 = time.perf_counter()
    device = pick_device(cfg.device)
    run = load_trained(cfg.out_dir, device)
    model, features = run.model, run.features
    run_cfg = from_run(SpeechConfig, run.config)
    split = make_split(run_cfg, cfg.data_dir)
    # a run from before word lists were stored: the list its training would have stored
    words = run.words
    if words is None:
        words = lexicon_words(run_cfg.lexicon, split.train.transcripts(split.clips))
    decoder = LexiconDecoder(words, run_cfg.beam)
    split = dataclasses.replace(split, clips=split.clips.to(device))
    clips = split.clips
    metrics = score(model, features, split, decoder, cfg.batch_size)
    per_speaker = metrics["per_speaker_wer"]
    plot_alignment(model, features, clips, split.test, f"{cfg.out_dir}/alignment.png")
    table = "\n".join(f"  {name:10s} {w:.4f}" for name, w in per_speaker.items())
    summary = (f"test_wer {metrics['test_wer']:.4f} test_cer {metrics['test_cer']:.4f} "
               f"clip_acc {metrics.get('clip_acc', float('nan')):.4f}\nper-speaker WER:\n{table}\n"
               f"wrote {cfg.out_dir}/alignment.png")  # fmt: skip
    return report_eval(cfg, TASK, metrics, run.step, time.perf_counter() - t0, device, summary)


COMMANDS = {"train": main, "eval": evaluate, "transcribe": transcribe}
