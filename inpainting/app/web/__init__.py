"""``inpainting app``: a local web page to brush a hole, fill it and see how it was filled.

Open an image (an upload or a bundled sample), brush over what to remove, run the model, and
see the result, the coarse result and the attention map; hovering over a filled pixel shows
where contextual attention copied it from. The page and its script are files in ``static/``
served by this package; nothing is loaded from the network.

* ``images.py``: upload decoding and limits, samples, the uint8 composite;
* ``jobs.py``: the one-at-a-time work queue and ``fill_hole``, the app's one model call;
* ``server.py``: the Starlette routes and ``serve`` (uvicorn).

Needs the ``app`` extra (``pip install -e ".[app]"``: Starlette and uvicorn); importing this
package does not, so the core install stays small. See docs/app.md.
"""
from __future__ import annotations

__all__ = ["create_app", "serve"]


def __getattr__(name):
    if name in __all__:
        try:
            from . import server
        except ImportError as error:
            raise ImportError(f"inpainting app needs Starlette and uvicorn ({error}): "
                              "pip install -e \".[app]\"") from None
        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
