"""Speech: a CTC speech recognizer on spoken digits (planned)."""

from core.registry import Demo

DEMOS = [Demo("speech", "ctc", "CTC speech recognizer", "FSDD", "word error rate")]
