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
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from core.config import positive
from core.demo import Tab, Widget
from core.device import pick_device
from core.errors import ShowcaseError, UsageError
from core.run import WEIGHTS
from showcase import catalog


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

    def __post_init__(self) -> None:
        positive(self, "max_upload_mb")
        positive(self, "max_text_chars")
        if not 1 <= self.port <= 65535:
            raise UsageError(f"--port must be between 1 and 65535, got {self.port}")


class Sessions:
    """Each demo's session, loaded on first use (one at a time) and kept."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.loaded, self.lock = device, {}, threading.Lock()

    def get(self, name: str, tab: Tab, folder: Path) -> Any:
        with self.lock:
            if name not in self.loaded:
                self.loaded[name] = tab.load(str(folder), self.device)
            return self.loaded[name]


def handler(name: str, tab: Tab, folder: Path, sessions: Sessions, max_text_chars: int) -> Callable:
    """The Gradio callback: the demo's outputs plus a status line (its time, or what went wrong:
    a failure becomes a message)."""

    def run(*values):
        try:
            prepared = [
                prepare(w, v, max_text_chars) for w, v in zip(tab.inputs, values, strict=True)
            ]
            session = sessions.get(name, tab, folder)
            t0 = time.perf_counter()
            with torch.inference_mode():
                outputs = tab.infer(session, *prepared)
            return (*outputs, f"done in {time.perf_counter() - t0:.2f} s")
        except ShowcaseError as exc:
            message = " ".join(str(exc).split())
        except Exception as exc:  # the page says what went wrong; the server keeps serving
            traceback.print_exc()
            message = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        return (*[None] * len(tab.outputs), f"**error:** {without_folders(message, tab, values)}")

    return run


def without_folders(message: str, tab: Tab, values: tuple) -> str:
    """The message with each upload named by its file name only."""
    for widget, value in zip(tab.inputs, values, strict=True):
        if widget.kind in ("image", "audio") and isinstance(value, str) and os.path.isabs(value):
            message = name_only(message, value)
    return message


def name_only(message: str, path: str) -> str:
    """`message` with the file at `path` named by its file name: Gradio's temp folders (the
    upload's own and the cache above it, even where a message cut the path short) mean nothing
    to the user."""
    name, cache = os.path.basename(path), os.path.dirname(os.path.dirname(path))
    message = message.replace(path, name)
    if len(cache) <= 1:  # a file near the root: no folder to cut but its own
        return message
    return re.sub(re.escape(cache + os.sep) + r"[^\s'\"()]*", lambda _: name, message)


class Unreadable(str):
    """An upload Gradio could not decode (its reason): the handler turns it into a message."""


def checked(component):
    """A Gradio input component whose decoding failure (a text file in an image box) becomes an
    `Unreadable` value instead of the page's bare "Error". (Patched on the instance: a subclass
    would make Gradio write a .pyi stub beside this module.)"""
    decode = component.preprocess

    def preprocess(payload):
        try:
            return decode(payload)
        except Exception as exc:
            reason = " ".join(str(exc).split())
            path = getattr(payload, "path", None)
            return Unreadable((name_only(reason, path) if path else reason)[:200])

    component.preprocess = preprocess
    return component


READABLE = {"image": "a readable image", "audio": "readable audio"}


def prepare(widget: Widget, value: Any, max_text_chars: int) -> Any:
    """Gradio's value -> what `infer` gets: a sketch becomes dark ink on white, or None if blank;
    text longer than `max_text_chars` is refused."""
    if isinstance(value, Unreadable):
        raise ShowcaseError(f"{widget.label}: the upload is not {READABLE[widget.kind]} ({value})")
    if widget.kind == "text" and isinstance(value, str) and len(value) > max_text_chars:
        raise ShowcaseError(
            f"{widget.label}: {len(value):,} characters, more than this page takes "
            f"({max_text_chars:,}, `showcase app --max-text-chars`); the command line takes any length"
        )
    if widget.kind != "sketch" or value is None:
        return value
    from PIL import Image

    layers = value.get("composite") if isinstance(value, dict) else value
    if layers is None:
        return None
    image = layers if isinstance(layers, Image.Image) else Image.fromarray(layers)
    image = image.convert("RGBA")
    white = Image.new("RGBA", image.size, "white")
    drawn = Image.alpha_composite(white, image).convert("L")
    return drawn if drawn.getextrema()[0] < 250 else None


def component(gr, widget: Widget, output: bool):
    """The Gradio component of a widget."""
    o, label = widget.options, widget.label
    if widget.kind == "image":
        image = gr.Image(
            label=label,
            type="pil" if output else "filepath",
            sources=["upload"],
            interactive=not output,
        )
        return image if output else checked(image)
    if widget.kind == "sketch":
        return gr.Sketchpad(
            label=label,
            type="pil",
            canvas_size=(280, 280),
            brush=gr.Brush(default_size=18, colors=["#000000"], color_mode="fixed"),
        )
    if widget.kind == "audio":
        # format=None: the file as uploaded (the demo reads it); no conversion through FFmpeg
        return checked(
            gr.Audio(label=label, sources=["upload", "microphone"], type="filepath", format=None)
        )
    if widget.kind == "text":
        return gr.Textbox(label=label, lines=o.get("lines", 2), interactive=not output)
    if widget.kind == "slider":
        return gr.Slider(o["minimum"], o["maximum"], value=o["value"], step=1, label=label)
    if widget.kind == "choice":
        return gr.Dropdown(o["choices"], value=o.get("value"), label=label, allow_custom_value=True)
    if widget.kind == "label":
        return gr.Label(label=label, num_top_classes=o.get("top", 3))
    if widget.kind == "table":
        return gr.Dataframe(headers=o["headers"], label=label, interactive=False)
    raise ValueError(f"unknown widget kind {widget.kind!r}")


def build_page(cfg: AppConfig):
    """The Gradio Blocks page: one tab per ready demo with an app, in catalog order."""
    import gradio as gr

    sessions = Sessions(pick_device(cfg.device))
    with gr.Blocks(title="torch-showcase", delete_cache=(3600, 3600)) as page:
        gr.Markdown("# torch-showcase\nTry each trained application by hand.")
        for demo in catalog.all_demos():
            if demo.status != "ready" or demo.app is None:
                continue
            tab, folder = catalog.tab(demo), catalog.run_folder(demo, cfg.runs)
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
