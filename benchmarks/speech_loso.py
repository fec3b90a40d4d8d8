"""speech-loso: the six leave-one-speaker-out runs of the default speech model alone (the part
`speech-ctc --no-loso` leaves out): per held-out speaker, the composed-test WER on that speaker's
utterances after training on the other five, the mean and the worst."""

import statistics

from benchmarks.speech_ctc import loso_wers


def run(args) -> dict:
    wers = loso_wers(args)
    return {
        "loso_wer_mean": round(statistics.mean(wers.values()), 4),
        "loso_wer_max": max(wers.values()),
        "loso_wer": wers,
    }
