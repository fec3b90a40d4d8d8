"""Speech: a CTC speech recognizer on spoken digits (`speech.ctc`)."""

from core.registry import Demo

DEMOS = [
    Demo("speech", "ctc", "CTC speech recognizer", "FSDD", "word error rate", "speech.ctc.train")
]
