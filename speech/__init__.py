"""Speech: a CTC speech recognizer on spoken digits (`speech.ctc`)."""

from core.demo import Demo, Tour

FSDD = "Free Spoken Digit Dataset: Creative Commons Attribution-ShareAlike 4.0 International."

CTC = Demo(
    "speech",
    "ctc",
    "CTC speech recognizer",
    "FSDD",
    "word error rate",
    run_dir="runs/speech-ctc",
    module="speech.ctc.train",
    tour=Tour(
        metric="test_wer",
        target=0.015,
        chance=0.9,
        chance_is="a random digit word for each spoken digit",
        # a constant rate leaves CTC's all-blank plateau sooner than a decaying one: 500 steps
        # gave val WER 0.22 with the stride-2 model, 0.025 with stride 4 (cosine over 250
        # steps: 1.0; over 400 steps of 120-s batches: 0.69; both stride 2); with today's
        # beam-search words from the training transcripts, val WER 0.046 after 400 steps and
        # 0.049 after 500, so 400 (a fifth less of the tour's longest training)
        quick={"max_steps": 400, "schedule": "constant", "warmup_steps": 20, "eval_every": 0},
        pictures=("alignment.png",),
        lower_is_better=True,
        full=0.0027,
        full_source="speech-ctc test_wer",
    ),
    app="speech.ctc.predict:app_tab",
    licence=FSDD,
)

DEMOS = [CTC]
