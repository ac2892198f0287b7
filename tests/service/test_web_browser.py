"""The page in a real browser: headless Chromium (Debian's chromium + chromium-driver) driven by Selenium.

A live ``unmask serve`` with the bundled default model and API keys on; the
page is given the key, uploads a shared clip, and must draw the verdict, the
boxes, the timeline and the heat maps. Screenshots land in the test's tmp
folder. Skipped, with the reason, where Chromium or its driver is missing
(``.ci/run`` installs them).
"""

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from .live import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# Without the networking flags Chromium stalls on a closed network (it keeps trying to reach Google's services).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
KEY = "browser-test-key"
CLIP = "clips/dfdc_fake_brtujopkby.mp4"
TIMEOUT_S = 300


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("web-data")
    env = {"UNMASK_MODEL": os.environ.get("UNMASK_TEST_MODEL", "default"), "UNMASK_DATA_DIR": str(data),
           "UNMASK_API_KEYS": hashlib.sha256(KEY.encode()).hexdigest()}
    live = LiveServer(env, data / "server.log").start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).is_file()]
    if missing:
        pytest.skip(f"no browser to drive: {', '.join(missing)} missing (apt-get install -y chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the test extra)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}", "--window-size=1280,900"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, read for CSP violations
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def _open(browser, server, key: str | None = KEY):
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    field = browser.find_element(By.ID, "key")
    field.clear()
    if key:
        field.send_keys(key)
    return By


def _upload_and_wait(browser, path: Path) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.find_element(By.ID, "file").send_keys(str(path))
    WebDriverWait(browser, TIMEOUT_S, poll_frequency=0.5).until(
        lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-state") in ("done", "error", "cancelled"))
    return browser.find_element(By.TAG_NAME, "body").get_attribute("data-state")


def _screenshot(browser, path: Path, width: int) -> None:
    """The whole page as a ``width`` CSS px wide screen shows it (DevTools emulation: a window is at least 500 px)."""
    import base64
    import time

    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": 844, "deviceScaleFactor": 1, "mobile": width < 600})
    time.sleep(1.0)  # the page redraws its frame for the new size (debounced)
    size = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = browser.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
    path.write_bytes(base64.b64decode(shot["data"]))
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


# What the page drew, read back from its canvases and SVG (pixels, not the page's own claims).
DRAWN = """
const page = window.unmask.page, result = page.result;
const canvas = document.getElementById('frame'), ctx = canvas.getContext('2d');
const frame = result.frames[page.current];
const boxes = frame.faces.map((face) => {
  const [x1, y1, x2] = face.box;
  const pixel = ctx.getImageData(Math.floor((x1 + x2) / 2), Math.floor(y1), 1, 1).data;
  const want = window.unmask.colorFor(face.score);
  return Math.max(...want.map((c, i) => Math.abs(c - pixel[i])));
});
const spread = (c) => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let sum = 0, sq = 0, n = 0;
  for (let i = 0; i < d.length; i += 4 * 97) { sum += d[i]; sq += d[i] * d[i]; n++; }
  return Math.sqrt(sq / n - (sum / n) ** 2);
};
const heat = [...document.querySelectorAll('#heatmaps figure')].map((fig) => {
  const [plain, overlay] = fig.querySelectorAll('canvas');
  const a = plain.getContext('2d').getImageData(0, 0, plain.width, plain.height).data;
  const b = overlay.getContext('2d').getImageData(0, 0, overlay.width, overlay.height).data;
  let diff = 0;
  for (let i = 0; i < a.length; i += 4) diff += Math.abs(a[i] - b[i]) + Math.abs(a[i + 2] - b[i + 2]);
  return { plainSpread: spread(plain), meanDiff: diff / (a.length / 2) };
});
return {
  status: result.status, label: document.querySelector('#verdict .label').textContent,
  frameSize: [canvas.width, canvas.height], frameSpread: spread(canvas), boxes,
  faces: result.frames.reduce((n, f) => n + f.faces.length, 0), tracks: result.tracks.length,
  dots: document.querySelectorAll('#timeline svg circle').length,
  lines: document.querySelectorAll('#timeline svg polyline').length,
  thumbs: document.querySelectorAll('#strip canvas').length, frames: result.frames.length,
  rows: document.querySelectorAll('#tracks tbody tr').length,
  explanations: (result.explanations || []).length, heat,
};
"""


def test_clip_verdict_boxes_timeline_and_heat_maps(browser, server, shared_data, tmp_path):
    _open(browser, server)
    assert _upload_and_wait(browser, shared_data / CLIP) == "done"
    drawn = browser.execute_script(DRAWN)
    _screenshot(browser, tmp_path / "page-desktop.png", 1280)
    _screenshot(browser, tmp_path / "page-phone.png", 390)
    print(f"screenshots: {tmp_path}")
    assert drawn["status"] == "ok" and drawn["label"] == "fake"
    assert drawn["frameSize"] == [1080, 1920] and drawn["frameSpread"] > 10  # the video's own frame, not a blank
    assert drawn["boxes"] and max(drawn["boxes"]) <= 3  # each face's box in its score colour
    assert drawn["dots"] == drawn["faces"] and drawn["lines"] == drawn["tracks"] >= 1
    assert drawn["thumbs"] == drawn["frames"] == 32 and drawn["rows"] == drawn["tracks"]
    assert 1 <= drawn["explanations"] == len(drawn["heat"]) <= 4
    for heat in drawn["heat"]:
        assert heat["plainSpread"] > 10  # the face crop cut from the video
        assert heat["meanDiff"] > 10  # with a heat map laid over it
    blocked = [entry["message"] for entry in browser.get_log("browser") if "Content Security Policy" in entry["message"]]
    assert not blocked, blocked  # the page's own policy lets all of the above through


def test_no_face_and_problem_json_read_as_sentences(browser, server, no_face_image, bad_files, tmp_path):
    By = _open(browser, server)
    assert _upload_and_wait(browser, no_face_image) == "done"
    assert browser.find_element(By.CSS_SELECTOR, "#verdict .label").text.lower() == "no face found"
    assert "found none" in browser.find_element(By.ID, "meaning").text
    _screenshot(browser, tmp_path / "page-no-face.png", 390)
    assert _upload_and_wait(browser, bad_files["text"]) == "error"
    message = browser.find_element(By.ID, "message").text
    assert message.startswith("Unsupported media type (415): notes.jpg:"), message
    assert not browser.find_element(By.ID, "result").is_displayed()  # the last result is cleared
    _screenshot(browser, tmp_path / "page-415.png", 390)
    _open(browser, server, key="wrong-key")
    assert _upload_and_wait(browser, no_face_image) == "error"
    assert browser.find_element(By.ID, "message").text.startswith("Unauthorized (401): ")
    assert browser.find_element(By.ID, "message").text.endswith("Enter a valid API key above and try again.")
    _screenshot(browser, tmp_path / "page-401.png", 390)


def test_a_file_the_browser_cannot_show_leaves_no_old_picture_and_no_error(browser, server, shared_data, tmp_path):
    """An AVI (MJPEG) that the server scores but Chromium cannot play, after an image: before, the image and its
    'fake 0.99' box stayed under the AVI's verdict (CSS display beat `hidden`), and a timeline click threw."""
    from PIL import Image

    from .corpus import _video

    By = _open(browser, server)
    assert _upload_and_wait(browser, shared_data / "frames" / "dfdc_fake_mqzvfufzoq_fr0.jpg") == "done"
    assert browser.find_element(By.ID, "frame").is_displayed()
    clip = tmp_path / "talking.avi"
    clip.write_bytes(_video(8, 5.0, size=(640, 360), image=Image.open(shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg")))
    browser.get_log("browser")  # only what follows counts
    assert _upload_and_wait(browser, clip) == "done"
    assert browser.find_element(By.ID, "frame-note").is_displayed()  # "This browser cannot decode the file ..."
    assert not browser.find_element(By.ID, "frame").is_displayed()
    assert browser.find_element(By.ID, "frame-caption").text == ""
    assert not browser.find_element(By.ID, "heatmaps-box").is_displayed()
    dots = browser.find_elements(By.CSS_SELECTOR, "#timeline svg circle")
    assert dots and dots[0].get_attribute("tabindex") == "0"  # reachable by keyboard
    dots[0].click()
    errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
    assert "talking.avi" in browser.find_element(By.ID, "announce").get_attribute("textContent")


def test_a_second_file_chosen_during_the_first_replaces_it(browser, server, shared_data):
    """Before, the first file's rows and heat maps were added to the second's result."""
    By = _open(browser, server)
    browser.find_element(By.ID, "file").send_keys(str(shared_data / CLIP))
    image = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    assert _upload_and_wait(browser, image) == "done"
    result = browser.execute_script("return window.unmask.page.result")
    assert result["path"] == image.name
    assert len(browser.find_elements(By.CSS_SELECTOR, "#tracks tbody tr")) == len(result["tracks"])
    assert len(browser.find_elements(By.CSS_SELECTOR, "#heatmaps figure")) == len(result["explanations"])
    import time

    time.sleep(3)  # the clip's run, had it gone on, would have drawn by now
    assert browser.execute_script("return window.unmask.page.result")["path"] == image.name
    assert len(browser.find_elements(By.CSS_SELECTOR, "#tracks tbody tr")) == len(result["tracks"])


def test_cancel_stops_the_job_and_the_job_stays_readable(browser, server, shared_data):
    """Cancel asks POST /v1/jobs/{id}/cancel: the page says so, and the job reads as cancelled (DELETE forgets a job)."""
    from selenium.webdriver.support.ui import WebDriverWait

    By = _open(browser, server)
    state = lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-state")  # noqa: E731
    browser.find_element(By.ID, "file").send_keys(str(shared_data / CLIP))
    WebDriverWait(browser, TIMEOUT_S, poll_frequency=0.2).until(lambda b: state(b) == "running")
    job = browser.execute_script("return window.unmask.page.job")
    browser.find_element(By.ID, "cancel").click()
    WebDriverWait(browser, TIMEOUT_S, poll_frequency=0.2).until(lambda b: state(b) in ("cancelled", "done", "error"))
    assert state(browser) == "cancelled" and browser.find_element(By.ID, "message").text == "Cancelled."
    with server.client(headers={"X-API-Key": KEY}) as client:
        assert client.get(f"/v1/jobs/{job}").json()["state"] == "cancelled"
