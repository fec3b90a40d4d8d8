"""How translations are scored and shown: corpus sacreBLEU and chrF, and a cross-attention map."""

from pathlib import Path

from core.files import save_figure


def bleu_chrf(hyps: list[str], refs: list[str]) -> dict:
    """Corpus sacreBLEU (cased, detokenized, 13a) and chrF, with BLEU's signature."""
    from sacrebleu.metrics import BLEU, CHRF

    bleu = BLEU()
    return {
        "bleu": bleu.corpus_score(hyps, [refs]).score,
        "chrf": CHRF().corpus_score(hyps, [refs]).score,
        "signature": str(bleu.get_signature()),
    }


def plot_attention(translator, sentence: str, path: Path) -> bool:
    """Save the cross-attention heat map of one translation; False where the model shows none."""
    found = translator.attention(sentence)
    if found is None:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    src, out, weights = found
    fig, ax = plt.subplots(figsize=(0.35 * len(src) + 2, 0.3 * len(out) + 2))
    ax.imshow(weights[: len(out), : len(src)], cmap="Blues", aspect="auto")
    clean = lambda tokens: [t.replace("Ġ", "·") for t in tokens]  # noqa: E731 the byte-level space mark
    ax.set_xticks(range(len(src)), clean(src), rotation=90, fontsize=8)
    ax.set_yticks(range(len(out)), clean(out), fontsize=8)
    ax.set(
        xlabel="source (German)",
        ylabel="translation (English)",
        title="cross-attention, last layer",
    )
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return True
