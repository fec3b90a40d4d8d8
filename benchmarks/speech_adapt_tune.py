"""speech-adapt-tune: choose speech-adapt's fine-tuning recipe on validation takes alone. For each
FSDD speaker X, the run trained without X (DIR/loso-X from --keep-runs, else trained) is
fine-tuned with each recipe of `benchmarks.speech_adapt.RECIPES` on X's first 5 takes of each
digit and scored on X's validation takes, with `--test-utterances 0`: no test take is scored. Per
recipe, the validation WER of each speaker and its ratio to the zero-shot validation WER; the
best recipe brings the most speakers to a third of their zero-shot WER, then has the lowest mean
ratio to three decimals (finer is noise: one more word wrong in a speaker's validation moves it by
0.001 or more); a tie goes to the recipe listed first in RECIPES."""

from benchmarks.speech_adapt import RECIPES, TAKES, VAL_TAKES, base_run, quick_fields, zero_shot
from benchmarks.speech_ctc import SPEAKERS, train
from core.device import pick_device


def run(args) -> dict:
    device = pick_device(args.device)
    speakers = SPEAKERS[: 1 if args.quick else None]
    row = {"takes_per_digit": TAKES, "val_takes": VAL_TAKES, "zero_shot_val_wer": {}}
    results = {}
    for speaker in speakers:
        base = base_run(args, speaker)
        fields = {"holdout_speaker": speaker, "adapt_takes": TAKES, "adapt_val_takes": VAL_TAKES}
        fields |= {**quick_fields(args), "test_utterances": 0, "init_from": str(base)}
        before = None
        for name, recipe in RECIPES.items():
            tuned = train(args, f"tune-{name}-{speaker}", **{**recipe, **fields})
            if before is None:
                before = zero_shot(base, tuned["config"], device, args.data_dir, "val")
                row["zero_shot_val_wer"][speaker] = round(before, 4)
            wer = tuned["metrics"]["val_wer"]
            results.setdefault(name, {})[speaker] = (round(wer, 4), wer / max(before, 1e-9))
    for name, per_speaker in results.items():
        ratios = [ratio for _, ratio in per_speaker.values()]
        row[name] = {
            "val_wer": {speaker: wer for speaker, (wer, _) in per_speaker.items()},
            "speakers_met": sum(ratio <= 1 / 3 for ratio in ratios),
            "mean_ratio": round(sum(ratios) / len(ratios), 3),
        }
    # min keeps the first of equal keys: the recipe listed first wins a tie
    row["best"] = min(results, key=lambda n: (-row[n]["speakers_met"], row[n]["mean_ratio"]))
    return row
