"""`showcase app`: every tab infers on a run trained a few steps on synthetic data; bad input is a
message in the page (an upload named by its file name only, a long text refused); the console script
serves the page as a user starts it; and in headless Chromium a real MNIST digit, a German sentence and
a microphone recording go through."""

import os
import socket
import sys
import tempfile
import time

import numpy as np
import pytest
import torch
from PIL import Image

from core.command import config_class
from core.demo import Widget
from core.errors import ShowcaseError
from core.parse import build
from showcase import app, catalog, widgets
from showcase.cli import main as cli
from tests.browser import chromium
from tests.conftest import real_data
from tests.console import free_port, showcase_app

if not os.environ.get("CI"):
    pytest.importorskip("gradio")

APPS = [d for d in catalog.all_demos() if d.status == "ready" and d.app]


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
        train = catalog.commands(demo)["train"]
        out_dir = str(catalog.run_folder(demo, root))
        train(
            build(
                config_class(train),
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
    tab, folder = catalog.tab(demo), catalog.run_folder(demo, runs)
    sessions = widgets.Sessions(torch.device("cpu"))
    run = widgets.handler(demo.name, tab, folder, sessions, app.AppConfig().max_text_chars)
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
        assert str(tmp_path) not in status, status  # an upload is named by its file name


def test_long_text_is_refused_with_a_message(runs):
    demo = catalog.find("translation", "seq2seq")
    tab, folder = catalog.tab(demo), catalog.run_folder(demo, runs)
    run = widgets.handler(
        demo.name, tab, folder, widgets.Sessions(torch.device("cpu")), max_text_chars=50
    )
    *outputs, status = run("Ein Hund rennt. " * 4, 1)
    assert status.startswith("**error:** German") and "64 characters" in status, status
    assert "more than this page takes (50" in status and all(o is None for o in outputs)
    text = Widget("text", "German")
    assert widgets.prepare(text, "x" * 50, max_text_chars=50) == "x" * 50  # at the cap: taken
    with pytest.raises(Exception, match="--max-text-chars must be > 0"):
        app.AppConfig(max_text_chars=0)


def test_missing_run_says_how_to_train_it(tmp_path):
    page = app.build_page(app.AppConfig(runs=str(tmp_path / "none")))
    text = str(page.config)
    for demo in APPS:
        assert (
            f"showcase {demo.name} train --out-dir {catalog.run_folder(demo, tmp_path / 'none')}"
            in text
        )
    page.close()


def test_model_serves_a_demo_from_a_folder_or_says_why_not(runs, tmp_path, monkeypatch):
    """--model DOMAIN.TASK=SOURCE: a run folder elsewhere is served (no missing-run note); a
    folder without weights, a malformed pair and an unreachable hf: source are one line each."""
    classify = catalog.find("vision", "classify")
    mine = str(catalog.run_folder(classify, runs))
    page = app.build_page(
        app.AppConfig(runs=str(tmp_path / "none"), model=[f"vision.classify={mine}"])
    )
    text = str(page.config)
    assert "vision-classify-run" in text and "showcase vision classify train --out-dir" not in text
    page.close()
    with pytest.raises(ShowcaseError, match="no model.safetensors in"):
        app.build_page(app.AppConfig(model=[f"vision.classify={tmp_path}"]))
    with pytest.raises(ShowcaseError, match="holds a vision.classify run, not vision.detect"):
        app.build_page(app.AppConfig(model=[f"vision.detect={mine}"]))
    with pytest.raises(ShowcaseError, match="give DOMAIN.TASK=SOURCE"):
        app.build_page(app.AppConfig(model=["vision=runs/x"]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ShowcaseError, match="--model hf:nobody/nothing: cannot fetch it"):
        app.build_page(app.AppConfig(model=["vision.classify=hf:nobody/nothing"]))


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


def test_console_script_serves_the_page(runs, tmp_path):
    """`showcase app --runs DIR` as a user starts it (the venv's console script, default flags but
    the port) answers through Gradio's API; its default upload cap (20 MB, a float flag) holds; a
    long paste and a file that is not audio get messages; Ctrl-C stops it with exit code 0."""
    import httpx
    from gradio_client import Client, handle_file

    with showcase_app(["--runs", str(runs)], tmp_path) as url:
        client = Client(url, verbose=False)
        english, _, status = client.predict("Ein Hund rennt.", 2, api_name="/translation_seq2seq")
        assert status.startswith("done in ") and isinstance(english, str), status
        *_, status = client.predict("Ein Hund rennt. " * 200, 2, api_name="/translation_seq2seq")
        assert "3,200 characters, more than this page takes (2,000" in status, status
        (tmp_path / "junk.wav").write_bytes(b"\x00not media at all" * 10)
        *_, status = client.predict(handle_file(str(tmp_path / "junk.wav")), api_name="/speech_ctc")
        assert status.startswith("**error:** junk.wav: not readable audio"), status
        assert "/" not in status, status  # no temp folder of Gradio's
        big = ("big.bin", b"\x00" * (20 * 2**20 + 1))
        refused = httpx.post(f"{url}gradio_api/upload", files={"files": big}, timeout=60)
        assert refused.status_code == 413 and "20971520 bytes" in refused.text, refused.text
        fits = httpx.post(f"{url}gradio_api/upload", files={"files": ("a.bin", b"ok")}, timeout=60)
        assert fits.status_code == 200, fits.text
        client.close()  # as a closed browser tab: Ctrl-C then has no open session to wait for


@pytest.fixture(scope="module")
def server(runs):
    port = free_port()
    cfg = app.AppConfig(runs=str(runs), host="127.0.0.1", port=port, device="cpu", max_upload_mb=1)
    page = app.build_page(cfg)
    app.serve(page, cfg, block=False)
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
        assert "not a readable image" in said and tempfile.gettempdir() not in said, said
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


def test_microphone_in_headless_chromium(server):
    """The speech tab's microphone: Chromium's fake capture device records a tone, Gradio's
    recorder uploads it, and it is transcribed (a reading failure would be an error line)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    if not any(d.domain == "speech" for d in APPS):
        pytest.skip("no speech demo with an app")
    browser = chromium(fake_microphone=True)
    try:
        browser.get(server)
        wait_for(lambda: browser.find_elements(By.ID, "tab-speech-ctc-button"))[0].click()
        tab = wait_for(lambda: browser.find_elements(By.ID, "tab-speech-ctc"))[0]

        def shown(css: str) -> list:
            try:
                return [b for b in tab.find_elements(By.CSS_SELECTOR, css) if b.is_displayed()]
            except StaleElementReferenceException:  # re-drawn while we looked: look again
                return []

        def button(css: str):
            return wait_for(lambda: shown(css))[0]

        button("button[aria-label='Record audio']").click()
        button("button.record-button").click()
        time.sleep(2.0)  # two seconds of the fake device's beeps
        button("button.stop-button").click()
        button("button[aria-label='Play']")  # the recording is back from the server, playable
        browser.find_element(By.ID, "speech-ctc-run").click()
        status = browser.find_element(By.ID, "speech-ctc-status")
        said = wait_for(
            lambda: status.text.strip() if status.text.startswith(("done", "error")) else ""
        )
        assert said.startswith("done in "), said
    finally:
        browser.quit()
