"""`showcase app`: every tab infers on a run trained a few steps on synthetic data; bad input is a
message in the page; and in headless Chromium a real MNIST digit and a German sentence go through."""

import os
import socket
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from core import app, registry
from core.cli import main as cli
from core.config import build
from core.errors import ShowcaseError
from tests.browser import chromium
from tests.conftest import real_data

if not os.environ.get("CI"):
    pytest.importorskip("gradio")

APPS = [d for d in registry.all_demos() if d.status == "ready" and d.app]


def tone_wav(folder):
    import soundfile

    t = np.arange(12000) / 16000
    soundfile.write(
        folder / "tone.wav", np.stack([np.sin(2 * np.pi * 300 * t)] * 2, 1) * 0.3, 16000
    )
    return str(folder / "tone.wav")


def scene_png(folder):
    pixels = np.zeros((64, 96), np.uint8)
    pixels[10:40, 20:30] = 255
    Image.fromarray(pixels).save(folder / "scene.png")
    return str(folder / "scene.png")


# Inputs for each tab (as Gradio hands them to `infer`), and the bad ones that must become messages.
GOOD = {
    ("vision", "classify"): lambda d, s: (None, scene_png(d)),
    ("vision", "detect"): lambda d, s: (scene_png(d),),
    ("speech", "ctc"): lambda d, s: (tone_wav(d),),
    ("translation", "seq2seq"): lambda d, s: ("eins zwei drei\n\nvier", 2),
    ("recsys", "mf"): lambda d, s: (str(s[1].user_ids[0]), ""),
    ("rl", "dqn"): lambda d, s: (3,),
}
BAD = {
    ("vision", "classify"): (None, None),
    ("vision", "detect"): ("NOT_IMAGE",),
    ("speech", "ctc"): ("NOT_AUDIO",),
    ("translation", "seq2seq"): ("  \n ", 5),
    ("recsys", "mf"): ("", "No Such Film (1999)"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for demo in APPS:
        train = demo.commands()["train"]
        out_dir = str(app.run_dir(demo, str(root)))
        train(
            build(
                registry.config_class(train),
                synthetic=True,
                max_steps=3,
                out_dir=out_dir,
                device="cpu",
            )
        )
    return root


def test_every_app_demo_has_test_inputs():
    assert {(d.domain, d.task) for d in APPS} == set(GOOD)


@pytest.mark.parametrize("demo", APPS, ids=[d.name for d in APPS])
def test_tab_infers_and_turns_bad_input_into_a_message(demo, runs, tmp_path):
    tab, folder = app.tab_of(demo), app.run_dir(demo, str(runs))
    sessions = app.Sessions(torch.device("cpu"))
    run = app.handler(demo.name, tab, folder, sessions)
    session = sessions.get(demo.name, tab, folder)
    *outputs, status = run(*GOOD[(demo.domain, demo.task)](tmp_path, session))
    assert status.startswith("done in ") and len(outputs) == len(tab.outputs)
    assert all(o is not None for o in outputs[:1]), outputs
    assert sessions.get(demo.name, tab, folder) is session  # loaded once
    bad = BAD.get((demo.domain, demo.task))
    if bad:
        (tmp_path / "junk.bin").write_bytes(b"\x00not media at all" * 10)
        values = [str(tmp_path / "junk.bin") if v in ("NOT_IMAGE", "NOT_AUDIO") else v for v in bad]
        *outputs, status = run(*values)
        assert status.startswith("**error:** ") and all(o is None for o in outputs), status
        assert "Traceback" not in status


def test_missing_run_says_how_to_train_it(tmp_path):
    page = app.build_page(app.AppConfig(runs=str(tmp_path / "none")))
    text = str(page.config)
    for demo in APPS:
        assert (
            f"showcase {demo.name} train --out-dir {app.run_dir(demo, str(tmp_path / 'none'))}"
            in text
        )
    page.close()


def test_occupied_port_and_missing_gradio_are_one_line(monkeypatch, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        assert cli(["app", "--port", str(port), "--runs", "nowhere"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"showcase: error: cannot serve on 127.0.0.1:{port}") and "\n" not in err
    monkeypatch.setitem(sys.modules, "gradio", None)
    with pytest.raises(ShowcaseError, match=r'needs Gradio: pip install -e "\.\[app\]"'):
        app.main(app.AppConfig())


@pytest.fixture(scope="module")
def server(runs):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    page = app.build_page(app.AppConfig(runs=str(runs), port=port, device="cpu"))
    page.queue(default_concurrency_limit=1).launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
        ssr_mode=False, max_file_size="1mb",
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        page.close()


def wait_for(predicate, seconds: float = 60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError("timed out waiting for the page")


def test_in_headless_chromium(server, tmp_path):
    from selenium.webdriver.common.by import By

    mnist = real_data("MNIST")
    from vision.mnist import load_mnist

    digits = load_mnist(str(mnist.parent))
    Image.fromarray(digits["test_x"][0].numpy()).save(tmp_path / "digit.png")
    (tmp_path / "fake.png").write_bytes(b"this is text, not a picture\n" * 4)
    browser = chromium()
    try:
        browser.get(server)
        wait_for(lambda: browser.find_elements(By.ID, "tab-vision-classify-button"))[0].click()
        tab = wait_for(lambda: browser.find_elements(By.ID, "tab-vision-classify"))[0]

        def top_class() -> str:
            found = tab.find_elements(By.CSS_SELECTOR, "[data-testid=label-output-value]")
            return found[0].text.strip() if found else ""

        def upload_and_run(path) -> None:
            tab.find_elements(By.CSS_SELECTOR, "input[type=file]")[-1].send_keys(str(path))
            time.sleep(1.0)  # the upload and its preview
            browser.find_element(By.ID, "vision-classify-run").click()

        upload_and_run(tmp_path / "digit.png")
        assert wait_for(top_class) in [str(k) for k in range(10)]
        upload_and_run(tmp_path / "fake.png")  # a text file in the image box: a message, no crash
        status = browser.find_element(By.ID, "vision-classify-status")
        # the status line shows Gradio's progress timer (and the last "done in") before the error
        said = wait_for(lambda: status.text.strip() if "error" in status.text else "")
        assert "not a readable image" in said, said
        browser.get(server)  # the server still answers, and classifies again
        wait_for(lambda: browser.find_elements(By.ID, "tab-vision-classify-button"))[0].click()
        tab = wait_for(lambda: browser.find_elements(By.ID, "tab-vision-classify"))[0]
        upload_and_run(tmp_path / "digit.png")
        assert wait_for(top_class) in [str(k) for k in range(10)]
        if any(d.domain == "translation" for d in APPS):
            browser.find_element(By.ID, "tab-translation-seq2seq-button").click()
            panel = wait_for(lambda: browser.find_elements(By.ID, "tab-translation-seq2seq"))[0]
            wait_for(lambda: panel.find_elements(By.TAG_NAME, "textarea"))[0].send_keys(
                "Ein Hund rennt."
            )
            browser.find_element(By.ID, "translation-seq2seq-run").click()
            status = browser.find_element(By.ID, "translation-seq2seq-status")
            assert wait_for(lambda: status.text.strip()).startswith("done in "), status.text
            english = panel.find_elements(By.TAG_NAME, "textarea")[1]
            assert isinstance(english.get_attribute("value"), str)  # a 3-step model may say nothing
    finally:
        browser.quit()
