"""app: `showcase app` in headless Chromium on this machine: the page's load time (until the first
tab is there) and one inference round trip (a real MNIST test digit uploaded, Classify clicked,
until the probabilities show), with the classifier trained by its quick tour configuration; a
screenshot of the page after the last answer is saved as app.png beside the runs.

Needs the app extra (Gradio), selenium, and Debian's chromium and chromium-driver."""

import shutil
import socket
import tempfile
import time
from pathlib import Path

NEEDS = ("gradio", "selenium")


def wait_for(predicate, seconds: float = 120.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError("the page did not answer")


def headless_chromium():
    """A headless Chromium driven by Selenium, its window tall enough for a whole tab."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,2000",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(
        options=options, service=webdriver.ChromeService(shutil.which("chromedriver"))
    )


def run(args) -> dict:
    from PIL import Image
    from selenium.webdriver.common.by import By

    from core.command import config_class
    from core.parse import build
    from showcase import app, catalog
    from vision.mnist import load_mnist

    runs = Path(args.keep_runs or tempfile.mkdtemp()) / "app-runs"
    demo = catalog.find("vision", "classify")
    train = catalog.commands(demo)["train"]
    quick = {"max_steps": 3} if args.quick else demo.tour.quick
    cfg = build(
        config_class(train),
        **quick,
        out_dir=str(catalog.run_folder(demo, runs)),
        data_dir=args.data_dir,
        device=args.device,
    )
    train(cfg)
    test_x = load_mnist(args.data_dir)["test_x"]
    digits = [runs / f"digit-{i}.png" for i in range(3)]  # labels 7, 2, 1: each answer differs
    for i, path in enumerate(digits):
        Image.fromarray(test_x[i].numpy()).save(path)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    served = app.AppConfig(runs=str(runs), port=port, device=args.device, data_dir=args.data_dir)
    page = app.build_page(served)
    app.serve(page, served, block=False)  # as `showcase app` serves it
    browser = headless_chromium()
    try:
        browser.get("about:blank")  # the browser's own start-up is not the page's load time
        t0 = time.perf_counter()
        browser.get(f"http://127.0.0.1:{port}/")
        wait_for(lambda: browser.find_elements(By.ID, "tab-vision-classify-button"))[0].click()
        tab = wait_for(lambda: browser.find_elements(By.ID, "tab-vision-classify"))[0]
        load_seconds = time.perf_counter() - t0

        def shown() -> str:
            found = tab.find_elements(By.CSS_SELECTOR, "[data-testid=label-output-value]")
            return found[0].text.strip() if found else ""

        times = []
        for path in digits:  # the first click also loads the model
            tab.find_elements(By.CSS_SELECTOR, "input[type=file]")[-1].send_keys(str(path))
            time.sleep(1.0)  # the upload and its preview
            before = shown()
            t1 = time.perf_counter()
            browser.find_element(By.ID, "vision-classify-run").click()
            wait_for(lambda b=before: shown() and shown() != b)
            times.append(time.perf_counter() - t1)
        top = shown()
        browser.set_window_size(1280, 1000)
        browser.save_screenshot(str(runs / "app.png"))  # the README's picture of the page
    finally:
        browser.quit()
        page.close()
    return {
        "page_load_seconds": round(load_seconds, 2),
        "first_round_trip_seconds": round(times[0], 2),
        "round_trip_seconds": round(min(times[1:]), 2),
        "device": args.device,
        "last_top_class": top,
        "screenshot": str(runs / "app.png"),
    }
