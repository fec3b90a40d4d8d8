"""Translation: a German-to-English seq2seq translator (planned)."""

from core.registry import Demo

DEMOS = [Demo("translation", "seq2seq", "seq2seq translator de-en", "Multi30k", "BLEU")]
