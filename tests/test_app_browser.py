"""The app's page in a real browser: Debian's headless Chromium driven by Selenium.

The test starts ``inpainting app --port 0`` as a user would, opens the page, checks that a
refused upload shows its message, loads a bundled sample, brushes strokes with the mouse
(some undone, cleared or erased again; one with a brush size set on the slider), runs the
model and checks that the result appears and differs from the input only inside the stroke
that was kept (every pixel farther than the brush radius from it is byte-identical), that
hovering over the hole names the block that contextual attention copied from, and that the
"Without attention" toggle brings a second result (the shipped model with its attention
branch knocked out, labelled as that probe) that also keeps every pixel outside the
stroke, and back. A
screenshot of the page is kept as a CI artefact in ``test-artifacts/app_page.png``
(``INPAINTING_ARTIFACTS`` names another folder).

Chromium and chromedriver come from Debian (``apt-get install chromium chromium-driver``,
which ``.ci/run`` does); nothing is downloaded at run time. Without them the test skips on a
developer's machine, but fails when ``CI`` is set (not empty, 0 or false): a CI that cannot
run it must not pass.

``python tests/test_app_browser.py SAMPLE OUT.png`` drives the same steps with another sample
and saves the screenshot to OUT.png (how docs/images/app.png is made).
"""
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = "texture: blobs (256x256)"
STROKE = ((60, 150), (190, 110))        # image pixels, start and end of the brushed line
BRUSH = 20                              # brush diameter for STROKE, image pixels
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1400,1000")


def _missing_tools():
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    for module in ("selenium", "starlette", "uvicorn"):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"python package {module}")
    return missing


def _require_browser():
    missing = _missing_tools()
    if not missing:
        return
    message = (f"the browser test needs {', '.join(missing)} (apt-get install chromium "
               "chromium-driver; pip install -e \".[test]\")")
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"{message}; CI must run it, so this fails instead of skipping")
    pytest.skip(f"{message}; skipped because CI is not set")


def start_app(extra=()):
    """``inpainting app --port 0`` in a subprocess; returns (process, base URL)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    process = subprocess.Popen([sys.executable, "-m", "inpainting", "app", "--port", "0",
                                *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = [re.search(r"serving on (http://\S+?)/? ", line) for line in lines]
        if any(found):
            return process, next(f for f in found if f).group(1)
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise AssertionError("inpainting app did not start:\n" + "".join(lines))


def _fetch_png(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return np.asarray(Image.open(io.BytesIO(response.read())).convert("RGB"))


def _distance_to_stroke(height, width):
    """Distance of every pixel centre to the segment STROKE (image pixels)."""
    (x0, y0), (x1, y1) = STROKE
    y, x = np.mgrid[0:height, 0:width] + 0.5
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy), 0, 1)
    return np.hypot(x - (x0 + t * dx), y - (y0 + t * dy))


def drive_page(url, sample, screenshot, profile):
    """Open the page, load ``sample``, brush STROKE, run, hover, toggle "without attention"
    and back; returns (result URL, hover text, the result URL without attention, its
    caption and note)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in CHROMIUM_FLAGS + (f"--user-data-dir={profile}",):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options,
                              service=Service(executable_path=shutil.which("chromedriver")))
    try:
        wait = WebDriverWait(driver, 60)
        driver.get(url + "/")
        wait.until(lambda d: len(Select(d.find_element(By.ID, "sample")).options) > 0)
        # A file that is not an image: the server's refusal is shown on the page.
        not_an_image = Path(profile).parent / "notes.png"
        not_an_image.write_text("these are notes, not a picture\n" * 20)
        driver.find_element(By.ID, "file").send_keys(str(not_an_image))
        wait.until(lambda d: d.find_element(By.ID, "message").is_displayed())
        refusal = driver.find_element(By.ID, "message").text
        assert refusal.startswith("notes.png: the image is not an image type the app reads"), \
            refusal
        Select(driver.find_element(By.ID, "sample")).select_by_value(sample)
        driver.find_element(By.ID, "load-sample").click()
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")
                   == "ready")
        canvas = driver.find_element(By.ID, "mask-canvas")
        width = int(canvas.get_attribute("width"))
        scale = canvas.rect["width"] / width          # CSS pixels per image pixel

        def offset(point):                            # Selenium offsets are from the centre
            return ((point[0] - width / 2) * scale,
                    (point[1] - int(canvas.get_attribute("height")) / 2) * scale)

        def stroke(start, end, steps=10):
            chain = ActionChains(driver).move_to_element_with_offset(canvas, *offset(start))
            chain.click_and_hold()
            for i in range(1, steps + 1):
                point = tuple(a + (b - a) * i / steps for a, b in zip(start, end))
                chain.move_to_element_with_offset(canvas, *offset(point))
            chain.release().perform()

        def click(element_id):
            driver.find_element(By.ID, element_id).click()

        def set_brush(size):
            slider = driver.find_element(By.ID, "brush-size")
            driver.execute_script("arguments[0].value = arguments[1]; arguments[0]"
                                  ".dispatchEvent(new Event('input'))", slider, size)
            assert driver.find_element(By.ID, "brush-size-value").text == f"{size} px"

        # Strokes that must leave no trace: undone, cleared, erased. The final check (only
        # STROKE's pixels change) fails if any of them reached the model.
        stroke((30, 225), (220, 225))
        stroke((200, 60), (200, 90))
        click("clear")
        stroke((30, 30), (220, 40))
        click("undo")
        stroke((30, 60), (30, 220))
        click("tool-eraser")
        set_brush(48)
        stroke((30, 50), (30, 230))
        click("tool-brush")
        set_brush(BRUSH)
        stroke(*STROKE)
        click("run")
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")
                   in ("done", "error"))
        message = driver.find_element(By.ID, "message")
        assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "done", \
            message.text
        result = driver.find_element(By.ID, "result-img")
        assert result.is_displayed()
        assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth",
                                     result) == width
        (x0, y0), (x1, y1) = STROKE
        middle = ((x0 + x1) / 2, (y0 + y1) / 2)       # hover over the hole in the result
        ActionChains(driver).move_to_element_with_offset(
            result, (middle[0] - width / 2) * result.rect["width"] / width,
            (middle[1] - width / 2) * result.rect["width"] / width).perform()
        hover = driver.find_element(By.ID, "hover-text").text
        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(screenshot))
        with_url = result.get_attribute("src")
        toggle = driver.find_element(By.ID, "without")
        assert toggle.is_displayed() and toggle.get_attribute("aria-pressed") == "false"
        toggle.click()                                # a second job, without attention
        wait.until(lambda d: d.find_element(By.ID, "result-img").get_attribute("src")
                   != with_url and d.find_element(By.TAG_NAME, "body")
                   .get_attribute("data-state") in ("done", "error"))
        assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "done", \
            message.text
        assert toggle.get_attribute("aria-pressed") == "true"
        assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth",
                                     result) == width
        without_url = result.get_attribute("src")
        caption = driver.find_element(By.ID, "result-caption").text
        note = driver.find_element(By.ID, "without-label").text
        toggle.click()                                # back: the first result, no new job
        wait.until(lambda d: d.find_element(By.ID, "result-img").get_attribute("src")
                   == with_url)
        assert toggle.get_attribute("aria-pressed") == "false"
        assert not driver.find_element(By.ID, "without-label").is_displayed()
        return with_url, hover, without_url, caption, note
    finally:
        driver.quit()


def test_page_fills_only_the_brushed_stroke(tmp_path):
    _require_browser()
    process, url = start_app()
    try:
        artifacts = Path(os.environ.get("INPAINTING_ARTIFACTS", ROOT / "test-artifacts"))
        screenshot = artifacts / "app_page.png"
        result_url, hover, without_url, caption, note = drive_page(
            url, SAMPLE, screenshot, tmp_path / "profile")
        original = _fetch_png(f"{url}/api/sample?name={urllib.parse.quote(SAMPLE)}")
        result = _fetch_png(result_url)
        without = _fetch_png(without_url)
        with urllib.request.urlopen(result_url.rsplit("/", 1)[0], timeout=30) as response:
            offsets = json.load(response)["offsets"]
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert result.shape == original.shape
    distance = _distance_to_stroke(*original.shape[:2])
    changed = (result != original).any(axis=2)
    outside = distance > BRUSH / 2 + 1.5              # beyond the brush (and its antialiasing)
    inside = distance < BRUSH / 2 - 1.5
    assert not changed[outside].any(), \
        f"{changed[outside].sum()} pixels changed outside the stroke"
    assert changed[inside].mean() > 0.5, "the stroke was not filled"
    columns = np.nonzero(changed.any(axis=0))[0]       # the fill spans the whole stroke
    assert columns.min() <= STROKE[0][0] and columns.max() >= STROKE[1][0] - 1
    # The hover text names the pixel's block and the block its offset points to.
    found = re.fullmatch(r"Pixel \((\d+), (\d+)\) lies in the 8x8 block at \((\d+), (\d+)\); "
                         r"contextual attention copied it mostly from the block at "
                         r"\((-?\d+), (-?\d+)\) \(blue\): offset \(dy, dx\) = \((-?\d+), "
                         r"(-?\d+)\) blocks = \((-?\d+), (-?\d+)\) px\.", hover)
    assert found, hover
    x, y, bx, by, sx, sy, dy, dx, py, px = map(int, found.groups())
    assert distance[y, x] < BRUSH / 2 and (bx, by) == (x // 8 * 8, y // 8 * 8)
    grid = offsets["cols"] * (y // 8) + x // 8
    assert (dy, dx) == (offsets["dy"][grid], offsets["dx"][grid])
    assert (sx, sy, px, py) == (bx + 8 * dx, by + 8 * dy, 8 * dx, 8 * dy)
    assert screenshot.stat().st_size > 0
    # Without attention: labelled as the probe (no --ablation-weights), the same pixels
    # outside the stroke, a different fill inside it.
    assert caption.endswith("WITHOUT ATTENTION (probe: attention output zeroed)"), caption
    assert note.startswith("Showing the fill without attention, probe: this model with its "
                           "attention branch's output replaced by zeros"), note
    assert without.shape == original.shape
    assert not (without != original).any(axis=2)[outside].any()
    assert (without != result).any(axis=2)[inside].mean() > 0.5


if __name__ == "__main__":
    import tempfile

    if len(sys.argv) != 3:
        sys.exit("usage: python tests/test_app_browser.py SAMPLE OUT.png")
    app, base = start_app()
    try:
        with tempfile.TemporaryDirectory() as folder:
            print(drive_page(base, sys.argv[1], sys.argv[2], Path(folder) / "profile"))
    finally:
        app.terminate()
        app.wait(timeout=30)
