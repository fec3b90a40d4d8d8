"""Translation: a German-to-English seq2seq translator (`translation.seq2seq`)."""

from core.registry import Demo, Tour

DEMOS = [
    Demo(
        "translation",
        "seq2seq",
        "seq2seq translator de-en",
        "Multi30k",
        "test sacreBLEU",
        "translation.seq2seq.train",
        Tour(
            metric="test_bleu",
            target=35.0,
            chance=0.5,  # sacreBLEU 0.48 on test2016
            chance_is="copying the German sentence",
            quick={"max_steps": 200, "warmup_steps": 40, "eval_every": 0, "beam": 1},
            pictures=("attention.png",),
            full=40.18,
            full_source="translation transformer_test_bleu",
        ),
        app="translation.seq2seq.predict:app_tab",
    )
]
