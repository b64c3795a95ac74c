"""The app's work queue: one worker thread runs the model, one request at a time.

The web server answers many requests at once, but the generator is one object (and a CPU run
uses every core), so ``JobQueue.submit`` only queues a job and returns at once; the worker
thread takes jobs in order. A page polls ``JobQueue.status`` for its job's place in the queue,
the time it has run and either the crops done so far (a large image) or the time the last
whole-image run suggests it needs (``expected``), then fetches the pictures. When
``max_waiting`` jobs are waiting, ``submit`` refuses with a "busy" message (HTTP 503) instead
of piling up work; only the newest ``keep`` finished jobs are kept.

A job may ask for the fill **without attention**: with an ablation generator (one built and
trained with ``attention=False``, ``JobQueue(..., ablation=G)``) that generator runs; else
the main generator runs with ``knockout_attention=True``, a probe (the attention branch runs,
the decoder gets zeros in its place; docs/contextual_attention.md). ``without_attention``
says which, in words for the page.

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


def fill_hole(generator, image, hole, *, knockout_attention=False, on_window=None):
    """Fill ``hole`` of ``image`` with ``generator``: the app's one call into the model.

    Args: ``image`` (H, W, 3) uint8 RGB, ``hole`` (H, W) bool (True = fill);
    ``knockout_attention``: the probe (``inference.inpaint``); ``on_window(done, total)``:
    progress over the crops of a large image.
    Returns an ``inpainting.model.inference.InpaintResult`` of host arrays (batch of one, output
    size (H, W)), from ``inpainting.app.large_images.inpaint_large``: an image no larger than
    the generator's working size (its training size) runs whole, exactly as
    ``inference.inpaint``; a larger one is inpainted on crops around the hole regions, each
    at the working scale, and put back (``offsets`` then on the full image's 1/8 grid in
    full-image eighths, zero outside the crops).
    """
    from ...data.imageio import hwc_uint8_to_chw
    from ..large_images import inpaint_large

    mask = hole[None].astype(np.float32)
    return inpaint_large(generator, hwc_uint8_to_chw(image), mask,
                         attention_memory=ATTENTION_MEMORY,
                         knockout_attention=knockout_attention, on_window=on_window)


def render(image, hole, result, attention=True):
    """Pictures and offsets of a finished job: the composite (uint8, byte-identical outside the
    hole), the coarse result x1 (whole frame), and, when the generator has ``attention``,
    the colour-coded attention map and the offsets (dy, dx) on the 1/8 grid for the page's
    hover display (else no map and offsets None)."""
    from ...data.imageio import to_uint8
    from ...model.attention_colours import flow_to_image

    height, width = hole.shape
    filled = to_uint8(result.output[0]).transpose(1, 2, 0)
    pictures = {"result.png": encode_png(composite(image, filled, hole)),
                "coarse.png": encode_png(to_uint8(result.coarse[0]).transpose(1, 2, 0))}
    if not attention or result.offsets is None:
        return pictures, None
    offsets = np.asarray(result.offsets[0])
    # Each 1/8-grid entry drawn as the 8x8 block it stands for, so that the page's block
    # outlines line up with the colours (the CLI's --attention uses the release's
    # align-corners resize instead, which shifts blocks by up to half a block).
    colours = flow_to_image(offsets[None])[0]
    blocks = colours[np.arange(height) // 8][:, np.arange(width) // 8]
    pictures["attention.png"] = encode_png(blocks)
    return pictures, {"rows": int(offsets.shape[1]), "cols": int(offsets.shape[2]), "cell": 8,
                      "dy": offsets[0].ravel().tolist(), "dx": offsets[1].ravel().tolist()}


class _Job:
    def __init__(self, image, hole, without_attention):
        self.id = secrets.token_hex(8)
        self.image, self.hole = image, hole
        self.without_attention = without_attention
        self.crops = None                       # [done, total] on the crop path
        self.state = "queued"
        self.started = self.finished = None
        self.message = None
        self.pictures, self.offsets = {}, None


class JobQueue:
    """Runs ``fill(generator, image, hole, **options)`` jobs in order on one worker thread.

    ``fill`` defaults to ``fill_hole`` (options: ``knockout_attention``, ``on_window``);
    ``ablation``: an ``attention=False`` generator for the jobs without attention (default:
    the probe on ``generator``); ``max_waiting`` bounds the jobs queued behind the running
    one; ``keep`` bounds the jobs remembered (finished ones are dropped oldest first).
    """

    def __init__(self, generator, *, fill=fill_hole, ablation=None, max_waiting=8, keep=16):
        if ablation is not None and ablation.attention:
            raise ValueError("JobQueue: ablation must be a generator built with "
                             "attention=False (the model trained without contextual "
                             "attention), got one with attention")
        self.generator, self.fill, self.ablation = generator, fill, ablation
        self.max_waiting, self.keep = max_waiting, keep
        self.seconds_per_pixel = None           # from the last finished run
        self._jobs = OrderedDict()
        self._waiting = []                      # ids in queue order
        self._lock = threading.Lock()
        self._queue = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="inpainting-app-worker",
                                        daemon=True)
        self._worker.start()

    @property
    def without_attention(self):
        """What a job without attention shows, for the page: ``{"source": "ablation" or
        "probe", "label": words}``, or None when there is nothing to compare with (the main
        generator has no attention branch and no ablation was given)."""
        if self.ablation is not None:
            return {"source": "ablation",
                    "label": "trained ablation: a generator trained without contextual "
                             "attention (attention=False)"}
        if self.generator.attention:
            return {"source": "probe",
                    "label": "probe: this model with its attention branch's output replaced "
                             "by zeros (not retrained; the paper's ablation is a model "
                             "trained without the branch)"}
        return None

    def submit(self, image, hole, without_attention=False):
        """Queue a job; returns its id. ``UploadError`` (503) when the queue is full, (400)
        when ``without_attention`` is asked for and there is nothing to compare with."""
        if without_attention and self.without_attention is None:
            raise UploadError("this model has no contextual attention to switch off, and "
                              "the app was started without --ablation-weights")
        job = _Job(image, hole, bool(without_attention))
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
            status = {"id": job.id, "state": job.state, "width": width, "height": height,
                      "without_attention": job.without_attention}
            if job.crops is not None:
                status["crops"] = {"done": job.crops[0], "total": job.crops[1]}
            if job.state == "queued":
                status["ahead"] = self._waiting.index(job.id) + \
                    sum(1 for other in self._jobs.values() if other.state == "running")
            if job.started is not None:
                status["elapsed"] = round((job.finished or time.monotonic()) - job.started, 2)
            if self.seconds_per_pixel is not None and job.crops is None:
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
                generator, options = self.generator, {}
                if job.without_attention and self.ablation is not None:
                    generator = self.ablation
                elif job.without_attention:
                    options["knockout_attention"] = True
                options["on_window"] = lambda done, total, job=job: self._crops(job, done, total)
                result = self.fill(generator, job.image, job.hole, **options)
                pictures, offsets = render(job.image, job.hole, result, generator.attention)
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
                if state == "done" and job.crops is None:
                    self.seconds_per_pixel = (job.finished - job.started) / job.hole.size

    def _crops(self, job, done, total):
        with self._lock:
            job.crops = [done, total]

    def close(self, wait=True):
        """Stop the worker after the jobs already queued (``wait``: until it has stopped)."""
        self._queue.put(None)
        if wait:
            self._worker.join()


def _describe(error):
    if isinstance(error, MemoryError):
        return "the model ran out of memory on this image; try a smaller image or hole"
    return f"the model failed: {type(error).__name__}: {error}"
