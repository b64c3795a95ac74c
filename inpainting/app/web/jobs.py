"""The app's work queue: one worker thread runs the model, one request at a time.

The web server answers many requests at once, but the generator is one object (and a CPU run
uses every core), so ``JobQueue.submit`` only queues a job and returns at once; the worker
thread takes jobs in order. A page polls ``JobQueue.status`` for its job's place in the queue,
the time it has run and the time the last run suggests it needs (``expected``), then fetches
the pictures. When ``max_waiting`` jobs are waiting, ``submit`` refuses with a "busy" message
(HTTP 503) instead of piling up work; only the newest ``keep`` finished jobs are kept.

``fill_hole`` is the single place the app calls the model.
"""
from __future__ import annotations

import queue
import secrets
import threading
import time
from collections import OrderedDict

import numpy as np

from .images import UploadError, composite, encode_png

__all__ = ["JobQueue", "fill_hole", "ATTENTION_MEMORY"]

#: Byte budget for contextual attention's scores in the app (the result is the same as
#: without a budget; see ``inpainting.inference.inpaint``).
ATTENTION_MEMORY = 2**30


def fill_hole(generator, image, hole):
    """Fill ``hole`` of ``image`` with ``generator``: the app's one call into the model.

    Args: ``image`` (H, W, 3) uint8 RGB, ``hole`` (H, W) bool (True = fill).
    Returns an ``inpainting.inference.InpaintResult`` on the host (batch of one, output
    size (H, W)). Today this is ``inpainting.inference.inpaint`` on the whole image, so the
    app refuses images above ``Limits.max_pixels``; a crop-around-the-hole path for large
    images goes here.
    """
    from nnlite.backend import to_device

    from ...data.imageio import hwc_uint8_to_chw
    from ...model.inference import InpaintResult, inpaint

    device = generator.conv1.weight.device
    mask = hole[None].astype(np.float32)
    result = inpaint(generator, to_device(hwc_uint8_to_chw(image), device),
                     to_device(mask, device), attention_memory=ATTENTION_MEMORY)
    return InpaintResult(*(to_device(array, "cpu") for array in result))


def render(image, hole, result):
    """Pictures and offsets of a finished job: the composite (uint8, byte-identical outside the
    hole), the coarse result x1 (whole frame), the colour-coded attention map, and the
    offsets (dy, dx) on the 1/8 grid for the page's hover display."""
    from ...model.attention_colours import flow_to_image
    from ...data.imageio import to_uint8

    height, width = hole.shape
    filled = to_uint8(result.output[0]).transpose(1, 2, 0)
    offsets = np.asarray(result.offsets[0])
    # Each 1/8-grid entry drawn as the 8x8 block it stands for, so that the page's block
    # outlines line up with the colours (the CLI's --attention uses the release's
    # align-corners resize instead, which shifts blocks by up to half a block).
    colours = flow_to_image(offsets[None])[0]
    blocks = colours[np.arange(height) // 8][:, np.arange(width) // 8]
    return {
        "result.png": encode_png(composite(image, filled, hole)),
        "coarse.png": encode_png(to_uint8(result.coarse[0]).transpose(1, 2, 0)),
        "attention.png": encode_png(blocks),
    }, {"rows": int(offsets.shape[1]), "cols": int(offsets.shape[2]), "cell": 8,
        "dy": offsets[0].ravel().tolist(), "dx": offsets[1].ravel().tolist()}


class _Job:
    def __init__(self, image, hole):
        self.id = secrets.token_hex(8)
        self.image, self.hole = image, hole
        self.state = "queued"
        self.started = self.finished = None
        self.message = None
        self.pictures, self.offsets = {}, None


class JobQueue:
    """Runs ``fill(generator, image, hole)`` jobs in order on one worker thread.

    ``fill`` defaults to ``fill_hole``; ``max_waiting`` bounds the jobs queued behind the
    running one; ``keep`` bounds the jobs remembered (finished ones are dropped oldest first).
    """

    def __init__(self, generator, *, fill=fill_hole, max_waiting=8, keep=16):
        self.generator, self.fill = generator, fill
        self.max_waiting, self.keep = max_waiting, keep
        self.seconds_per_pixel = None           # from the last finished run
        self._jobs = OrderedDict()
        self._waiting = []                      # ids in queue order
        self._lock = threading.Lock()
        self._queue = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="inpainting-app-worker",
                                        daemon=True)
        self._worker.start()

    def submit(self, image, hole):
        """Queue a job; returns its id. ``UploadError`` (503) when the queue is full."""
        job = _Job(image, hole)
        with self._lock:
            if len(self._waiting) >= self.max_waiting:
                raise UploadError(f"the app is busy: {len(self._waiting)} requests are already "
                                  "waiting; try again when one has finished", status=503)
            self._jobs[job.id] = job
            self._waiting.append(job.id)
            self._queue.put(job)                # in the same order as _waiting
            self._forget_old()
        return job.id

    def _forget_old(self):
        finished = [key for key, job in self._jobs.items() if job.state in ("done", "error")]
        for key in finished[:max(0, len(self._jobs) - self.keep)]:
            del self._jobs[key]

    def status(self, job_id):
        """A JSON-able dict for the page, or None for an unknown (or forgotten) id."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            height, width = job.hole.shape
            status = {"id": job.id, "state": job.state, "width": width, "height": height}
            if job.state == "queued":
                status["ahead"] = self._waiting.index(job.id) + \
                    sum(1 for other in self._jobs.values() if other.state == "running")
            if job.started is not None:
                status["elapsed"] = round((job.finished or time.monotonic()) - job.started, 2)
            if self.seconds_per_pixel is not None:
                status["expected"] = round(self.seconds_per_pixel * height * width, 2)
            if job.state == "error":
                status["message"] = job.message
            if job.state == "done":
                status["pictures"] = {name: f"/api/jobs/{job.id}/{name}" for name in job.pictures}
                status["offsets"] = job.offsets
            return status

    def picture(self, job_id, name):
        """PNG bytes of a finished job's picture, or None."""
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.pictures.get(name)

    def _work(self):
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                self._waiting.remove(job.id)
                job.state, job.started = "running", time.monotonic()
            try:
                result = self.fill(self.generator, job.image, job.hole)
                pictures, offsets = render(job.image, job.hole, result)
            except Exception as error:          # noqa: BLE001 - shown on the page, worker lives
                state, message = "error", _describe(error)
                pictures, offsets = {}, None
            else:
                state, message = "done", None
            with self._lock:
                job.finished = time.monotonic()
                job.pictures, job.offsets, job.message = pictures, offsets, message
                job.image = None                # the pictures are all that is needed now
                job.state = state
                if state == "done":
                    self.seconds_per_pixel = (job.finished - job.started) / job.hole.size

    def close(self, wait=True):
        """Stop the worker after the jobs already queued (``wait``: until it has stopped)."""
        self._queue.put(None)
        if wait:
            self._worker.join()


def _describe(error):
    if isinstance(error, MemoryError):
        return "the model ran out of memory on this image; try a smaller image or hole"
    return f"the model failed: {type(error).__name__}: {error}"
