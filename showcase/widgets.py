"""How a demo's `Tab` meets Gradio: each `Widget` becomes a component, and each request's values
are checked (uploads readable, text within its length) before the demo's `infer` sees them; a bad
input becomes a message in the page, naming an upload by its file name only."""

import os
import re
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from core.demo import Tab, Widget
from core.errors import ShowcaseError


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
