"""`showcase tour`: every ready demo trained and evaluated, a report with pictures; failures, missing
data and bad flags handled one application at a time."""

import contextlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.command import config_class
from core.demo import Demo, Tour
from core.errors import UsageError
from core.logger import progress_to
from core.parse import build
from showcase import catalog, tour, tour_report
from showcase.cli import main as cli
from tests.browser import chromium
from tests.showcase.tour_fakes import LEAKED, FakeConfig, fake_train


def test_every_ready_demo_declares_its_tour():
    folders = [catalog.run_folder(d, "runs") for d in catalog.all_demos()]
    assert len(set(folders)) == len(folders)  # the tour's runs/ and the app's --runs share them
    for demo in catalog.all_demos():
        spec = demo.tour
        assert spec is not None, f"{demo.name} has no tour spec"
        assert spec.pictures and spec.metric
        assert (spec.target < spec.chance) if spec.lower_is_better else (spec.target > spec.chance)
        train_cls = config_class(catalog.commands(demo)["train"])
        build(train_cls, **spec.quick)  # the quick configuration is a valid config


def benchmark_results() -> dict[str, list[dict]]:
    """BENCHMARKS.md's results per benchmark name (`vision-classify`, ...), oldest row first."""
    rows: dict[str, list[dict]] = {}
    text = (Path(__file__).resolve().parents[2] / "BENCHMARKS.md").read_text()
    for line in text.splitlines():
        row = re.match(
            r"\|[^|]*\|[^|]*\| `python -m benchmarks ([\w-]+)[^`]*`[^|]*\| (\{.*\}) \|$", line
        )
        if row:
            rows.setdefault(row[1], []).append(json.loads(row[2]))
    return rows


def test_full_results_are_benchmarks_md_latest():
    results = benchmark_results()
    assert len(results["vision-classify"]) > 3  # the rows were found
    for demo in catalog.all_demos():
        spec = demo.tour
        assert spec.full is not None, f"{demo.name} declares no full-configuration result"
        name, key = spec.full_source.split()
        field, index = re.fullmatch(r"(\w+)(?:\[(\d+)\])?", key).groups()
        recorded = [r[field] for r in results.get(name, []) if field in r]
        assert recorded, f"{demo.name}: no `{name}` row with {field} in BENCHMARKS.md"
        latest = recorded[-1] if index is None else recorded[-1][int(index)]
        assert latest == spec.full, f"{demo.name}: {spec.full_source} is {latest} in BENCHMARKS.md"
        if name == "tour":  # the tour's row measures the quick configuration: the full one only
            assert not spec.quick  # where the two are the same


@pytest.fixture(scope="module")
def synthetic_tour(tmp_path_factory):
    out = tmp_path_factory.mktemp("tour") / "report"
    cfg = tour.TourConfig(synthetic=True, max_steps=3, out_dir=str(out), device="cpu")
    return out, tour.main(cfg)


def test_tour_writes_report_with_table_and_pictures(synthetic_tour):
    out, report = synthetic_tour
    demos = [d for d in catalog.all_demos() if d.status == "ready"]
    assert [r["demo"] for r in report["rows"]] == [d.name for d in demos]
    for row in report["rows"]:
        assert row["status"] == "ok", row
        assert isinstance(row["value"], float) and row["train_seconds"] > 0
        assert (out / row["log"]).read_text().startswith(f"$ showcase {row['demo']} train")
        spec = catalog.find(*row["demo"].split()).tour
        assert len(row["pictures"]) == len(spec.pictures) + 1  # the learning curves too
        for picture in row["pictures"]:
            path = out / picture
            assert path.stat().st_size > 2000, picture
            with Image.open(path) as image:
                assert image.format in ("PNG", "GIF") and min(image.size) >= 100
                assert np.asarray(image.convert("L")).std() > 5, f"{picture} is blank"
    markdown = (out / "index.md").read_text()
    page = (out / "index.html").read_text()
    for row in report["rows"]:
        assert f"| {row['demo']} | {row['dataset']} | {row['metric']} |" in markdown
        spec = catalog.find(*row["demo"].split()).tour
        full = f"; full configuration: {tour_report.fmt(spec.full)} (BENCHMARKS.md: python -m benchmarks "
        assert f"{full}{spec.full_source.replace(' ', ', ')});" in markdown
        assert f"{full}{spec.full_source.replace(' ', ', ')});" in page
        for picture in row["pictures"]:
            assert f"]({picture})" in markdown
    assert page.count("<tr>") == len(report["rows"]) + 1
    assert page.count('src="data:image/') == sum(len(r["pictures"]) for r in report["rows"])
    assert json.loads((out / "tour.json").read_text())["rows"] == json.loads(
        json.dumps(report["rows"])
    )


def test_report_opens_in_headless_chromium(synthetic_tour, tmp_path):
    out, report = synthetic_tour
    browser = chromium()
    try:
        browser.get((out / "index.html").resolve().as_uri())
        rows = browser.find_elements("css selector", "tbody tr")
        assert len(rows) == len(report["rows"])
        images = browser.find_elements("css selector", "img")
        assert images and all(
            browser.execute_script("return arguments[0].naturalWidth", img) > 0 for img in images
        )
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        browser.save_screenshot(str(tmp_path / "page.png"))
    finally:
        browser.quit()
    pixels = np.asarray(Image.open(tmp_path / "page.png").convert("L"))
    assert pixels.std() > 10, "the screenshot is blank"


def register(monkeypatch, tmp_path, trains: dict[str, str]) -> list[Demo]:
    """Made-up demos `fake <task>`, each a module on disk whose `train` is the named function of
    `tests.showcase.tour_fakes`; the only ones registered."""
    folder = tmp_path / "fakes"
    folder.mkdir(exist_ok=True)
    monkeypatch.syspath_prepend(str(folder))  # the tour's child processes get sys.path too
    demos = []
    for task, train in trains.items():
        (folder / f"fake_{task}.py").write_text(
            f"from tests.showcase.tour_fakes import fake_eval, {train}\n"
            f"COMMANDS = {{'train': {train}, 'eval': fake_eval}}\n"
        )
        spec = Tour(
            metric="score",
            target=0.9,
            chance=0.5,
            chance_is="a coin",
            quick={"max_steps": 5},
            full=0.875,
            full_source="fake score",
        )
        demos.append(
            Demo("fake", task, "a fake", "made up", "score", "runs/fake", f"fake_{task}", spec)
        )
    monkeypatch.setattr(catalog, "all_demos", lambda: demos)
    return demos


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    trains = {"good": "fake_train", "broken": "broken_train", "nodata": "no_data_train"}
    return register(monkeypatch, tmp_path, trains)


def test_a_failure_is_reported_and_the_tour_goes_on(fakes, tmp_path, capfd):
    out = tmp_path / "tour"
    assert cli(["tour", "--out-dir", str(out)]) == 1  # one application failed
    said = capfd.readouterr().out  # capfd: each application runs in a child process
    assert (
        "[1/3] fake good: quick: score 0.75 after 0 s of training (5 steps); full configuration: "
        "0.875 (BENCHMARKS.md); chance 0.5, target 0.9\n" in said
    )
    assert "  fake good: train step 4 | loss 0.25\n  fake good: train step 5 | loss 0.2\n" in said
    assert "  fake good: evaluating ...\n" in said
    assert "[2/3] fake broken: failed: RuntimeError: the fake model exploded" in said
    assert (
        "[3/3] fake nodata: skipped: fake data is missing in /nowhere: put fake.csv there" in said
    )
    rows = {r["demo"]: r for r in json.loads((out / "tour.json").read_text())["rows"]}
    assert rows["fake good"]["status"] == "ok" and rows["fake good"]["value"] == 0.75
    assert rows["fake good"]["steps"] == 5  # the quick configuration
    logged = (out / rows["fake good"]["log"]).read_text()
    assert "training output goes to the log" in logged and "train step 5 | loss 0.2\n" in logged
    assert "RuntimeError: the fake model exploded" in (out / rows["fake broken"]["log"]).read_text()
    table = (out / "index.md").read_text()
    assert "failed: RuntimeError: the fake model exploded (log: logs/fake-broken.log)" in table
    assert "skipped: fake data is missing" in table


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_under_the_tour_a_terminal_sees_a_progress_bar_and_the_log_the_lines(tmp_path):
    terminal, log = Terminal(), io.StringIO()
    with contextlib.redirect_stdout(log), progress_to(terminal, "fake good"):
        fake_train(FakeConfig(out_dir=str(tmp_path / "run"), max_steps=5))
    assert re.search(r"fake good: +\d+%.*\| \d/5 \[", terminal.getvalue())  # tqdm's bar, named
    assert "train step" not in terminal.getvalue()  # the lines go to the log, not across the bar
    assert "train step 5 | loss 0.2\n" in log.getvalue()
    plain = io.StringIO()  # not a terminal: the lines, named
    with contextlib.redirect_stdout(io.StringIO()), progress_to(plain, "fake good"):
        fake_train(FakeConfig(out_dir=str(tmp_path / "run2"), max_steps=5))
    assert plain.getvalue().endswith("  fake good: train step 5 | loss 0.2\n")


def resident_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status)[1]) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/self/status")
def test_the_memory_of_an_application_returns_before_the_next(monkeypatch, tmp_path):
    register(monkeypatch, tmp_path, {"hog": "hog_train", "hog2": "hog_train"})
    before = resident_mb()
    assert cli(["tour", "--out-dir", str(tmp_path / "t")]) == 0
    assert not LEAKED  # each kept its data alive in a process of its own, now ended
    assert resident_mb() - before < 200  # 600 MB in one process
    rows = json.loads((tmp_path / "t" / "tour.json").read_text())["rows"]
    assert [r["status"] for r in rows] == ["ok", "ok"]


def test_a_child_that_dies_is_a_failed_row(monkeypatch, tmp_path, capfd):
    register(monkeypatch, tmp_path, {"dies": "dying_train", "good": "fake_train"})
    assert cli(["tour", "--out-dir", str(tmp_path / "t")]) == 1
    rows = json.loads((tmp_path / "t" / "tour.json").read_text())["rows"]
    assert rows[0]["status"] == "failed" and rows[1]["status"] == "ok"
    assert rows[0]["note"] == "the process running it ended with exit code 9"
    said = capfd.readouterr().out
    assert "[1/2] fake dies: failed: the process running it ended with exit code 9" in said


def test_only_missing_data_still_exits_zero(fakes, tmp_path):
    assert cli(["tour", "--only", "fake.good,fake.nodata", "--out-dir", str(tmp_path / "t")]) == 0
    rows = json.loads((tmp_path / "t" / "tour.json").read_text())["rows"]
    assert [r["status"] for r in rows] == ["ok", "skipped"]


def test_only_names_valid_applications(fakes, tmp_path, capsys):
    assert cli(["tour", "--only", "vision,fake", "--out-dir", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "showcase: usage error: unknown application vision in --only: choose from fake, "
        "fake.broken, fake.good, fake.nodata"
    )
    assert not (tmp_path / "t").exists()


def test_existing_report_needs_force(fakes, tmp_path, capsys):
    out = tmp_path / "tour"
    assert cli(["tour", "--only", "fake.good", "--out-dir", str(out)]) == 0
    first = (out / "tour.json").read_text()
    assert cli(["tour", "--only", "fake.good", "--out-dir", str(out)]) == 2
    assert "already exists: pass --force" in capsys.readouterr().err
    assert (out / "tour.json").read_text() == first
    assert cli(["tour", "--only", "fake.good", "--out-dir", str(out), "--force", "--full"]) == 0
    assert json.loads((out / "tour.json").read_text())["mode"] == "full"
    assert json.loads((out / "tour.json").read_text())["rows"][0]["steps"] == 10  # the defaults
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert cli(["tour", "--only", "fake.good", "--out-dir", str(mine), "--force"]) == 2
    assert "not a tour report folder" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep me"


def test_quick_and_full_exclude_each_other():
    with pytest.raises(UsageError, match="one of --quick and --full"):
        tour.TourConfig(quick=True, full=True)
