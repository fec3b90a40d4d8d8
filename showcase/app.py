"""`showcase app`: a local web page to try every trained demo by hand (Gradio, the `app` extra).

    pip install -e ".[app]"
    showcase app [--runs runs] [--host 127.0.0.1] [--port 7860] [--device auto]
                 [--max-upload-mb 20] [--max-text-chars 2000]

The app knows demos only through the catalog: a demo's `Demo.app` names a function returning its
`Tab` (the widgets it takes and shows, how to load a finished run, and `infer`, which reuses the
demo's own predict/decode code). Models load once, lazily, on the first request, and run without
a gradient. A tab whose run is missing says which command trains it. Uploads stay in Gradio's temp
folder (cleared hourly) and are capped in size, typed text in length (one worker serves the page, so
a huge paste would hold everyone up); nothing received is unpickled or executed. A bad input gets a
message in the page, naming an upload by its file name only, and the server keeps serving.
"""

import dataclasses
import os
import sys
import threading
import time
from pathlib import Path

from core.device import pick_device
from core.errors import ShowcaseError, UsageError, positive, within
from core.run import WEIGHTS, check_task, hub_folder
from showcase import catalog
from showcase.widgets import Sessions, component, handler


@dataclasses.dataclass
class AppConfig:
    runs: str = "runs"
    """Folder of finished runs, each in its demo's default run folder (runs/vision-classify, ...)."""
    host: str = "127.0.0.1"
    """Address to bind: 127.0.0.1 serves this machine only; 0.0.0.0 is your explicit choice."""
    port: int = 7860
    """Port to serve on."""
    device: str = "auto"
    """auto | cpu | cuda | cuda:N | mps."""
    data_dir: str | None = None
    """Data root for the example inputs (default: $SHOWCASE_DATA, else the user cache dir)."""
    max_upload_mb: float = 20.0
    """Largest upload accepted, in MB (MiB: 1,048,576 bytes)."""
    max_text_chars: int = 2000
    """Longest typed text accepted, in characters (the command line takes any length)."""
    model: list[str] = dataclasses.field(default_factory=list)
    """DOMAIN.TASK=SOURCE: serve that demo from SOURCE instead of --runs: a run or a `push`
    folder, or hf:owner/name (a model `push --repo` uploaded, fetched from the Hub)."""

    def __post_init__(self) -> None:
        positive(self, "max_upload_mb")
        positive(self, "max_text_chars")
        within(self, "[1, 65535]", "port")


def build_page(cfg: AppConfig):
    """The Gradio Blocks page: one tab per ready demo with an app, in catalog order."""
    import gradio as gr

    chosen = model_folders(cfg.model)
    sessions = Sessions(pick_device(cfg.device))
    with gr.Blocks(title="torch-showcase", delete_cache=(3600, 3600)) as page:
        gr.Markdown("# torch-showcase\nTry each trained application by hand.")
        for demo in catalog.all_demos():
            if demo.status != "ready" or demo.app is None:
                continue
            tab, folder = catalog.tab(demo), chosen.get(demo, catalog.run_folder(demo, cfg.runs))
            name = f"{demo.domain}-{demo.task}"
            with gr.Tab(f"{demo.domain} {demo.task}", elem_id=f"tab-{name}"):
                gr.Markdown(f"**{demo.description}** on {demo.dataset}. {tab.about}")
                if not (folder / WEIGHTS).is_file():
                    gr.Markdown(
                        f"No finished run in `{folder}`: `showcase {demo.name} train "
                        f"--out-dir {folder}` makes one; then restart the app.",
                        elem_id=f"{name}-missing",
                    )
                    continue
                with gr.Row():
                    with gr.Column():
                        inputs = [component(gr, w, output=False) for w in tab.inputs]
                        button = gr.Button(tab.button, variant="primary", elem_id=f"{name}-run")
                    with gr.Column():
                        outputs = [component(gr, w, output=True) for w in tab.outputs]
                        status = gr.Markdown(elem_id=f"{name}-status")
                examples = tab.examples(cfg.data_dir)
                if examples:
                    gr.Examples(examples, inputs, label="examples from the real data")
                run = handler(name, tab, folder, sessions, cfg.max_text_chars)
                # the API name (/vision_classify, ...) that gradio_client and the HTTP API call
                button.click(run, inputs, [*outputs, status], api_name=name.replace("-", "_"))
    return page


def model_folders(pairs: list[str]) -> dict:
    """--model's DOMAIN.TASK=SOURCE pairs as {demo: local folder}; hf: sources fetched first."""
    folders = {}
    for pair in pairs:
        name, sep, source = pair.partition("=")
        domain, dot, task = name.partition(".")
        if not (sep and dot and source):
            raise UsageError(
                f"--model {pair!r}: give DOMAIN.TASK=SOURCE, e.g. vision.classify=runs/mine"
            )
        demo = catalog.find(domain, task)
        folder = hub_folder(source, "--model") if source.startswith("hf:") else Path(source)
        if not (folder / WEIGHTS).is_file():
            raise ShowcaseError(
                f"--model {pair}: no {WEIGHTS} in {folder} (a finished run's folder?)"
            )
        check_task(folder, f"{demo.domain}.{demo.task}")  # another demo's run: one line
        folders[demo] = folder
    return folders


def main(cfg: AppConfig) -> None:
    """Serve the page until Ctrl-C."""
    try:
        import gradio  # noqa: F401
    except ImportError as exc:
        raise ShowcaseError('showcase app needs Gradio: pip install -e ".[app]"') from exc
    import socket

    with socket.socket() as probe:  # a clear line instead of Gradio's retry loop and traceback
        try:
            probe.bind((cfg.host, cfg.port))
        except OSError as exc:
            raise ShowcaseError(
                f"cannot serve on {cfg.host}:{cfg.port}: {exc.strerror or exc}"
            ) from exc
    page = build_page(cfg)
    print(f"serving http://{cfg.host}:{cfg.port} (Ctrl-C stops)", file=sys.stderr)
    serve(page, cfg)


def serve(page, cfg: AppConfig, block: bool = True) -> None:
    """Queue and launch the page as `showcase app` does (one worker; uploads capped in bytes, an
    integer: Gradio reads a size string's number as an integer). `block=True` serves until
    Ctrl-C (`stop`); `block=False` returns at once, the server running in a thread (tests,
    benchmarks), and `page.close()` stops it."""
    page.queue(default_concurrency_limit=1).launch(
        server_name=cfg.host,
        server_port=cfg.port,
        max_file_size=upload_bytes(cfg),
        ssr_mode=False,
        quiet=True,
        show_error=False,
        prevent_thread_lock=True,
    )
    if not block:
        return
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        stop(page)


def stop(page, seconds: float = 10.0) -> None:
    """Close the server on Ctrl-C. Closing waits for open connections (a browser tab's event
    stream); if they hold it past `seconds`, the process ends anyway: Ctrl-C always stops it."""
    closing = threading.Thread(target=page.close, daemon=True)
    closing.start()
    closing.join(seconds)
    if closing.is_alive():
        print("showcase app: stopped with connections still open", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def upload_bytes(cfg: AppConfig) -> int:
    """--max-upload-mb in bytes (MiB, as Gradio counts a megabyte)."""
    return max(1, round(cfg.max_upload_mb * 1024 * 1024))
