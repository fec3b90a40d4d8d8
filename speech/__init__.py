"""Speech: a CTC speech recognizer on spoken digits (`speech.ctc`)."""

from core.registry import Demo, Tour

DEMOS = [
    Demo(
        "speech",
        "ctc",
        "CTC speech recognizer",
        "FSDD",
        "word error rate",
        "speech.ctc.train",
        Tour(
            metric="test_wer",
            target=0.015,
            chance=0.9,
            chance_is="a random digit word for each spoken digit",
            quick={"max_steps": 250, "eval_every": 0},
            pictures=("alignment.png",),
            lower_is_better=True,
        ),
        app="speech.ctc.predict:app_tab",
    )
]
