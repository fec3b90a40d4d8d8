"""Headless Chromium for the page tests: Debian's chromium and chromium-driver, driven by selenium
(the dev extra). Absent: a skip, except in CI (which installs them), where it is a failure."""

import os
import shutil

import pytest


def chromium(width: int = 1280, height: int = 2000, fake_microphone: bool = False):
    """A headless Chromium; `fake_microphone`: a page may record without asking, and hears
    Chromium's fake capture device (a beep every second)."""
    try:
        from selenium import webdriver
    except ImportError:
        webdriver = None
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if webdriver is None or not (binary and driver):
        reason = "needs selenium (the dev extra) and Debian's chromium and chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI installs them)")
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    if fake_microphone:
        options.add_argument("--use-fake-ui-for-media-stream")
        options.add_argument("--use-fake-device-for-media-stream")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(
        options=options, service=webdriver.ChromeService(executable_path=driver)
    )
    browser.set_page_load_timeout(60)
    browser.set_script_timeout(30)
    return browser
