"""The README cannot promise what the code does not do.

Every line of its Quickstart and "Using it" blocks runs as a user types it: through the venv's
console scripts (`showcase`, `python`, `torchrun`, found beside this Python) in a subprocess, in a
scratch folder, at smoke scale. SMOKE gives each line's smoke form: the line itself plus flags that
make it quick (synthetic data, two steps, a folder of its own), never other words; the files a line
names (digit.png, folder/, digits/, photo.jpg, DIR, call.wav, run.yaml, shapes/, pairs.csv) are
made first. Runs land in each demo's default run folder (runs/vision-classify, ...), so `eval`, `predict` and
`showcase app --runs runs` find them as a user's would. A README line without a smoke form fails,
and so does a smoke form whose line left the README. Every `--flag` the README names, in a comment
or in the prose, must exist, and every number in its results table must come from one row of that
benchmark in BENCHMARKS.md.
"""

import concurrent.futures
import dataclasses
import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.command import config_class
from showcase import catalog
from tests.console import BIN, console_script, showcase_app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
APP = "showcase app --runs runs"  # served, asked, stopped: see test_app_serves_the_trained_runs
# The suite, this test among it: not run inside itself; CI runs this very line (.ci/run).
SUITE = (
    'python3 -m venv .venv && .venv/bin/pip install -e ".[dev]" && .venv/bin/python -m pytest -q'
)
# The install steps of a Quickstart line: this test runs in the environment they make.
INSTALL = re.compile(r"^python3 -m venv \.venv && \.venv/bin/pip install -e (\S+) && ")

SMOKE = {
    # every application's tour runs in tests/showcase/test_tour.py (the same tour.main, in-process);
    # here the console script's tour, of one application, for time
    "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/showcase tour --quick": ".venv/bin/showcase tour --quick --synthetic --max-steps 2 --only recsys --out-dir tour-all",
    "showcase list": "showcase list",
    "showcase tour --quick --only vision,rl": "showcase tour --quick --only vision,rl --synthetic --max-steps 2 --out-dir tour-some",
    APP: APP,
    "showcase vision classify train --max-steps 3": "showcase vision classify train --max-steps 3 --synthetic",
    "showcase vision classify train --recipe classic": "showcase vision classify train --recipe classic --synthetic --max-steps 2 --out-dir runs/classic",
    "showcase vision classify eval --json": "showcase vision classify eval --json --synthetic",
    "showcase vision classify eval --shift": "showcase vision classify eval --shift --synthetic",
    "showcase vision classify eval --hf-dataset digits/": "showcase vision classify eval --hf-dataset digits/",
    "showcase vision classify predict digit.png folder/": "showcase vision classify predict digit.png folder/",
    "showcase vision classify export --out exported": "showcase vision classify export --out exported",
    "showcase vision classify push --to shared/digits": "showcase vision classify push --to shared/digits",
    "showcase vision classify train --init-from shared/digits": "showcase vision classify train --init-from shared/digits --synthetic --max-steps 2 --out-dir runs/fine",
    "showcase vision classify train --hf-dataset shapes/ --init-from shared/digits": "showcase vision classify train --hf-dataset shapes/ --init-from shared/digits --max-steps 2 --batch-size 8 --out-dir runs/shapes",
    "showcase vision detect train": "showcase vision detect train --synthetic --max-steps 2",
    "showcase vision detect train --coco DIR": "showcase vision detect train --coco DIR --max-steps 2 --batch-size 8 --out-dir runs/coco",
    "showcase vision detect eval --json": "showcase vision detect eval --json",
    "showcase vision detect eval --shift": "showcase vision detect eval --shift",
    "showcase vision detect predict photo.jpg --json": "showcase vision detect predict photo.jpg --json",
    "showcase speech ctc train": "showcase speech ctc train --synthetic --max-steps 2",
    # FSDD's speakers: the real data (small), a few utterances
    "showcase speech ctc train --holdout-speaker theo": "showcase speech ctc train --holdout-speaker theo --max-steps 2 --train-utterances 16 "
    "--val-utterances 4 --test-utterances 4 --out-dir runs/theo",
    "showcase speech ctc eval --json": "showcase speech ctc eval --json",
    "showcase speech ctc eval --shift": "showcase speech ctc eval --shift",
    "showcase speech ctc transcribe call.wav --json": "showcase speech ctc transcribe call.wav --json",
    # an untrained model decodes to --max-len: short sentences, greedy
    "showcase translation seq2seq train": "showcase translation seq2seq train --synthetic --max-steps 2 --max-len 12 --beam 1",
    "showcase translation seq2seq train --model gru": "showcase translation seq2seq train --model gru --synthetic --max-steps 2 --max-len 12 --beam 1 "
    "--out-dir runs/gru",
    "showcase translation seq2seq train --hf-dataset pairs.csv --hf-columns source=de target=en": "showcase translation seq2seq train --hf-dataset pairs.csv --hf-columns source=de target=en --max-steps 2 --max-len 12 --beam 1 --vocab-size 300 --out-dir runs/pairs",
    "showcase translation seq2seq eval --json": "showcase translation seq2seq eval --json",
    'echo "Ein Hund rennt." | showcase translation seq2seq translate --beam 5 --json': 'echo "Ein Hund rennt." | showcase translation seq2seq translate --beam 5 --json',
    "showcase rl dqn train --env Acrobot-v1": "showcase rl dqn train --env Acrobot-v1 --synthetic --max-steps 4",
    "showcase rl dqn eval": "showcase rl dqn eval --episodes 2",
    "showcase rl dqn play --gif cartpole.gif": "showcase rl dqn play --gif cartpole.gif --episodes 1",
    # MovieLens-100k is small: the real data, for user 42 and "Star Wars (1977)"
    "showcase recsys mf train --split u1": "showcase recsys mf train --split u1 --max-steps 2",
    "showcase recsys mf train --method map": "showcase recsys mf train --method map --max-steps 2 --out-dir runs/map",
    "showcase recsys mf train --method bpr --split ncf": "showcase recsys mf train --method bpr --split ncf --max-steps 2 --out-dir runs/bpr",
    "showcase recsys mf recommend --user 42 --top 10": "showcase recsys mf recommend --user 42 --top 10",
    'showcase recsys mf recommend --rate "Star Wars (1977)=5" "Fargo (1996)=4"': 'showcase recsys mf recommend --rate "Star Wars (1977)=5" "Fargo (1996)=4"',
    "python -m vision.classify train --config run.yaml": "python -m vision.classify train --config run.yaml",
    "torchrun --nproc_per_node 2 -m vision.classify train --device cpu": "torchrun --nproc_per_node 2 -m vision.classify train --device cpu --synthetic --max-steps 2 "
    "--out-dir runs/ddp",
}
# Lines that run one after another (a train line first: the others use its run); chains run side
# by side. The app runs last, on all of them.
CHAINS = [
    [
        "showcase vision classify train --max-steps 3",
        "showcase vision classify eval --json",
        "showcase vision classify eval --shift",
        "showcase vision classify eval --hf-dataset digits/",
        "showcase vision classify predict digit.png folder/",
        "showcase vision classify export --out exported",
        "showcase vision classify push --to shared/digits",
        "showcase vision classify train --init-from shared/digits",
        "showcase vision classify train --hf-dataset shapes/ --init-from shared/digits",
    ],
    [
        "showcase vision detect train",
        "showcase vision detect eval --json",
        "showcase vision detect eval --shift",
        "showcase vision detect predict photo.jpg --json",
        "showcase vision detect train --coco DIR",
    ],
    [
        "showcase speech ctc train",
        "showcase speech ctc eval --json",
        "showcase speech ctc eval --shift",
        "showcase speech ctc transcribe call.wav --json",
        "showcase speech ctc train --holdout-speaker theo",
    ],
    [
        "showcase translation seq2seq train",
        "showcase translation seq2seq eval --json",
        'echo "Ein Hund rennt." | showcase translation seq2seq translate --beam 5 --json',
        "showcase translation seq2seq train --model gru",
        "showcase translation seq2seq train --hf-dataset pairs.csv --hf-columns source=de target=en",
    ],
    [
        "showcase rl dqn train --env Acrobot-v1",
        "showcase rl dqn eval",
        "showcase rl dqn play --gif cartpole.gif",
    ],
    [
        "showcase recsys mf train --split u1",
        "showcase recsys mf recommend --user 42 --top 10",
        'showcase recsys mf recommend --rate "Star Wars (1977)=5" "Fargo (1996)=4"',
        "showcase recsys mf train --method map",
        "showcase recsys mf train --method bpr --split ncf",
    ],
    [
        "showcase vision classify train --recipe classic",
        "python -m vision.classify train --config run.yaml",
        "torchrun --nproc_per_node 2 -m vision.classify train --device cpu",
    ],
    [
        next(k for k in SMOKE if k.endswith("showcase tour --quick")),
        "showcase list",
        "showcase tour --quick --only vision,rl",
    ],
]
NEEDS_DATA = {
    "showcase recsys mf": "ml-100k",
    "showcase speech ctc train --holdout": "fsdd",
}  # lines starting so: skipped (CI: failed) without it


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def sh_lines(text: str) -> list[tuple[str, str]]:
    """(command, comment) of each line of the text's sh blocks."""
    found = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S):
        for line in block.splitlines():
            command, comment = split_comment(line)
            if command:
                found.append((command, comment))
    return found


def split_comment(line: str) -> tuple[str, str]:
    """A shell line's command and its `# comment` (a # after a space, outside quotes)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].strip(), line[i + 1 :].strip()
    return line.strip(), ""


LINES = sh_lines(section("Quickstart")) + sh_lines(section("Using it"))


def test_every_readme_line_has_a_smoke_form_that_adds_only_flags():
    assert [c for c, _ in LINES if c not in SMOKE and c != SUITE] == [], (
        "add its smoke form to SMOKE"
    )
    assert [c for c in SMOKE if c not in dict(LINES)] == [], "a SMOKE line left the README"
    assert sorted(c for chain in CHAINS for c in chain) == sorted(c for c in SMOKE if c != APP)
    for line, smoke in SMOKE.items():
        typed = INSTALL.sub("", line)
        assert smoke == typed or smoke.startswith(typed + " "), (line, smoke)
        extra = shlex.split(smoke[len(typed) :])
        values = [w for i, w in enumerate(extra) if not w.startswith("--")]
        assert all(extra[extra.index(w) - 1].startswith("--") for w in values), smoke
        assert not extra or extra[0].startswith("--"), smoke


def test_the_suite_line_is_what_ci_runs():
    assert SUITE in dict(LINES), "the Quickstart's test line changed: update SUITE and .ci/run"
    ci = (ROOT / ".ci" / "run").read_text()
    assert SUITE.replace("pip install -e", "pip install -q -e") in ci.splitlines()


def flags_of(config: type) -> set[str]:
    return {"--" + f.name.replace("_", "-") for f in dataclasses.fields(config)}


def all_configs() -> dict[str, type]:
    """Every command's config, by its command line (`showcase vision classify train`, ...)."""
    from showcase.app import AppConfig
    from showcase.tour import TourConfig

    configs = {"showcase tour": TourConfig, "showcase app": AppConfig}
    for demo in catalog.all_demos():
        for name, command in catalog.commands(demo).items():
            configs[f"showcase {demo.domain} {demo.task} {name}"] = config_class(command)
    return configs


def command_key(command: str) -> str:
    """The config's name of a command line: `showcase vision classify train` for it, for
    `python -m vision.classify train ...` and for `torchrun ... -m vision.classify train ...`."""
    words = command.split("|")[-1].split()
    if "-m" in words and words[0] in ("python", "torchrun"):
        module, *rest = words[words.index("-m") + 1 :]
        words = ["showcase", *module.split("."), *rest]
    return " ".join(words[:2] if words[1:2] in (["tour"], ["app"]) else words[:4])


def test_every_flag_the_readme_names_exists():
    """A flag in a command's comment is one of that command's, or of a command of a domain the
    comment names; one in the prose is some command's; the flags that "mean the same in every
    domain" are flags of every train command; `showcase tour [...]` / `showcase app [...]` spans
    name flags of that command; every `.[extra]` the README installs is in pyproject.toml."""
    configs = all_configs()
    for command, comment in sh_lines(README):
        key = command_key(command)
        if key not in configs:
            continue  # pip, python -m benchmarks, the Quickstart lines
        allowed = flags_of(configs[key]) | {"--help"}
        for name, config in configs.items():
            if name.split()[1] in re.findall(r"\w+", comment):
                allowed |= flags_of(config)
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", comment):
            assert flag in allowed, f"the README's comment on {command!r} names {flag}"
    everywhere = set().union(*map(flags_of, configs.values())) | {"--help"}
    prose = re.sub(r"^```.*?^```", "", README, flags=re.M | re.S)
    for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", prose):
        assert flag in everywhere, f"README names {flag}, which no command has"
    same = re.search(r"Flags mean the same in every domain: `([^`]*)`", prose)
    assert same, "the README's paragraph on shared flags moved: update this test"
    shared = [w for w in same.group(1).split() if w.startswith("--")]
    for name, config in configs.items():
        if name.endswith(" train"):
            assert set(shared) <= flags_of(config), (name, set(shared) - flags_of(config))
    for span in re.findall(r"`(showcase (?:tour|app) [^`]*)`", prose):
        config = configs[" ".join(span.split()[:2])]
        for flag in re.findall(r"--[a-z][a-z0-9-]*", span):
            assert flag in flags_of(config), (span, flag)
    pyproject = (ROOT / "pyproject.toml").read_text()
    table = pyproject.split("[project.optional-dependencies]\n", 1)[1].split("\n[", 1)[0]
    extras = re.findall(r"^(\w+) = ", table, re.M)
    for extra in re.findall(r'\.\[(\w+)\]"', README):
        assert extra in extras, f"README installs the extra {extra!r}, which pyproject.toml lacks"


# ---- running the lines ----


@dataclasses.dataclass
class Ran:
    rc: int
    out: str
    err: str
    seconds: float


def make_inputs(cwd: Path) -> None:
    """The files the README's lines name, and .venv: this environment, as the Quickstart made it."""
    import soundfile

    (cwd / ".venv").symlink_to(BIN.parent, target_is_directory=True)
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255  # a "1"
    Image.fromarray(digit).save(cwd / "digit.png")
    (cwd / "folder").mkdir()
    for i in range(2):
        Image.fromarray(np.roll(digit, 3 * i, 1)).save(cwd / "folder" / f"{i}.png")
    for label in ("1", "7"):  # your digits, a folder per digit: dark ink on light paper
        (cwd / "digits" / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(255 - np.roll(digit, i - 1, 1)).save(
                cwd / "digits" / label / f"{i}.png"
            )
    photo = np.full((90, 120, 3), 20, np.uint8)
    photo[20:60, 30:50] = 230
    Image.fromarray(photo).save(cwd / "photo.jpg")
    t = np.arange(2 * 22050) / 22050  # two seconds, 22.05 kHz, stereo: any rate and channels
    soundfile.write(cwd / "call.wav", np.stack([np.sin(2 * np.pi * 220 * t)] * 2, 1) * 0.2, 22050)
    (cwd / "run.yaml").write_text("synthetic: true\nmax_steps: 2\nout_dir: runs/from-yaml\n")
    coco(cwd / "DIR")
    for kind, ink in (
        ("bar", (slice(12, 16), slice(4, 24))),
        ("post", (slice(4, 24), slice(12, 16))),
    ):
        (cwd / "shapes" / kind).mkdir(parents=True)  # an image folder: a folder per class
        for i in range(6):
            pixels = np.full((32, 32), 240, np.uint8)
            pixels[ink] = 10 + 10 * i
            Image.fromarray(pixels).save(cwd / "shapes" / kind / f"{i}.png")
    lines = [f"satz {i},sentence {i}" for i in range(60)]
    (cwd / "pairs.csv").write_text("de,en\n" + "\n".join(lines) + "\n")


def coco(folder: Path, n: int = 30) -> None:
    """A COCO folder: images/ of one bright bar each and annotations.json, two categories."""
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(n):
        pixels = np.zeros((48, 64), np.uint8)
        x, y = int(rng.integers(0, 40)), int(rng.integers(0, 24))
        w, h = (20, 8) if i % 2 else (8, 20)
        pixels[y : y + h, x : x + w] = 255
        Image.fromarray(pixels).save(folder / "images" / f"{i}.png")
        images.append({"id": i, "file_name": f"{i}.png", "width": 64, "height": 48})
        annotations.append(
            {
                "id": i + 1,
                "image_id": i,
                "category_id": 1 + i % 2,
                "bbox": [x, y, w, h],
                "area": w * h,
                "iscrowd": 0,
            }
        )
    categories = [{"id": 1, "name": "tall"}, {"id": 2, "name": "wide"}]
    doc = {"images": images, "annotations": annotations, "categories": categories}
    (folder / "annotations.json").write_text(json.dumps(doc))


def missing_data(line: str) -> str | None:
    """The dataset a line needs that $SHOWCASE_DATA lacks, if any."""
    for start, name in NEEDS_DATA.items():
        root = os.environ.get("SHOWCASE_DATA")
        if line.startswith(start) and not (root and Path(root, name).exists()):
            return name
    return None


def run_line(smoke: str, cwd: Path, env: dict) -> Ran:
    t0 = time.monotonic()
    done = subprocess.run(
        ["bash", "-c", smoke], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    return Ran(done.returncode, done.stdout, done.stderr, time.monotonic() - t0)


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[Path, dict[str, Ran]]:
    """Every chain's lines, in order; chains side by side; a chain stops at its first failure."""
    console_script()  # the venv's scripts are there (else: skip, or in CI fail)
    cwd = tmp_path_factory.mktemp("readme")
    make_inputs(cwd)
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    results: dict[str, Ran] = {}

    def chain(lines: list[str]) -> None:
        for line in lines:
            if missing_data(line):
                continue
            results[line] = run_line(SMOKE[line], cwd, env)
            if results[line].rc:
                return

    workers = max(2, min(4, os.cpu_count() or 2))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(chain, CHAINS))
    return cwd, results


def parsed_json(out: str):
    """The JSON a `--json` command prints (one document, or one per line)."""
    try:
        return json.loads(out)
    except json.JSONDecodeError:
        return [json.loads(line) for line in out.splitlines() if line.strip()]


LINE_IDS = [c for c, _ in LINES]


@pytest.mark.parametrize("line", [c for c in LINE_IDS if c not in (APP, SUITE)])
def test_readme_line_runs(line, ran):
    cwd, results = ran
    if missing_data(line):
        from tests.conftest import real_data

        real_data(missing_data(line))  # skips, or fails in CI
    smoke = SMOKE[line]
    assert line in results, f"not run: an earlier line of its chain failed ({smoke})"
    result = results[line]
    assert result.rc == 0, f"{smoke}\nexit {result.rc}\n{result.err[-3000:]}"
    assert "Traceback" not in result.err, result.err[-3000:]
    if "--json" in smoke:
        assert parsed_json(result.out), result.out
    if line.endswith("--gif cartpole.gif"):
        assert (cwd / "cartpole.gif").stat().st_size > 0
    if line == "showcase list":
        assert all(d.domain in results[line].out for d in catalog.all_demos())
    if "tour --quick" in line:
        out = SMOKE[line].split("--out-dir ")[1]
        assert (cwd / out / "index.html").is_file() and (cwd / out / "tour.json").is_file()


def test_app_serves_the_trained_runs(ran):
    """`showcase app --runs runs` after the lines above, in their folder: the page answers and the
    classifier trained by `showcase vision classify train --max-steps 3` classifies digit.png."""
    from gradio_client import Client, handle_file

    cwd, results = ran
    trained = results.get("showcase vision classify train --max-steps 3")
    assert trained and trained.rc == 0, "the classifier did not train"
    with showcase_app(APP.split()[2:], cwd) as url:
        client = Client(url, verbose=False)
        label, status = client.predict(
            None, handle_file(str(cwd / "digit.png")), api_name="/vision_classify"
        )
        client.close()  # as a closed browser tab: Ctrl-C then has no open session to wait for
        assert status.startswith("done in ") and label["label"] in [str(k) for k in range(10)]


# ---- the numbers ----


NUMBER = re.compile(r"(?<![\w.@/-])(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)(%?)")
# Words of a results cell that are protocol, not measurement (each must still be in the README).
PROTOCOL = [
    "2-core",
    "SGD 0.01/0.5, batch 32, mean/std 0.5",
    "mAP@[.5:.95]",
    "mAP@.5",
    "HR@10",
    "NDCG@10",
    "(5-fold)",
    "(u1)",
    "a 10-s file",
    "100-episode mean >= 475",
    ">= -100",
    "beam-5",
    "(beam 5)",
    "the 1,000 test sentences",
    "at 20 and 10 dB SNR",
]


def table_rows() -> list[tuple[str, str, str]]:
    """(domain, task text, results cell) of each row of the README's results table."""
    rows = []
    for line in README.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] in {d.domain for d in catalog.all_demos()}:
            rows.append((cells[0], cells[1], cells[4]))
    return rows


def numbers_in(value) -> list[float]:
    """Every number in a JSON value (booleans are not numbers here)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        value = list(value.values())
    return [n for v in value for n in numbers_in(v)] if isinstance(value, list) else []


def benchmark_rows(name: str) -> list[list[float]]:
    """The numbers of each BENCHMARKS.md row of `python -m benchmarks NAME`."""
    rows = []
    for line in (ROOT / "BENCHMARKS.md").read_text().splitlines():
        if f"`python -m benchmarks {name} " in line:
            rows.append(numbers_in(json.loads(line.rstrip().rstrip("|").rsplit("| ", 1)[1])))
    return rows


def matches(shown: str, percent: bool, numbers: list[float]) -> bool:
    """A number as the README shows it (rounded; 99.52% is 0.9952) is one of `numbers`."""
    value = float(shown.replace(",", ""))
    places = len(shown.split(".")[1]) if "." in shown else 0
    if percent:
        value, places = value / 100, places + 2
    return any(abs(v - value) <= 0.5 * 10**-places + 1e-9 for v in numbers)


@pytest.mark.parametrize("row", table_rows(), ids=lambda r: r[0] + "-" + r[1].split()[0])
def test_table_numbers_come_from_one_benchmark_row(row):
    domain, task_text, cell = row
    demo = next(
        d for d in catalog.all_demos() if d.domain == domain and f"`{domain} {d.task}`" in task_text
    )
    name = f"{domain}-{demo.task}"
    from benchmarks.__main__ import BENCHMARKS

    name = name if name in BENCHMARKS else domain
    for phrase in PROTOCOL:
        assert phrase in README, f"PROTOCOL names {phrase!r}, no longer in the README"
        cell = cell.replace(phrase, " ")
    shown = NUMBER.findall(cell)
    assert shown, f"no measured number in the {name} row: {cell}"
    rows = benchmark_rows(name)
    assert rows, f"BENCHMARKS.md has no row of python -m benchmarks {name}"
    best = max(rows, key=lambda numbers: sum(matches(s, p == "%", numbers) for s, p in shown))
    missing = [s + p for s, p in shown if not matches(s, p == "%", best)]
    assert not missing, f"README {name} numbers not in one BENCHMARKS.md row: {missing} ({cell})"
