"""How a trained recognizer is scored: hypotheses for every utterance of a plan, WER/CER,
single-clip accuracy and per-speaker WER, and the alignment picture of `eval`."""

import torch

from core.files import save_figure
from speech.ctc.data import Clips
from speech.ctc.decode import greedy, word_times
from speech.ctc.features import Features
from speech.ctc.utterances import Plan, Split, assemble, pad_silence


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
        x[0, :, : frames[0]].cpu(),
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
