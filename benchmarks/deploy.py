"""deploy: each exportable model in every form it leaves in, side by side under one protocol: eager
PyTorch float32, ONNX Runtime float32, ONNX Runtime int8 (where offered) and the torch.export
program. Per form: size on disk, batch-1 latency (median of 200 calls after 20 of warm-up),
throughput at a batch that suits the model, and quality on the full real test set through the
same post-processing. The translator, two files driven by a decoding loop, is timed as a user
runs it: greedy translation of every test sentence (batches of 128) and of one sentence alone.
Every runtime gets the same threads (torch's count).

The models are the tour's quick configurations, trained here (or reused from --keep-runs DIR):
the comparison is between forms of one model, not a new quality record.
"""

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from core.command import config_class
from core.parse import build, from_run
from core.run import WEIGHTS, run_config
from showcase import catalog

WARMUP, CALLS, BATCH_CALLS = 20, 200, 10


def trained(name: str, args, folder: Path) -> Path:
    """The run of demo `name` (its quick configuration): reused when finished, else trained."""
    demo = next(d for d in catalog.all_demos() if d.name == name)
    run_dir = folder / Path(demo.run_dir).name  # the tour's name for it
    if not (run_dir / WEIGHTS).exists():
        train = catalog.commands(demo)["train"]
        quick = {**demo.tour.quick, **({"max_steps": 5} if args.quick else {})}
        cfg = build(config_class(train), **quick, out_dir=str(run_dir), data_dir=args.data_dir)
        train(cfg)
    return run_dir


def runtimes(spec, folder: Path) -> dict:
    """Each exported form of `spec`'s model as (a callable on torch tensors returning numpy
    outputs, its size on disk); int8 where the model offers it."""
    from core.export import ExportConfig, export

    forms = {}
    for form, fields in [
        ("onnx", {}),
        ("onnx_int8", {"quantize": "int8"}),
        ("pt2", {"format": "pt2"}),
    ]:
        if form == "onnx_int8" and spec.int8 is None or form == "pt2" and "pt2" not in spec.formats:
            continue
        path = Path(export(spec, build(ExportConfig, out=str(folder), **fields))["file"])
        call = pt2_call(path) if form == "pt2" else onnx_call(path, spec.input_names)
        forms[form] = (call, path.stat().st_size)
    return forms


def pt2_call(path: Path):
    program = torch.export.load(str(path)).module()

    def call(*x):
        return [t.numpy() for t in as_list(program(*x))]

    return call


def onnx_call(path: Path, names: list[str]):
    options = onnxruntime.SessionOptions()  # torch's threads, for a fair comparison
    options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def call(*x):
        return session.run(None, {n: t.numpy() for n, t in zip(names, x, strict=True)})

    return call


def as_list(outputs) -> list[torch.Tensor]:
    return list(outputs) if isinstance(outputs, tuple | list) else [outputs]


def timing(call, one: tuple, batch: tuple) -> dict:
    """Median batch-1 latency (ms) and throughput (rows/s) of `call`."""
    with torch.no_grad():
        for _ in range(WARMUP):
            call(*one)
        ms = []
        for _ in range(CALLS):
            t0 = time.perf_counter()
            call(*one)
            ms.append((time.perf_counter() - t0) * 1000)
        seconds = []
        for _ in range(BATCH_CALLS):
            t0 = time.perf_counter()
            call(*batch)
            seconds.append(time.perf_counter() - t0)
    rows_per_s = len(batch[0]) / statistics.median(seconds)
    return {"latency_ms": round(statistics.median(ms), 3), "rows_per_s": round(rows_per_s, 1)}


def measure(name: str, spec, quality, one: tuple, batch: tuple, weights: Path) -> dict:
    """Size, latency, throughput and quality of every form of one model."""
    eager = spec.module.eval()

    def eager_call(*x):
        return [t.numpy() for t in as_list(eager(*x))]

    forms = {"eager": (eager_call, weights.stat().st_size)}
    with tempfile.TemporaryDirectory() as scratch:
        forms |= runtimes(spec, Path(scratch))
        row = {}
        for form, (call, size) in forms.items():
            with torch.no_grad():
                row[form] = {"bytes": size, **timing(call, one, batch), **quality(call)}
    return {name: row}


def classify(args, folder: Path) -> dict:
    from vision.classify.export import ClassifyExportConfig, spec_for
    from vision.mnist import load_mnist

    run_dir = trained("vision classify", args, folder)
    spec = spec_for(build(ClassifyExportConfig, out_dir=str(run_dir), data_dir=args.data_dir))
    mnist = load_mnist(args.data_dir)
    x, y = mnist["test_x"], mnist["test_y"].numpy()

    def quality(call) -> dict:
        logits = np.concatenate([call(x[i : i + 1000])[0] for i in range(0, len(x), 1000)])
        return {"test_acc": round(float((logits.argmax(1) == y).mean()), 4)}

    return measure("vision_classify", spec, quality, (x[:1],), (x[:256],), run_dir / WEIGHTS)


def detect(args, folder: Path) -> dict:
    from vision.detect.data import make_data
    from vision.detect.export import DetectExportConfig, spec_for
    from vision.detect.model import select
    from vision.detect.predict import load_trained
    from vision.detect.scoring import coco_map
    from vision.detect.train import DetectConfig

    run_dir = trained("vision detect", args, folder)
    spec = spec_for(build(DetectExportConfig, out_dir=str(run_dir), data_dir=args.data_dir))
    _, _, train_cfg, _ = load_trained(str(run_dir), torch.device("cpu"))
    data = make_data(from_run(DetectConfig, train_cfg, data_dir=args.data_dir, val_scenes=0))
    scenes = data.test

    def quality(call) -> dict:
        dets = []
        for i in range(0, len(scenes), 100):
            boxes, scores = (torch.from_numpy(a) for a in call(scenes.images[i : i + 100]))
            dets += select(boxes, scores, train_cfg["score_thresh"], train_cfg["nms_iou"])
        result = coco_map(dets, scenes)
        return {"map": round(result["map"].item(), 4), "map_50": round(result["map_50"].item(), 4)}

    one, batch = (scenes.images[:1],), (scenes.images[:32],)
    return measure("vision_detect", spec, quality, one, batch, run_dir / WEIGHTS)


def recsys(args, folder: Path) -> dict:
    from recsys.mf.export import MFExportConfig, spec_for
    from recsys.mf.predict import load_run

    run_dir = trained("recsys mf", args, folder)
    spec = spec_for(build(MFExportConfig, out_dir=str(run_dir), data_dir=args.data_dir))
    _, _, test = load_run(str(run_dir), args.data_dir, torch.device("cpu"))
    users, items, ratings = test.users, test.items.numpy(), test.ratings.numpy()

    def quality(call) -> dict:
        scores = call(users)[0]  # (N, items)
        pred = np.clip(scores[np.arange(len(items)), items], 1, 5)
        return {"test_rmse": round(float(np.sqrt(((pred - ratings) ** 2).mean())), 4)}

    return measure("recsys_mf", spec, quality, (users[:1],), (users[:256],), run_dir / WEIGHTS)


def rl(args, folder: Path) -> dict:
    from rl.dqn.export import DQNExportConfig, observations, spec_for
    from rl.dqn.scoring import evaluate_policy

    run_dir = trained("rl dqn", args, folder)
    spec = spec_for(build(DQNExportConfig, out_dir=str(run_dir)))
    env_id = spec.sidecar["env"]
    obs = observations(env_id, 256, seed=1)

    def quality(call) -> dict:
        def act(o: np.ndarray) -> np.ndarray:
            return call(torch.as_tensor(o, dtype=torch.float32))[0].argmax(1)

        return {"return_mean": float(evaluate_policy(act, env_id, 20, seed=100_000).mean())}

    return measure("rl_dqn", spec, quality, (obs[:1],), (obs,), run_dir / WEIGHTS)


def speech(args, folder: Path) -> dict:
    from speech.ctc.decode import greedy
    from speech.ctc.export import SpeechExportConfig, spec_for
    from speech.ctc.scoring import wer_cer
    from speech.ctc.train import SpeechConfig
    from speech.ctc.utterances import assemble, make_split

    run_dir = trained("speech ctc", args, folder)
    spec = spec_for(build(SpeechExportConfig, out_dir=str(run_dir), data_dir=args.data_dir))
    split = make_split(from_run(SpeechConfig, run_config(str(run_dir))), args.data_dir)
    waves, samples = assemble(split.clips, split.test, torch.arange(len(split.test)))
    utterances = [waves[i : i + 1, : int(n)] for i, n in enumerate(samples)]
    refs = split.test.transcripts(split.clips)

    def quality(call) -> dict:  # one utterance a call, decoded greedily
        hyps = []
        for wave in utterances:
            log_probs = torch.from_numpy(call(wave)[0])
            hyps += greedy(log_probs, torch.tensor([log_probs.shape[1]]))
        return {k: round(v, 4) for k, v in wer_cer(hyps, refs, "test_").items()}

    one = (utterances[0],)
    return measure("speech_ctc", spec, quality, one, one, run_dir / WEIGHTS)


def run(args) -> dict:
    folder = Path(args.keep_runs or tempfile.mkdtemp(prefix="deploy-runs-"))
    metrics = {
        "threads": torch.get_num_threads(),
        "onnxruntime": onnxruntime.__version__,
        "models": "the tour's quick configurations",
    }
    from benchmarks.deploy_translation import translation  # it builds on this file

    for part in (classify, detect, speech, translation, recsys, rl):
        metrics |= part(args, folder)
    return metrics
