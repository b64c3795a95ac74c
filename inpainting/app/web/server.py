"""The app's web server: a small Starlette application served by uvicorn.

Routes (all answers are built in memory; no path a client sends is ever opened):

    GET  /                       the page (static/index.html, with app.js and app.css)
    GET  /api/info               sample names, limits, the model in use
    GET  /api/sample?name=N      a bundled sample as PNG (only names of ``SAMPLES``)
    GET  /api/legend.png         the attention map's colour-wheel legend
    POST /api/images             image file bytes -> the decoded RGB image as PNG (or an error)
    POST /api/jobs               JSON {"image": base64 PNG, "mask": base64 PNG,
                                 "without_attention": false|true} -> {"id": ...}
    GET  /api/jobs/ID            the job's state, progress, picture URLs and offsets
    GET  /api/jobs/ID/NAME.png   result.png, coarse.png, attention.png

Every refusal is JSON ``{"error": message}`` with a 4xx/5xx status, and the page shows the
message. POST bodies must be ``application/octet-stream`` or ``application/json``, so
another web site open in the same browser cannot post to the app without the browser
asking first (and the app never says yes); the ``Host`` header must name the address served,
against DNS rebinding.
"""
from __future__ import annotations

import base64
import binascii
import json
import socket
import sys
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .images import (SAMPLES, Limits, UploadError, decode_mask, decode_upload, encode_png,
                     legend_png, sample_png, size_text)
from .jobs import JobQueue

__all__ = ["create_app", "serve", "LOOPBACK_HOSTS"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
_STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
           "app.css": "text/css; charset=utf-8"}
#: The page may load only what this server sends: no fonts, scripts or images from elsewhere.
_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; "
                                       "connect-src 'self'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def _error(message, status):
    return JSONResponse({"error": message}, status_code=status)


async def _body(request, limit, content_type):
    """The request body, refused past ``limit`` bytes or with another content type."""
    sent_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if sent_type != content_type:
        raise UploadError(f"send the body as {content_type}, not {sent_type or 'nothing'}",
                          status=415)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise UploadError(f"the request is {size_text(int(declared))}; the limit is "
                          f"{size_text(limit)}", status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise UploadError(f"the request is over the limit of {size_text(limit)}",
                              status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def _base64_field(payload, name):
    value = payload.get(name) if isinstance(payload, dict) else None
    if not isinstance(value, str):
        raise UploadError(f"the request needs a field {name!r} holding a base64 PNG")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise UploadError(f"the field {name!r} is not valid base64") from None


def create_app(generator, *, limits=Limits(), jobs=None, allowed_hosts=None, model_name="",
               ablation=None, ablation_name=""):
    """The Starlette application. ``jobs``: a ``JobQueue`` (default: a new one for
    ``generator`` and ``ablation``, an attention=False generator for the comparison
    without attention; default: the knockout probe); ``allowed_hosts``: values the Host
    header may name (None: any)."""
    jobs = jobs or JobQueue(generator, ablation=ablation)
    without = jobs.without_attention
    if without is not None and without["source"] == "ablation" and ablation_name:
        without = {**without, "label": f"{without['label']}: {ablation_name}"}
    static = {name: resources.files(__package__).joinpath("static", name).read_bytes()
              for name in _STATIC}
    legend = legend_png()
    # A JSON body holds the image and the mask in base64 (4 bytes per 3).
    jobs_limit = 2 * (limits.max_upload_bytes * 4 // 3 + 4) + 1024

    async def page(request):
        name = request.path_params.get("name", "index.html")
        if name not in static:
            return _error(f"no such file: {name}", 404)
        return Response(static[name], media_type=_STATIC[name])

    async def info(request):
        return JSONResponse({"samples": list(SAMPLES), "model": model_name,
                             "without_attention": without,
                             "limits": {"max_upload_bytes": limits.max_upload_bytes,
                                        "max_pixels": limits.max_pixels,
                                        "min_side": limits.min_side,
                                        "text": limits.describe()}})

    async def sample(request):
        name = request.query_params.get("name", "")
        if name not in SAMPLES:
            return _error(f"no sample called {name!r}; the samples are {', '.join(SAMPLES)}",
                          404)
        return Response(await run_in_threadpool(sample_png, name), media_type="image/png")

    async def legend_picture(request):
        return Response(legend, media_type="image/png")

    async def upload(request):
        data = await _body(request, limits.max_upload_bytes, "application/octet-stream")
        pixels = await run_in_threadpool(decode_upload, data, limits)
        return Response(await run_in_threadpool(encode_png, pixels), media_type="image/png")

    async def submit(request):
        body = await _body(request, jobs_limit, "application/json")
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise UploadError("the request body is not valid JSON") from None
        image_bytes = _base64_field(payload, "image")
        mask_bytes = _base64_field(payload, "mask")
        without_attention = payload.get("without_attention", False)
        if not isinstance(without_attention, bool):
            raise UploadError("the field 'without_attention' must be true or false, got "
                              f"{json.dumps(without_attention)[:40]}")
        image = await run_in_threadpool(decode_upload, image_bytes, limits)
        hole = await run_in_threadpool(decode_mask, mask_bytes, image.shape[:2], limits)
        return JSONResponse({"id": jobs.submit(image, hole, without_attention)},
                            status_code=202)

    async def job_status(request):
        status = jobs.status(request.path_params["job"])
        if status is None:
            return _error("no such job (finished jobs are forgotten after a while: run again)",
                          404)
        return JSONResponse(status)

    async def job_picture(request):
        data = jobs.picture(request.path_params["job"], request.path_params["name"])
        if data is None:
            return _error("no such picture (is the job finished?)", 404)
        return Response(data, media_type="image/png")

    async def refused(request, error):
        return _error(str(error), error.status)

    async def failed(request, error):
        return _error(f"the server failed: {type(error).__name__}: {error}", 500)

    routes = [Route("/", page), Route("/static/{name}", page), Route("/api/info", info),
              Route("/api/sample", sample), Route("/api/legend.png", legend_picture),
              Route("/api/images", upload, methods=["POST"]),
              Route("/api/jobs", submit, methods=["POST"]),
              Route("/api/jobs/{job}", job_status),
              Route("/api/jobs/{job}/{name}", job_picture)]
    middleware = [] if allowed_hosts is None else \
        [Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))]
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={UploadError: refused, Exception: failed})
    app.state.jobs = jobs
    return _with_headers(app)


def _with_headers(app):
    """Wrap an ASGI app so that every HTTP response carries ``_HEADERS``."""
    extra = [(key.lower().encode(), value.encode()) for key, value in _HEADERS.items()]

    async def wrapped(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)
        return await app(scope, receive, send_with_headers)

    wrapped.state = app.state
    return wrapped


def serve(generator, host="127.0.0.1", port=7860, *, limits=Limits(), model_name="",
          ablation=None, ablation_name="", out=sys.stdout):
    """Serve the app until Ctrl-C. Binding to anything but 127.0.0.1/localhost prints a
    warning: the app has no login, so anyone who reaches the port can use it."""
    import uvicorn

    if host not in LOOPBACK_HOSTS:
        print(f"warning: serving on {host}, not 127.0.0.1: anyone who can reach this machine "
              f"on the port can use the app (it has no login); stop it with Ctrl-C when done",
              file=sys.stderr, flush=True)
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(64)             # connections wait from here on, so the printed URL works
    except OSError as error:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    bound_port = sock.getsockname()[1]
    allowed = LOOPBACK_HOSTS if host in LOOPBACK_HOSTS else None
    app = create_app(generator, limits=limits, allowed_hosts=allowed, model_name=model_name,
                     ablation=ablation, ablation_name=ablation_name)
    shown = f"[{host}]" if ":" in host else host
    print(f"inpainting app: serving on http://{shown}:{bound_port}/ (Ctrl-C stops it)",
          file=out, flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=2))
    try:
        server.run(sockets=[sock])
    finally:
        app.state.jobs.close(wait=False)     # a daemon thread: a running job ends with us
