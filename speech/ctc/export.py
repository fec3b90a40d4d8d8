"""`export`: the speech model as an ONNX file (`core.export`).

    showcase speech ctc export --out exported/ [--quantize int8]

The graph takes one 8 kHz waveform (1, samples), float32 in [-1, 1] (`data.to_8k` resamples any
recording), puts recognition's edge silence around it, computes the normalised log-mel features and
returns per-frame log-probabilities (1, frames, vocabulary), a frame every `frame_seconds`.
Decoding is the step after it: greedy (the best class per frame, repeats merged, the blank at index
0 dropped) or a lexicon beam search over the sidecar's `words`. Long recordings are cut into chunks
first, as `transcribe` does.

ONNX only: torch.export loses the GRU's time axis after the strided convolutions, so the file is
two traced parts (features to the GRU's input; the GRU and the head) joined into one graph. Most of
the weights are the GRU's, and ONNX Runtime's quantizer has no int8 GRU (it has LSTM), so the int8
file stores the weights in 8 bits and computes in float32 (`core.onnx_files.int8_weights`): a
quarter of the size, not faster.
"""

import dataclasses

import torch
from torch import nn

from core.errors import UsageError
from core.export import ExportConfig, ExportSpec, export
from core.parse import from_run
from core.run import check_task
from speech import CTC
from speech.ctc.data import SAMPLE_RATE, VOCAB
from speech.ctc.features import Features
from speech.ctc.predict import load_trained
from speech.ctc.utterances import EDGE_SILENCE, assemble, make_split

TASK = "speech.ctc"


def features_of(features: Features, waves: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Recognition's edge silence around whole waveforms (N, S), then their features and frame
    counts."""
    waves = nn.functional.pad(waves, (EDGE_SILENCE, EDGE_SILENCE))  # (N, S + 2 * pad)
    samples = torch.full((waves.shape[0],), waves.shape[1], dtype=torch.long)
    return features(waves, samples)  # (N, F, T), (N,)


class Recognizer(nn.Module):
    """One waveform -> log-probs, through the model's own forward (the eager reference)."""

    def __init__(self, model: nn.Module, features: Features) -> None:
        super().__init__()
        self.model, self.features = model, features

    def forward(self, waves: torch.Tensor) -> torch.Tensor:  # waves: (1, S) float32
        return self.model(*features_of(self.features, waves))[0]  # (1, frames, V)


class Frontend(nn.Module):
    """The first part: waveform -> the GRU's input (features, convolutions, projection)."""

    def __init__(self, recognizer: Recognizer) -> None:
        super().__init__()
        self.model, self.features = recognizer.model, recognizer.features

    def forward(self, waves: torch.Tensor) -> torch.Tensor:  # waves: (1, S)
        x, _ = features_of(self.features, waves)  # (1, F, T)
        x = self.model.conv(x.unsqueeze(1))  # (1, C, F/2, T/s)
        x = x.flatten(1, 2).transpose(1, 2)  # (1, T/s, C * F/2)
        return self.model.norm(self.model.proj(x))  # (1, T/s, H)


class Recurrent(nn.Module):
    """The second part: the GRU's input -> log-probs (one utterance: no packing needed)."""

    def __init__(self, recognizer: Recognizer) -> None:
        super().__init__()
        self.model = recognizer.model

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (1, T, H)
        x, _ = self.model.rnn(x)  # (1, T, 2H)
        return self.model.head(x).log_softmax(-1)  # (1, T, V)


@dataclasses.dataclass
class SpeechExportConfig(ExportConfig):
    DEMO = CTC


def check_waves(train_cfg: dict, data_dir: str | None, count: int) -> list[torch.Tensor]:
    """The run's first `count` test utterances, each a (1, samples) waveform."""
    from speech.ctc.train import SpeechConfig  # train.py lists this command: import late

    split = make_split(from_run(SpeechConfig, train_cfg), data_dir)
    rows = torch.arange(min(count, len(split.test)))
    waves, samples = assemble(split.clips, split.test, rows)
    return [waves[i : i + 1, : int(n)].clone() for i, n in enumerate(samples)]


def spec_for(cfg: SpeechExportConfig) -> ExportSpec:
    """What `export` writes of the run's speech model, checked on 8 real test utterances of
    different lengths."""
    check_task(cfg.out_dir, TASK)
    run = load_trained(cfg.out_dir, torch.device("cpu"))
    if not isinstance(getattr(run.model, "rnn", None), nn.GRU):
        raise UsageError("speech ctc exports the ctc model; this run trained the wav2letter peer")
    recognizer = Recognizer(run.model, run.features).eval()
    waves = check_waves(run.config, cfg.data_dir, 8)
    return ExportSpec(
        name="speech-ctc",
        module=recognizer,
        inputs=(waves[0],),
        input_names=["waves"],
        output_names=["log_probs"],
        dynamic={"waves": {1: "samples"}, "log_probs": {1: "frames"}},
        sidecar={
            "sample_rate": SAMPLE_RATE,
            "waves": "float32 in [-1, 1], mono, one recording a call; silence is added inside",
            "vocabulary": VOCAB,
            "blank": 0,
            "frame_seconds": run.model.stride / 100,
            "words": run.lexicon(),
            "decoding": "greedy: best class per frame, merge repeats, drop the blank; or a "
            "lexicon beam search over `words`",
        },
        more_inputs=[(w,) for w in waves[1:]],
        parts=[Frontend(recognizer), Recurrent(recognizer)],
        formats=("onnx",),
        int8="weights",
    )


def export_model(cfg: SpeechExportConfig) -> dict:
    """Write the run's speech model as ONNX (int8 with --quantize) to --out, checked."""
    return export(spec_for(cfg), cfg)
