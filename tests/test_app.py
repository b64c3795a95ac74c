"""The app's server without a browser: limits, bad uploads, queueing, the composite.

A real uvicorn server runs in a thread on a free loopback port with a small random generator
(cnum 4), and requests go over HTTP with urllib, as the page's would. The browser test is
tests/test_app_browser.py.
"""
import base64
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

try:
    import uvicorn
except ImportError:
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        raise                        # CI installs the test extra, which includes the app's
    pytest.skip("the app extra is not installed (pip install -e \".[app]\"); CI fails instead",
                allow_module_level=True)

from inpainting.app.web.images import (Limits, UploadError, composite, decode_mask,  # noqa: E402
                                   decode_upload)
from inpainting.app.web.jobs import JobQueue, fill_hole  # noqa: E402
from inpainting.app.web.server import create_app  # noqa: E402
from inpainting.model.networks import InpaintGenerator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LIMITS = Limits(max_upload_bytes=40_000, max_pixels=64 * 64, min_side=16)


class Served:
    """``create_app(...)`` served by uvicorn in a thread; ``request`` talks to it."""

    def __init__(self, jobs=None, limits=LIMITS, allowed_hosts=("127.0.0.1",)):
        generator = InpaintGenerator(cnum=4, rng=np.random.default_rng(0))
        self.jobs = jobs or JobQueue(generator)
        app = create_app(generator, limits=limits, jobs=self.jobs, allowed_hosts=allowed_hosts)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="critical"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                       daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)

    def request(self, path, body=None, content_type=None, headers=()):
        """(status, JSON or bytes) of one request; a body makes it a POST."""
        request = urllib.request.Request(self.url + path, data=body, headers=dict(headers))
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, data, kind = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, data, kind = error.code, error.read(), error.headers
        if kind.get("content-type", "").startswith("application/json"):
            return status, json.loads(data)
        return status, data

    def submit(self, image, mask):
        body = json.dumps({"image": base64.b64encode(image).decode(),
                           "mask": base64.b64encode(mask).decode()}).encode()
        return self.request("/api/jobs", body, "application/json")

    def wait(self, job, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            status, answer = self.request(f"/api/jobs/{job}")
            assert status == 200, answer
            if answer["state"] in ("done", "error"):
                return answer
            assert time.monotonic() < deadline, answer
            time.sleep(0.02)

    def close(self):
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.jobs.close(wait=False)


@pytest.fixture
def served():
    server = Served()
    yield server
    server.close()


def png(pixels, format="PNG", **options):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=format, **options)
    return buffer.getvalue()


def picture(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def mask_png(height, width, rows, cols):
    """The page's mask: transparent canvas, opaque where brushed."""
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[rows, cols] = (255, 0, 90, 255)
    return png(rgba)


def test_result_keeps_every_pixel_outside_the_hole(served):
    image = picture(37, 53)                         # not multiples of 8: padded inside
    hole = np.zeros((37, 53), bool)
    hole[10:25, 20:41] = True
    status, answer = served.submit(png(image), mask_png(37, 53, slice(10, 25), slice(20, 41)))
    assert status == 202, answer
    done = served.wait(answer["id"])
    assert done["state"] == "done", done
    pictures = {name: np.asarray(Image.open(io.BytesIO(served.request(url)[1])))
                for name, url in done["pictures"].items()}
    result = pictures["result.png"]
    assert result.shape == image.shape and result.dtype == np.uint8
    assert np.array_equal(result[~hole], image[~hole])      # byte-identical outside
    assert (result[hole] != image[hole]).any()
    assert pictures["coarse.png"].shape == pictures["attention.png"].shape == image.shape
    offsets = done["offsets"]
    assert (offsets["rows"], offsets["cols"], offsets["cell"]) == (5, 7, 8)   # ceil(/8)
    assert len(offsets["dy"]) == len(offsets["dx"]) == 35
    # The attention picture: pixel (y, x) has the colour of grid entry (y // 8, x // 8).
    from inpainting.model.attention_colours import flow_to_image
    grid = np.array([offsets["dy"], offsets["dx"]]).reshape(1, 2, 5, 7)
    colours = flow_to_image(grid)[0]
    for y in range(37):
        for x in range(53):
            assert (pictures["attention.png"][y, x] == colours[y // 8, x // 8]).all()


def test_result_equals_the_model_composited_in_uint8():
    from inpainting.data.imageio import hwc_uint8_to_chw, to_uint8
    from inpainting.model.inference import inpaint

    generator = InpaintGenerator(cnum=4, rng=np.random.default_rng(1))
    image = picture(24, 40, seed=3)
    hole = np.zeros((24, 40), bool)
    hole[5:15, 8:30] = True
    direct = inpaint(generator, hwc_uint8_to_chw(image), hole[None].astype(np.float32))
    through_app = fill_hole(generator, image, hole)
    np.testing.assert_array_equal(through_app.output, direct.output)
    filled = to_uint8(direct.output[0]).transpose(1, 2, 0)
    expected = image.copy()
    expected[hole] = filled[hole]
    np.testing.assert_array_equal(composite(image, filled, hole), expected)


@pytest.mark.parametrize("make, status, words", [
    (lambda: b"", 400, "empty"),
    (lambda: png(picture(64, 64), format="JPEG")[:400], 400, "could not be decoded"),
    (lambda: b"plain text, not an image" * 10, 415, "not an image type"),
    (lambda: png(picture(64, 64))[:300], 400, "could not be decoded"),      # truncated
    (lambda: png(picture(65, 64)), 413, "4,160 pixels; the limit is 4,096"),
    (lambda: png(picture(8, 64)), 400, "at least 16 pixels"),
    (lambda: png(picture(32, 32), format="ICO"), 415, "not an image type"),  # Pillow reads it,
    (lambda: np.zeros(50_000, np.uint8).tobytes(), 413, "limit is"),         # the app does not
])
def test_bad_uploads_get_a_clear_message(served, make, status, words):
    got, answer = served.request("/api/images", make(), "application/octet-stream")
    assert got == status, answer
    assert words in answer["error"], answer


def test_upload_returns_the_decoded_rgb_image(served):
    gray16 = (np.arange(32 * 48, dtype=np.uint16).reshape(32, 48) * 40)
    rgba = np.concatenate([picture(20, 30), np.full((20, 30, 1), 7, np.uint8)], axis=2)
    for data, expected in ((png(gray16), np.round(gray16 / 257).astype(np.uint8)[..., None]
                            .repeat(3, axis=2)),
                           (png(rgba), rgba[:, :, :3]),
                           (png(picture(20, 30), format="BMP"), picture(20, 30))):
        status, answer = served.request("/api/images", data, "application/octet-stream")
        assert status == 200
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(answer))), expected)
        np.testing.assert_array_equal(decode_upload(data, LIMITS), expected)


def test_limits_are_inclusive():
    """Exactly the limit is allowed: 64x64 = max_pixels, sides of min_side, max_upload_bytes."""
    for height, width in ((64, 64), (16, 64), (64, 16)):
        assert decode_upload(png(picture(height, width)), LIMITS).shape == (height, width, 3)
    with pytest.raises(UploadError, match="not an image type") as refused:
        decode_upload(b"x" * LIMITS.max_upload_bytes, LIMITS)
    assert refused.value.status == 415
    with pytest.raises(UploadError, match="is 40,001 bytes; the limit is 40,000 bytes") as refused:
        decode_upload(b"x" * (LIMITS.max_upload_bytes + 1), LIMITS)
    assert refused.value.status == 413


def test_mask_hole_is_alpha_128_and_above():
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[2, 3, 3], rgba[4, 5, 3], rgba[6, 7, 3] = 127, 128, 255
    hole = decode_mask(png(rgba), (16, 16), LIMITS)
    assert sorted(zip(*np.nonzero(hole))) == [(4, 5), (6, 7)]


def test_chunked_body_over_the_limit_is_refused(served):
    """No Content-Length: the body is counted as it streams in."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", int(served.url.rsplit(":", 1)[1]),
                                            timeout=30)
    chunks = (b"x" * 10_000 for _ in range(5))             # 50,000 bytes > 40,000
    connection.request("POST", "/api/images", body=chunks, encode_chunked=True,
                       headers={"Content-Type": "application/octet-stream"})
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    assert response.status == 413 and "over the limit of" in answer["error"], answer


def test_answers_forbid_loading_anything_from_elsewhere(served):
    with urllib.request.urlopen(served.url + "/", timeout=30) as response:
        policy = response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert policy.startswith("default-src 'self';") and "connect-src 'self'" in policy


def test_palette_upload_is_expanded_to_rgb():
    gif = png(picture(20, 30), format="GIF")
    expected = np.asarray(Image.open(io.BytesIO(gif)).convert("RGB"))
    np.testing.assert_array_equal(decode_upload(gif, LIMITS), expected)


def test_upload_is_turned_upright_by_its_exif_orientation():
    exif = Image.Exif()
    exif[0x0112] = 6                                   # "rotate 90 degrees clockwise to view"
    buffer = io.BytesIO()
    Image.fromarray(picture(20, 30)).save(buffer, format="JPEG", exif=exif)
    assert decode_upload(buffer.getvalue(), LIMITS).shape == (30, 20, 3)


def test_bad_jobs_get_a_clear_message(served):
    image = png(picture(32, 32))
    good_mask = mask_png(32, 32, slice(8, 16), slice(8, 16))
    cases = [
        (served.submit(image, mask_png(32, 40, slice(8, 16), slice(8, 16))), 400,
         "the mask is 40x32 but the image is 32x32"),
        (served.submit(image, mask_png(32, 32, slice(0, 0), slice(0, 0))), 400, "mask is empty"),
        (served.submit(image, mask_png(32, 32, slice(None), slice(None))), 400, "whole image"),
        (served.submit(png(picture(80, 80)), good_mask), 413, "6,400 pixels"),
        (served.request("/api/jobs", b"{not json", "application/json"), 400, "not valid JSON"),
        (served.request("/api/jobs", json.dumps({"image": "@@@", "mask": "AAAA"}).encode(),
                        "application/json"), 400, "'image' is not valid base64"),
        (served.request("/api/jobs", json.dumps({"image": "AAAA"}).encode(),
                        "application/json"), 400, "field 'mask'"),
        (served.request("/api/jobs", b"x" * 200_000, "application/json"), 413, "limit"),
        (served.request("/api/jobs", b"{}", "text/plain"), 415, "application/json"),
        (served.request("/api/images", image, "multipart/form-data"), 415, "octet-stream"),
    ]
    for (status, answer), expected_status, words in cases:
        assert status == expected_status, answer
        assert words in answer["error"], answer


def test_no_client_path_is_opened_and_unknown_names_are_404(served):
    for path in ("/static/..%2Fserver.py", "/static/server.py", "/api/sample?name=..%2F..%2Fetc",
                 "/api/sample?name=astronaut", "/api/jobs/0123456789abcdef",
                 "/api/jobs/0123456789abcdef/result.png", "/static/%2Fetc%2Fpasswd"):
        status, answer = served.request(path)
        assert status == 404, (path, answer)
        assert answer == b"Not Found" or "error" in answer, (path, answer)
    status, page = served.request("/")
    assert status == 200 and b"<canvas id=\"mask-canvas\"" in page
    status, script = served.request("/static/app.js")
    assert status == 200 and b"/api/jobs" in script
    # Nothing on the page is fetched from elsewhere: every URL in it is local.
    for text in (page, script, served.request("/static/app.css")[1]):
        assert b"http://" not in text and b"https://" not in text and b"//cdn" not in text
    status, info = served.request("/api/info")
    assert info["samples"] and info["limits"]["max_pixels"] == LIMITS.max_pixels
    status, sample = served.request("/api/sample?name=" + urllib.request.quote(info["samples"][-1]))
    assert status == 200 and sample[:8] == b"\x89PNG\r\n\x1a\n"


def test_other_host_headers_are_refused(served):
    status, _ = served.request("/api/info", headers={"Host": "attacker.example"})
    assert status == 400
    assert served.request("/api/info", headers={"Host": "127.0.0.1:1"})[0] == 200


class Gate:
    """A fill function that waits until released and records how many ran at once."""

    def __init__(self, fail_on=None, error=ValueError("this input breaks the model")):
        self.release = threading.Event()
        self.running = self.most = self.calls = 0
        self.lock = threading.Lock()
        self.fail_on, self.error = fail_on, error

    def __call__(self, generator, image, hole, **options):
        with self.lock:
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
            call = self.calls
        try:
            self.release.wait(30)
            if call == self.fail_on:
                raise self.error
            return fill_hole(generator, image, hole, **options)
        finally:
            with self.lock:
                self.running -= 1


def test_requests_queue_one_at_a_time_and_a_full_queue_says_busy():
    gate = Gate()
    generator = InpaintGenerator(cnum=4, rng=np.random.default_rng(0))
    served = Served(jobs=JobQueue(generator, fill=gate, max_waiting=2))
    try:
        image, mask = png(picture(32, 32)), mask_png(32, 32, slice(8, 20), slice(4, 28))
        first = served.submit(image, mask)[1]["id"]
        deadline = time.monotonic() + 10
        while served.request(f"/api/jobs/{first}")[1]["state"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        waiting = [served.submit(image, mask)[1]["id"] for _ in range(2)]
        assert [served.request(f"/api/jobs/{job}")[1]["ahead"] for job in waiting] == [1, 2]
        status, answer = served.submit(image, mask)
        assert status == 503 and "busy" in answer["error"], answer
        gate.release.set()
        for job in [first] + waiting:
            assert served.wait(job)["state"] == "done"
        assert gate.most == 1
        # Once a run has finished, a running job shows how long it should take.
        assert served.wait(first)["expected"] > 0
    finally:
        served.close()


def test_concurrent_requests_all_finish_and_a_failure_shows_its_message():
    gate = Gate(fail_on=3)
    gate.release.set()
    generator = InpaintGenerator(cnum=4, rng=np.random.default_rng(0))
    served = Served(jobs=JobQueue(generator, fill=gate, max_waiting=16))
    try:
        image, mask = png(picture(32, 32)), mask_png(32, 32, slice(8, 20), slice(4, 28))
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(served.submit(image, mask)))
                   for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(status for status, _ in answers) == [202] * 6
        states = [served.wait(answer["id"]) for _, answer in answers]
        assert sorted(s["state"] for s in states) == ["done"] * 5 + ["error"]
        failed = next(s for s in states if s["state"] == "error")
        assert failed["message"] == "the model failed: ValueError: this input breaks the model"
        assert gate.most == 1 and gate.calls == 6
    finally:
        served.close()


def test_forgets_old_jobs_beyond_keep():
    generator = InpaintGenerator(cnum=4, rng=np.random.default_rng(0))
    jobs = JobQueue(generator, keep=2)
    try:
        image, hole = picture(16, 16), np.zeros((16, 16), bool)
        hole[4:8, 4:8] = True
        ids = []
        for _ in range(4):
            ids.append(jobs.submit(image, hole))
            deadline = time.monotonic() + 30
            while jobs.status(ids[-1])["state"] != "done":
                assert time.monotonic() < deadline
                time.sleep(0.01)
        assert [jobs.status(job) is None for job in ids] == [True, True, False, False]
    finally:
        jobs.close()


def run_cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "inpainting", "app", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_refuses_a_bad_port_in_one_line():
    done = run_cli("--port", "70000")
    assert done.returncode == 2
    assert done.stderr.strip() == ("inpainting app: error: --port must be between 0 and 65535 "
                                   "(0: any free port), got 70000")


@pytest.mark.parametrize("host, warns", [("127.0.0.1", False), ("127.0.0.2", True)])
def test_cli_serves_127_0_0_1_quietly_and_warns_for_another_address(host, warns):
    process = subprocess.Popen([sys.executable, "-m", "inpainting", "app", "--host", host,
                                "--port", "0"], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        serving = process.stdout.readline()
        url = serving.split("serving on ")[1].split()[0]
        foreign = urllib.request.Request(url + "api/info", headers={"Host": "elsewhere.example"})
        try:
            with urllib.request.urlopen(foreign, timeout=30) as response:
                foreign_status = response.status
        except urllib.error.HTTPError as error:
            foreign_status = error.code
    finally:
        process.terminate()
        process.wait(timeout=30)
        errors = process.stderr.read()
    assert serving.startswith(f"inpainting app: serving on http://{host}:")
    if warns:                        # the user chose the address; its Host names are unknown
        assert errors.startswith(f"warning: serving on {host}, not 127.0.0.1: anyone who can")
        assert foreign_status == 200
    else:                            # on 127.0.0.1 only its own names (DNS rebinding)
        assert "warning" not in errors
        assert foreign_status == 400


def test_without_the_app_extra_the_cli_says_how_to_install_it():
    script = ("import sys; sys.modules['starlette'] = None\n"   # as if Starlette were absent
              "import inpainting.app\n"                         # the package itself imports
              "from inpainting.app.cli import main; sys.exit(main(['app', '--port', '0']))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("inpainting app: error: the app needs its extra (Starlette, "
                                  "uvicorn): pip install -e \".[app]\"")
    assert "Traceback" not in done.stderr


def test_a_job_out_of_memory_says_so_and_the_next_runs():
    gate = Gate(fail_on=1, error=MemoryError())
    gate.release.set()
    generator = InpaintGenerator(cnum=4, rng=np.random.default_rng(0))
    jobs = JobQueue(generator, fill=gate)
    try:
        image, hole = picture(16, 16), np.zeros((16, 16), bool)
        hole[4:8, 4:8] = True
        first, second = jobs.submit(image, hole), jobs.submit(image, hole)
        deadline = time.monotonic() + 30
        while jobs.status(second)["state"] not in ("done", "error"):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert jobs.status(first)["message"] == ("the model ran out of memory on this image; "
                                                 "try a smaller image or hole")
        assert jobs.status(second)["state"] == "done"
    finally:
        jobs.close()


def smooth_picture(height, width, seed=0):
    """A picture that PNG compresses well (a large one stays under the upload limit)."""
    y, x = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(seed).integers(0, 8, (height, width, 3))
    base = np.stack([x * 200 // width, y * 200 // height, (x + y) * 100 // (width + height)], -1)
    return (base + noise).astype(np.uint8)


def test_a_large_image_is_filled_on_a_crop_around_the_hole():
    """1200x900 (above the random generator's working size of 256) with a 20x30 hole: the
    app inpaints the 256x256 window centred on the hole, exactly as ``inference.inpaint``
    on that crop, and keeps every other pixel; the attention offsets are on the full image's
    1/8 grid, zero outside the window, and point from the hole into the window."""
    from inpainting.data.imageio import hwc_uint8_to_chw, to_uint8
    from inpainting.model.inference import inpaint

    generator = InpaintGenerator(cnum=4, rng=np.random.default_rng(0))
    served = Served(jobs=JobQueue(generator), limits=Limits())
    try:
        image = smooth_picture(900, 1200)
        hole = np.zeros((900, 1200), bool)
        hole[400:420, 600:630] = True
        status, answer = served.submit(png(image), mask_png(900, 1200, slice(400, 420),
                                                            slice(600, 630)))
        assert status == 202, answer
        done = served.wait(answer["id"], timeout=120)
        assert done["state"] == "done", done
        assert done["crops"] == {"done": 1, "total": 1}           # progress over the crops
        result = np.asarray(Image.open(io.BytesIO(served.request(
            done["pictures"]["result.png"])[1])))
        assert result.shape == image.shape
        assert np.array_equal(result[~hole], image[~hole])       # byte-identical outside
        # The window: side max(2 * 30, 256) centred on the hole's box, rows 282-538, cols
        # 487-743 (large_images._window_around); the model ran on that crop alone.
        top, left = (400 + 420 - 256) // 2, (600 + 630 - 256) // 2
        crop = image[top:top + 256, left:left + 256]
        crop_hole = hole[top:top + 256, left:left + 256]
        direct = inpaint(generator, hwc_uint8_to_chw(crop), crop_hole[None].astype(np.float32))
        filled = to_uint8(direct.output[0]).transpose(1, 2, 0)
        np.testing.assert_array_equal(result[hole], filled[crop_hole])
        offsets = done["offsets"]
        assert (offsets["rows"], offsets["cols"]) == (113, 150)
        dy = np.array(offsets["dy"]).reshape(113, 150)
        dx = np.array(offsets["dx"]).reshape(113, 150)
        window = np.zeros((113, 150), bool)
        window[top // 8:-(-(top + 256) // 8), left // 8:-(-(left + 256) // 8)] = True
        assert not dy[~window].any() and not dx[~window].any()
        for row in range(400 // 8, 420 // 8):
            for col in range(600 // 8, 630 // 8):
                source_y, source_x = (row + dy[row, col]) * 8, (col + dx[row, col]) * 8
                assert top - 8 <= source_y < top + 256 and left - 8 <= source_x < left + 256
    finally:
        served.close()


def test_the_pixel_limit_still_refuses_with_its_size_and_the_limit():
    limits = Limits()
    assert limits.max_pixels == 2048 * 2048
    flat = np.zeros((2048, 2048, 3), np.uint8)
    assert decode_upload(png(flat), limits).shape == (2048, 2048, 3)      # inclusive
    with pytest.raises(UploadError, match=r"^the image is 2049x2048 .*limit is 4,194,304 "
                                          r"pixels \(2048x2048\)") as refused:
        decode_upload(png(np.zeros((2048, 2049, 3), np.uint8)), limits)
    assert refused.value.status == 413


def _job_pictures(served, done):
    return {name: np.asarray(Image.open(io.BytesIO(served.request(url)[1])))
            for name, url in done["pictures"].items()}


def _expected_composite(generator, image, hole, **options):
    from inpainting.data.imageio import hwc_uint8_to_chw, to_uint8
    from inpainting.model.inference import inpaint

    direct = inpaint(generator, hwc_uint8_to_chw(image), hole[None].astype(np.float32),
                     **options)
    expected = image.copy()
    expected[hole] = to_uint8(direct.output[0]).transpose(1, 2, 0)[hole]
    return expected


def test_without_attention_is_the_knockout_probe_and_says_so(served):
    status, info = served.request("/api/info")
    assert info["without_attention"]["source"] == "probe"
    assert info["without_attention"]["label"].startswith("probe: this model with its "
                                                         "attention branch's output replaced")
    image, hole = picture(40, 48, seed=5), np.zeros((40, 48), bool)
    hole[8:30, 10:40] = True
    mask = mask_png(40, 48, slice(8, 30), slice(10, 40))
    runs = {}
    for without in (False, True):
        body = json.dumps({"image": base64.b64encode(png(image)).decode(),
                           "mask": base64.b64encode(mask).decode(),
                           "without_attention": without}).encode()
        status, answer = served.request("/api/jobs", body, "application/json")
        assert status == 202, answer
        done = served.wait(answer["id"])
        assert done["state"] == "done" and done["without_attention"] is without, done
        runs[without] = (done, _job_pictures(served, done))
    generator = served.jobs.generator
    np.testing.assert_array_equal(runs[False][1]["result.png"],
                                  _expected_composite(generator, image, hole))
    np.testing.assert_array_equal(runs[True][1]["result.png"],
                                  _expected_composite(generator, image, hole,
                                                      knockout_attention=True))
    assert (runs[True][1]["result.png"][hole] != runs[False][1]["result.png"][hole]).any()
    # The probe's branch still runs: the same offsets as with attention.
    assert runs[True][0]["offsets"] == runs[False][0]["offsets"]


def test_without_attention_uses_the_trained_ablation_when_given():
    generator = InpaintGenerator(cnum=4, rng=np.random.default_rng(0))
    ablation = InpaintGenerator(cnum=4, attention=False, rng=np.random.default_rng(7))
    served = Served(jobs=JobQueue(generator, ablation=ablation))
    try:
        assert served.request("/api/info")[1]["without_attention"]["source"] == "ablation"
        image, hole = picture(32, 40, seed=6), np.zeros((32, 40), bool)
        hole[6:20, 8:30] = True
        body = json.dumps({"image": base64.b64encode(png(image)).decode(),
                           "mask": base64.b64encode(mask_png(32, 40, slice(6, 20),
                                                             slice(8, 30))).decode(),
                           "without_attention": True}).encode()
        status, answer = served.request("/api/jobs", body, "application/json")
        assert status == 202, answer
        done = served.wait(answer["id"])
        assert done["state"] == "done", done
        assert done["offsets"] is None and set(done["pictures"]) == {"result.png",
                                                                      "coarse.png"}
        np.testing.assert_array_equal(_job_pictures(served, done)["result.png"],
                                      _expected_composite(ablation, image, hole))
    finally:
        served.close()


def test_without_attention_refusals_are_clear():
    generator = InpaintGenerator(cnum=4, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="^JobQueue: ablation must be a generator built with "
                                         "attention=False"):
        JobQueue(generator, ablation=generator)
    plain = InpaintGenerator(cnum=4, attention=False, rng=np.random.default_rng(0))
    served = Served(jobs=JobQueue(plain))
    try:
        assert served.request("/api/info")[1]["without_attention"] is None
        image, mask = png(picture(32, 32)), mask_png(32, 32, slice(8, 20), slice(4, 28))
        for value, words in ((True, "this model has no contextual attention to switch off"),
                             ("yes", "the field 'without_attention' must be true or false")):
            body = json.dumps({"image": base64.b64encode(image).decode(),
                               "mask": base64.b64encode(mask).decode(),
                               "without_attention": value}).encode()
            status, answer = served.request("/api/jobs", body, "application/json")
            assert status == 400 and answer["error"].startswith(words), answer
        # The model without attention itself runs, and has no attention map.
        done = served.wait(served.submit(image, mask)[1]["id"])
        assert done["state"] == "done" and done["offsets"] is None, done
    finally:
        served.close()


def test_cli_ablation_weights_must_be_an_attention_false_generator(tmp_path):
    from inpainting.model_io import save_generator

    with_attention = save_generator(tmp_path / "full.npz",
                                    InpaintGenerator(cnum=4, rng=np.random.default_rng(0)))
    done = run_cli("--port", "0", "--ablation-weights", str(with_attention))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"inpainting app: error: --ablation-weights: {with_attention} holds a generator with "
        "contextual attention; it must be one built and trained with attention=False "
        "(inpainting train --no-attention)")
    ablation = save_generator(tmp_path / "ablation.npz", InpaintGenerator(
        cnum=4, attention=False, rng=np.random.default_rng(0)))
    process = subprocess.Popen([sys.executable, "-m", "inpainting", "app", "--port", "0",
                                "--ablation-weights", str(ablation)], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = process.stdout.readline().split("serving on ")[1].split()[0]
        with urllib.request.urlopen(url + "api/info", timeout=30) as response:
            info = json.load(response)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert info["without_attention"]["source"] == "ablation"
    assert info["without_attention"]["label"].endswith(f"{ablation} (cnum 4)")
