"""Translation: a German-to-English seq2seq translator (`translation.seq2seq`)."""

from core.demo import Demo, Tour

MULTI30K = (
    "Multi30k (Elliott et al., 2016), partly derived from Flickr30K: for non-commercial "
    "research and education only."
)

SEQ2SEQ = Demo(
    "translation",
    "seq2seq",
    "seq2seq translator de-en",
    "Multi30k",
    "test sacreBLEU",
    run_dir="runs/translation",
    module="translation.seq2seq.train",
    tour=Tour(
        metric="test_bleu",
        target=35.0,
        chance=0.5,  # sacreBLEU 0.48 on test2016
        chance_is="copying the German sentence",
        # a small Transformer learns fastest in a short run (the probes that chose it, on
        # validation BLEU: docs/translation-seq2seq.md)
        quick={
            "d_model": 128,
            "layers": 2,
            "d_ff": 512,
            "vocab_size": 4000,
            "dropout": 0.0,
            "batch_size": 32,
            "lr": 2e-3,
            "warmup_steps": 60,
            "max_steps": 1100,
            "eval_every": 0,
            "beam": 1,
        },
        pictures=("attention.png",),
        full=40.18,
        full_source="translation transformer_test_bleu",
    ),
    app="translation.seq2seq.predict:app_tab",
    licence=MULTI30K,
)

DEMOS = [SEQ2SEQ]
