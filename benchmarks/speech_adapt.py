"""speech-adapt: speaker adaptation by fine-tuning. For each FSDD speaker X, the default model
trained without X (the leave-one-speaker-out run, reused from --keep-runs DIR/loso-X when
finished, else trained) is fine-tuned (`--init-from`) on X's first 5 takes of each digit (50
recordings, composed into utterances) for ADAPT_STEPS steps, and both are scored on utterances
composed of X's other takes: the zero-shot WER (before) and the adapted WER (after). Also the
same fine-tuning recipe from a fresh model (no --init-from): what 50 recordings give alone. The
recipe (steps, rate) is fixed in advance, not tuned: no validation takes are spent on it."""

import dataclasses
from pathlib import Path

import torch

from benchmarks.speech_ctc import SPEAKERS, train
from core.device import pick_device
from core.parse import from_run
from core.run import WEIGHTS
from speech.ctc.decode import LexiconDecoder
from speech.ctc.predict import load_trained
from speech.ctc.scoring import score
from speech.ctc.train import SpeechConfig
from speech.ctc.utterances import make_split

TAKES = 5
"""Takes of each digit the new speaker records for adaptation."""
ADAPT = {
    "max_steps": 100,
    "lr": 1e-3,
    "warmup_steps": 10,
    "schedule": "constant",
}
"""The fine-tuning recipe: about a minute on this project's 2-core CPU."""


def zero_shot(base: Path, adapted: dict, device: torch.device, data_dir) -> float:
    """The WER of the run in `base` (never trained on the speaker) on the adapted run's test
    utterances (the speaker's other takes)."""
    run = load_trained(str(base), device)
    split = make_split(from_run(SpeechConfig, adapted["config"]), data_dir)
    split = dataclasses.replace(split, clips=split.clips.to(device))
    decoder = LexiconDecoder(run.lexicon(), run.config["beam"])
    return score(run.model, run.features, split, decoder)["test_wer"]


def run(args) -> dict:
    device = pick_device(args.device)
    quick = {"max_steps": 2, "train_utterances": 50, "test_utterances": 20} if args.quick else {}
    row = {"takes_per_digit": TAKES, "steps": ADAPT["max_steps"]}
    for speaker in SPEAKERS[: 1 if args.quick else None]:
        base = Path(args.keep_runs or "") / f"loso-{speaker}"
        if not args.keep_runs or not (base / WEIGHTS).is_file():
            base = Path(
                train(args, f"loso-{speaker}", holdout_speaker=speaker)["config"]["out_dir"]
            )
        fields = {"holdout_speaker": speaker, "adapt_takes": TAKES, **ADAPT, **quick}
        adapted = train(args, f"adapt-{speaker}", init_from=str(base), **fields)
        scratch = train(args, f"scratch-{speaker}", **fields)
        row[speaker] = {
            "zero_shot_wer": round(zero_shot(base, adapted, device, args.data_dir), 4),
            "adapted_wer": round(adapted["metrics"]["test_wer"], 4),
            "scratch_wer": round(scratch["metrics"]["test_wer"], 4),
            "adapt_seconds": round(adapted["wall_seconds"], 1),
        }
    return row
