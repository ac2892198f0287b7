"""Headless Chromium driven by Selenium: the page's browser test and docs/web/screenshots.py share this set-up.

Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them when missing) and the test extra's selenium.
"""

from __future__ import annotations

import base64
import shutil
import time
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# Without the networking flags Chromium stalls on a closed network (it keeps trying to reach Google's services).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
ENDED = ("done", "error", "cancelled")  # the page's body data-state once the shown file's job has ended


def missing() -> list[str]:
    """The browser or driver files that are not installed."""
    return [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).is_file()]


def start_chromium(profile: Path):
    """A headless Chromium (1280 x 900) whose console is readable."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={profile}", "--window-size=1280,900"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, read for CSP violations
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_script_timeout(30)
    return driver


def open_page(driver, url: str, key: str | None) -> None:
    """Load the page and type the API key (none: the field left empty)."""
    from selenium.webdriver.common.by import By

    driver.get(url + "/")
    field = driver.find_element(By.ID, "key")
    field.clear()
    if key:
        field.send_keys(key)


def page_state(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").get_attribute("data-state")


def upload_and_wait(driver, *paths: Path, timeout: float = 300) -> str:
    """Choose the files in the page's picker; wait until the one shown (the first) has ended; its state."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.ID, "file").send_keys("\n".join(str(p) for p in paths))
    WebDriverWait(driver, timeout, poll_frequency=0.5).until(lambda d: page_state(d) in ENDED)
    return page_state(driver)


def screenshot(driver, path: Path, width: int, jpeg_quality: int | None = None) -> None:
    """The whole page as a ``width`` CSS px wide screen shows it (DevTools emulation: a window is at least 500 px).

    PNG, or with ``jpeg_quality`` a JPEG scaled to 75% where wider than 1000 px (small files for the docs).
    """
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": 844, "deviceScaleFactor": 1, "mobile": width < 600})
    time.sleep(1.0)  # the page redraws its frame for the new size (debounced)
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    scale = 0.75 if jpeg_quality and width > 1000 else 1
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": scale}
    options = {"format": "jpeg", "quality": jpeg_quality} if jpeg_quality else {"format": "png"}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {**options, "captureBeyondViewport": True, "clip": clip})
    path.write_bytes(base64.b64decode(shot["data"]))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
