"""How a trained recognizer is scored: hypotheses for every utterance of a plan, WER/CER,
single-clip accuracy and per-speaker WER, the alignment picture of `eval`, and the shift suite of
`eval --shift` (clip accuracy on shifted single recordings)."""

from typing import NamedTuple

import torch

from core.files import save_figure
from core.shift import Shift, middle_sets, plot_shifts, run_shifts
from speech.ctc.data import Clips
from speech.ctc.decode import greedy, word_times
from speech.ctc.features import Features
from speech.ctc.utterances import Plan, Split, assemble, pad_silence
from speech.shifts import clipping, noise, pitch, reverb, speed


@torch.no_grad()
def recognize(
    model, features: Features, clips: Clips, plan: Plan, decoders: dict, batch_size: int = 64
) -> tuple[dict[str, list[str]], list[str]]:
    """Hypotheses of every decoder in `decoders` (name -> decoder, None: greedy) for every
    utterance of `plan`, from one pass of the model over batches of similar length; and the
    references."""
    lengths = plan.lengths(clips).cpu()  # plans live on the host

    def batch(rows):
        return assemble(clips, plan, rows)

    hyps = recognize_batches(model, features, lengths, decoders, batch_size, batch)
    return hyps, plan.transcripts(clips)


@torch.no_grad()
def recognize_waves(
    model,
    features: Features,
    waves: torch.Tensor,
    samples: torch.Tensor,
    decoders: dict,
    batch_size: int = 64,
) -> dict[str, list[str]]:
    """`recognize` for waveforms (N, T) already made, with their lengths (N,)."""

    def batch(rows):
        return waves[rows], samples[rows]

    return recognize_batches(model, features, samples.cpu(), decoders, batch_size, batch)


def recognize_batches(model, features, lengths, decoders, batch_size, batch) -> dict:
    """Hypotheses for rows 0..N-1 of audio `batch(rows)` gives, longest first in batches."""
    model.eval()
    order = torch.argsort(lengths, descending=True)
    hyps = {name: [""] * len(order) for name in decoders}
    for rows in order.split(batch_size):
        waves, samples = batch(rows)
        waves, samples = pad_silence(waves[:, : int(samples.max())], samples)
        emissions, lengths = model(*features(waves, samples))
        for name, decoder in decoders.items():
            texts = decoder(emissions, lengths) if decoder else greedy(emissions, lengths)
            for r, t in zip(rows.tolist(), texts, strict=True):
                hyps[name][r] = t
    return hyps


def score(model, features, split: Split, decoder, batch_size: int = 64) -> dict:
    """Test WER/CER (lexicon beam search, and greedy), single-clip accuracy, and the WER of each
    speaker's test utterances."""
    hyps, refs = recognize(
        model, features, split.clips, split.test, {"beam": decoder, "greedy": None}, batch_size
    )
    metrics = {
        **wer_cer(hyps["beam"], refs, "test_"),
        "test_wer_greedy": wer_cer(hyps["greedy"], refs)["wer"],
    }
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


def validation_scores(model, features, split: Split, decoder) -> dict:
    """Validation WER of the utterances, and the clip accuracy of the single validation
    recordings where the split has them: what picks a run's kept weights."""
    hyps, refs = recognize(model, features, split.clips, split.val, {"beam": decoder})
    metrics = {"val_wer": wer_cer(hyps["beam"], refs)["wer"]}
    if split.val_clips is not None:
        found, clip_refs = recognize(
            model, features, split.clips, split.val_clips, {"beam": decoder}
        )
        hits = sum(h == r for h, r in zip(found["beam"], clip_refs, strict=True))
        metrics["val_clip_acc"] = hits / len(clip_refs)
    return metrics


def wer_cer(hyps: list[str], refs: list[str], prefix: str = "") -> dict[str, float]:
    """Word and character error rates over a corpus: edits (substitutions, insertions and
    deletions) over the reference's words or characters, spaces included (torchmetrics'
    definitions, without its import, which costs seconds)."""
    from torchaudio.functional import edit_distance

    word_edits = sum(edit_distance(h.split(), r.split()) for h, r in zip(hyps, refs, strict=True))
    char_edits = sum(edit_distance(list(h), list(r)) for h, r in zip(hyps, refs, strict=True))
    words = max(1, sum(len(r.split()) for r in refs))
    chars = max(1, sum(len(r) for r in refs))
    return {f"{prefix}wer": word_edits / words, f"{prefix}cer": char_edits / chars}


@torch.no_grad()
def plot_alignment(model, features: Features, clips: Clips, plan: Plan, path: str) -> None:
    """One test utterance's log-mel spectrogram with its CTC forced alignment drawn over it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    three = ((plan.clips >= 0).sum(1) == 3).nonzero().flatten()  # a three-word utterance if any
    row = three[:1] if len(three) else torch.tensor([0])
    wave, samples = assemble(clips, plan, row)
    x, frames = features(wave, samples)
    emissions, lengths = model(x, frames)
    text = plan.transcripts(clips)[row.item()]
    words = word_times(emissions[0, : lengths[0]], text, model.stride / 100)
    fig, ax = plt.subplots(figsize=(9, 3.5))
    seconds = frames[0].item() / 100
    ax.imshow(
        x[0, :, : frames[0]].cpu().numpy(),
        origin="lower",
        aspect="auto",
        extent=(0, seconds, 0, x.shape[1]),
    )
    for w in words:
        ax.axvspan(w["start"], w["end"], color="white", alpha=0.15)
        ax.axvline(w["start"], color="white", lw=0.8)
        ax.text((w["start"] + w["end"]) / 2, x.shape[1] - 4, w["word"], color="white", ha="center")
    ax.set(xlabel="seconds", ylabel="mel band", title=f"CTC alignment: {text!r}")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


class Takes(NamedTuple):
    """Single recordings for the shift suite: waveforms (N, T) zero-padded, lengths (N,) and what
    each one says."""

    waves: torch.Tensor
    samples: torch.Tensor
    texts: list[str]


def takes(clips: Clips, plan: Plan) -> Takes:
    """The recordings of a plan of single clips (a split's `test_clips` or `val_clips`)."""
    waves, samples = assemble(clips, plan, torch.arange(len(plan)))
    return Takes(waves, samples, plan.transcripts(clips))


def audio_shift(shift, **fixed):
    """A condition of the suite on `Takes`: `shift` works on (waves, samples); texts are kept."""

    def apply(data: Takes, severity: float, generator: torch.Generator) -> Takes:
        waves, samples = shift(data.waves, data.samples, severity, generator=generator, **fixed)
        return Takes(waves, samples, data.texts)

    return apply


SHIFTS = [
    Shift("white", (20, 10, 5), audio_shift(noise, kind="white"), "dB SNR"),
    Shift("pink", (20, 10, 5), audio_shift(noise, kind="pink"), "dB SNR"),
    Shift("babble", (20, 10, 5), audio_shift(noise, kind="babble"), "dB SNR, 3 talkers"),
    Shift("clipping", (2, 8, 32), audio_shift(clipping), "peak drive"),
    Shift("speed", (0.1, 0.2, 0.3), audio_shift(speed), "faster or slower by"),
    Shift("pitch", (1, 2, 4), audio_shift(pitch), "semitones up or down"),
    Shift("reverb", (0.3, 0.6, 1.0), audio_shift(reverb), "RT60, seconds"),
]
"""The recognizer's shift suite on single recordings: noise (white, pink, babble of other
recordings) at falling SNR, clipping, speed, pitch and room reverberation, mild to strong."""


def score_shifts(model, features, data: Takes, decoder, out_dir: str, batch_size: int = 64) -> dict:
    """The suite's table of clip accuracy on `data`; saves its curves and failures."""

    def found(d: Takes) -> list[str]:
        beam = {"beam": decoder}
        return recognize_waves(model, features, d.waves, d.samples, beam, batch_size)["beam"]

    def accuracy(d: Takes) -> float:
        return sum(h == r for h, r in zip(found(d), d.texts, strict=True)) / len(d.texts)

    table = run_shifts(SHIFTS, data, accuracy)
    plot_shifts(table, "clip accuracy", f"{out_dir}/shift.png")
    middle = middle_sets(SHIFTS, data)
    heard = {name: found(data) for name, data in middle.items()}
    plot_shift_failures(middle, heard, features, f"{out_dir}/shift_failures.png")
    return table


@torch.no_grad()
def plot_shift_failures(shifted: dict, found: dict, features, path: str, n: int = 4) -> None:
    """For each condition at its middle severity, the log-mel features of its first `n` wrongly
    recognised recordings, titled said→heard."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(shifted), n, figsize=(n * 2.2, len(shifted) * 1.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for row, (name, data) in zip(axes, shifted.items(), strict=True):
        wrong = [i for i, (h, r) in enumerate(zip(found[name], data.texts, strict=True)) if h != r]
        row[0].text(-0.1, 0.5, name, transform=row[0].transAxes, ha="right", va="center")
        for ax, i in zip(row, wrong, strict=False):
            x, frames = features(data.waves[i : i + 1], data.samples[i : i + 1])
            ax.imshow(x[0, :, : frames[0]].cpu().numpy(), origin="lower", aspect="auto")
            ax.set_title(f"{data.texts[i]}→{found[name][i] or '(nothing)'}", fontsize=8)
    fig.suptitle("misrecognised recordings under each shift (middle severity): said→heard")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
