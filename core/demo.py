"""What a domain says about its demos, as plain declarations that the front (`showcase`: the CLI,
the tour, the app) reads. Nothing here imports the front or a web framework.

    # vision/__init__.py
    CLASSIFY = Demo("vision", "classify", "CNN digit classifier", "MNIST", "test accuracy",
                    run_dir="runs/vision-classify", module="vision.classify.train",
                    tour=Tour(metric="test_acc", ...), app="vision.classify.predict:app_tab")
    DEMOS = [CLASSIFY, ...]

`pyproject.toml` names each domain's `DEMOS` under the `torch_showcase.demos` entry-point group, so
the front finds them without naming a domain. A demo's `module` maps each command (`train`, `eval`,
`predict`, ...) to a function of one typed config dataclass: `COMMANDS = {"train": main, ...}`.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Tour:
    """What `showcase tour` needs of a demo: the metric of `eval.json` it shows, that metric's
    target (of the full, default configuration), chance level and measured full-configuration
    value, the quick configuration, and the pictures that `train` and `eval` leave in the run
    directory."""

    metric: str
    """Key of `eval.json`'s metrics, e.g. `test_acc`."""
    target: float
    chance: float
    chance_is: str
    """What scores the chance level, e.g. `guessing one of 10 classes`."""
    quick: dict[str, Any] = field(default_factory=dict)
    """Train-config fields of `--quick` (a few minutes on a 2-core CPU); `--full` uses the defaults."""
    pictures: tuple[str, ...] = ()
    lower_is_better: bool = False
    full: float | None = None
    """The metric the full (default) configuration reached, as the latest row of BENCHMARKS.md
    records it (a test holds the two together); the tour shows it beside the quick result."""
    full_source: str = ""
    """Where BENCHMARKS.md records `full`: `<benchmark> <key>`, e.g.
    `vision-classify default_test_acc`; `key[i]` is the i-th entry of a list (seed i)."""


@dataclass(frozen=True)
class Demo:
    domain: str
    task: str
    description: str
    dataset: str
    metric: str
    run_dir: str = ""
    """The default run directory of `train`, `eval` and `predict` (`runs/vision-classify`); the
    tour and the app keep a run under its last part."""
    module: str | None = None
    """Module with COMMANDS, e.g. `vision.classify.train`; None while the demo is planned."""
    tour: Tour | None = field(default=None, compare=False)
    """How `showcase tour` trains, scores and shows it; None: the tour leaves it out."""
    app: str | None = field(default=None, compare=False)
    """`module:function` returning the demo's `Tab` for `showcase app`; None: no tab."""
    licence: str = field(default="", compare=False)
    """The data's terms, which weights trained on it inherit: the model card of `push` says them."""

    @property
    def name(self) -> str:
        return f"{self.domain} {self.task}"

    def __str__(self) -> str:
        return self.name

    @property
    def status(self) -> str:
        return "ready" if self.module else "planned"


@dataclass(frozen=True)
class Widget:
    """An input or output of an app tab.

    Inputs: `image` (a file path), `sketch` (a PIL image, dark ink on white), `audio` (a file path),
    `text`, `slider` (options: minimum, maximum, value), `choice` (options: choices, value).
    Outputs: `label` (a {class: probability} dict), `image` (a PIL image or a file path, GIFs
    animate), `table` (rows; options: headers), `text`."""

    kind: Literal["image", "sketch", "audio", "text", "slider", "choice", "label", "table"]
    label: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Tab:
    """What a demo shows in the app. `load(run_dir, device)` returns a session (model, tokenizer,
    ...), once; `infer(session, *inputs)` returns one value per output and raises ShowcaseError
    with a message for the page on bad input; `examples(data_dir)` gives example inputs from the
    real data (rows of input values), or [] where the data is absent."""

    inputs: list[Widget]
    outputs: list[Widget]
    load: Callable[[str, Any], Any]
    infer: Callable[..., tuple]
    examples: Callable[[str | None], list[list]] = lambda data_dir: []
    button: str = "Run"
    about: str = ""
