"""Remake the page's screenshots in this folder: a live ``unmask serve`` (bundled default model) and headless Chromium.

    python docs/web/screenshots.py [--out docs/web]

Needs the test extra (selenium) and Debian's chromium + chromium-driver, as the
browser test (tests/service/test_web_browser.py), whose set-up it shares.
Takes a few minutes on a laptop's CPU (two clips are scored with heat maps).
Writes small JPEGs and prints what each shows; README.md beside them says
what to look for.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the browser test's helpers

from tests.service.browser import missing, open_page, screenshot, start_chromium, upload_and_wait  # noqa: E402
from tests.service.live import LiveServer  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
QUALITY = 80


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent, help="where the JPEGs go")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    args = parser.parse_args()
    if missing():
        sys.exit(f"no browser to drive: {', '.join(missing())} missing (apt-get install -y chromium chromium-driver)")
    with tempfile.TemporaryDirectory(prefix="unmask-shots-") as tmp:
        work = Path(tmp)
        server = LiveServer({"UNMASK_MODEL": "default", "UNMASK_DATA_DIR": str(work / "data")}, work / "server.log")
        (work / "data").mkdir()
        server.start()
        driver = start_chromium(work / "profile")
        try:
            take(driver, server.url, args.data, args.out, work)
        finally:
            driver.quit()
            server.stop()


def take(driver, url: str, data: Path, out: Path, work: Path) -> None:
    from PIL import Image

    def fresh() -> None:  # an empty job list: each view alone
        open_page(driver, url, None)
        driver.execute_script("sessionStorage.clear()")
        open_page(driver, url, None)

    def shot(name: str, width: int, what: str) -> None:
        screenshot(driver, out / name, width, jpeg_quality=QUALITY)
        print(f"{name}: {what} ({(out / name).stat().st_size // 1024} KiB)")

    def shown() -> str:
        result = driver.execute_script("return window.unmask.page.result")
        return f"{result['path']}: {driver.find_element('css selector', '#verdict .label').text} {result.get('score')}"

    fresh()
    upload_and_wait(driver, data / "clips" / "dfdc_fake_brtujopkby.mp4")
    shot("fake-clip.jpg", 1280, shown())
    shot("fake-clip-phone.jpg", 390, shown())

    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(work)})
    driver.find_element("id", "download-png").click()
    summary = work / "dfdc_fake_brtujopkby.unmask.png"
    deadline = time.monotonic() + 30
    while not summary.is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    with Image.open(summary) as png:
        png.convert("RGB").resize((png.width // 2, png.height // 2), Image.LANCZOS).save(out / "report-summary.jpg", quality=QUALITY)
    print(f"report-summary.jpg: the one-page PNG summary of that clip, at half size ({(out / 'report-summary.jpg').stat().st_size // 1024} KiB)")

    fresh()
    upload_and_wait(driver, data / "clips" / "ffpp_real_004.mp4")
    shot("real-clip.jpg", 1280, shown())

    fresh()
    files = [data / "dfdc_faces" / "faces" / "aizdhhesnq.jpg", data / "frames" / "dfdc_fake_mqzvfufzoq_fr0.jpg",
             data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"]
    upload_and_wait(driver, *files)
    ours = "return window.unmask.page.jobs.every((e) => ['done', 'failed', 'cancelled', 'rejected'].includes(e.state))"
    deadline = time.monotonic() + 300
    while not driver.execute_script(ours) and time.monotonic() < deadline:
        time.sleep(0.5)
    shot("jobs.jpg", 1280, f"three files at once, the first shown: {shown()}")

    fresh()
    frame = Image.open(data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg")
    frame.crop((0, frame.height // 2, frame.width, frame.height)).save(work / "no_face.jpg", quality=90)
    upload_and_wait(driver, work / "no_face.jpg")
    shot("no-face-phone.jpg", 390, shown())

    fresh()
    (work / "notes.jpg").write_bytes(b"this is not an image\n" * 10)
    upload_and_wait(driver, work / "notes.jpg")
    shot("error-415-phone.jpg", 390, driver.find_element("id", "message").text)


if __name__ == "__main__":
    main()
