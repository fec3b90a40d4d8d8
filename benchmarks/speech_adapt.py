"""speech-adapt: speaker adaptation by fine-tuning. For each FSDD speaker X, the default model
trained without X (the leave-one-speaker-out run, reused from --keep-runs DIR/loso-X when
finished, else trained) is fine-tuned (`--init-from`) on X's first 5 takes of each digit (50
recordings, composed into utterances) with the chosen recipe, and both are scored on utterances
composed of X's test takes: the zero-shot WER (before) and the adapted WER (after). Of X's other
45 takes of each digit, 10 (drawn from the seed) validate: `speech-adapt-tune` chose the recipe on
them, and the other 35 test. Also the recipe of earlier rows (`plain`) and the chosen recipe from
a fresh model (no --init-from): what 50 recordings give alone."""

import dataclasses
from pathlib import Path

import torch

from benchmarks.speech_ctc import SPEAKERS, train
from core.device import pick_device
from core.parse import from_run
from core.run import WEIGHTS
from speech.ctc.decode import LexiconDecoder
from speech.ctc.predict import load_trained
from speech.ctc.scoring import score, validation_scores
from speech.ctc.train import SpeechConfig
from speech.ctc.utterances import make_split

TAKES = 5
"""Takes of each digit the new speaker records for adaptation."""
VAL_TAKES = 10
"""Of the speaker's other takes of each digit, those that validate (the rest test)."""
PLAIN = {"max_steps": 100, "lr": 1e-3, "warmup_steps": 10, "schedule": "constant"}
COSINE = {"max_steps": 200, "lr": 1e-3, "warmup_steps": 10, "schedule": "cosine"}
RECIPES = {
    "plain": PLAIN,
    "cosine": COSINE,
    "gentle": {**PLAIN, "lr": 3e-4},
    "frozen-rnn": {**COSINE, "freeze": r"^rnn\."},
    "levels": {**COSINE, "gain_spread": 2.0},
    "levels-wider": {**COSINE, "gain_spread": 2.5},
    "levels-faster": {**COSINE, "gain_spread": 2.0, "lr": 2e-3},
    "levels-warp": {**COSINE, "gain_spread": 2.0, "warp": 0.1},
}
"""The fine-tuning recipes `speech-adapt-tune` scores on validation takes: each is about a minute
on this project's 2-core CPU. `gain_spread` lets a word of a training utterance be far louder or
quieter than its neighbours, as a speaker's recordings of different days are."""
CHOSEN = "levels"
"""The recipe with the best validation row of `speech-adapt-tune` (BENCHMARKS.md)."""


def base_run(args, speaker: str) -> Path:
    """The default model trained without `speaker`: DIR/loso-<speaker> when finished, else
    trained now."""
    base = Path(args.keep_runs or "") / f"loso-{speaker}"
    if args.keep_runs and (base / WEIGHTS).is_file():
        return base
    return Path(train(args, f"loso-{speaker}", holdout_speaker=speaker)["config"]["out_dir"])


def zero_shot(base: Path, config: dict, device: torch.device, data_dir, part: str) -> float:
    """The WER of the run in `base` (never trained on the speaker) on the `part` ("test" or
    "val") utterances of a fine-tuning run's `config`."""
    run = load_trained(str(base), device)
    split = make_split(from_run(SpeechConfig, config), data_dir)
    split = dataclasses.replace(split, clips=split.clips.to(device))
    decoder = LexiconDecoder(run.lexicon(), run.config["beam"])
    if part == "val":
        return validation_scores(run.model, run.features, split, decoder)["val_wer"]
    return score(run.model, run.features, split, decoder)["test_wer"]


def quick_fields(args) -> dict:
    return {"max_steps": 2, "train_utterances": 50, "test_utterances": 20} if args.quick else {}


def run(args) -> dict:
    device = pick_device(args.device)
    row = {"takes_per_digit": TAKES, "val_takes": VAL_TAKES, "recipe": CHOSEN, **RECIPES[CHOSEN]}
    for speaker in SPEAKERS[: 1 if args.quick else None]:
        base = base_run(args, speaker)
        fields = {"holdout_speaker": speaker, "adapt_takes": TAKES, "adapt_val_takes": VAL_TAKES}
        fields |= quick_fields(args)  # over the recipe's steps
        start = {"init_from": str(base)}
        adapted = train(args, f"adapt-{speaker}", **{**RECIPES[CHOSEN], **fields}, **start)
        plain = train(args, f"plain-{speaker}", **{**PLAIN, **fields}, **start)
        scratch = train(args, f"scratch-{speaker}", **{**RECIPES[CHOSEN], **fields})
        before = zero_shot(base, adapted["config"], device, args.data_dir, "test")
        row[speaker] = {
            "zero_shot_wer": round(before, 4),
            "adapted_wer": round(adapted["metrics"]["test_wer"], 4),
            "plain_wer": round(plain["metrics"]["test_wer"], 4),
            "scratch_wer": round(scratch["metrics"]["test_wer"], 4),
            "adapt_seconds": round(adapted["wall_seconds"], 1),
        }
    return row
