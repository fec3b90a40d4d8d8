"""Translation: a German-to-English seq2seq translator (`translation.seq2seq`)."""

from core.registry import Demo

DEMOS = [
    Demo(
        "translation",
        "seq2seq",
        "seq2seq translator de-en",
        "Multi30k",
        "test sacreBLEU",
        "translation.seq2seq.train",
    )
]
