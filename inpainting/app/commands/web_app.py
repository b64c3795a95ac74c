"""``inpainting app``: a local web page, brush a hole and see the fill (inpainting/app/web/)."""
from __future__ import annotations

from .common import add_common_options, load_weights


def add_parser(commands):
    """Add ``app`` and its options to ``commands`` (argparse's subparsers)."""
    app = commands.add_parser("app", help="local web page: brush a hole, see the fill and "
                              "where attention copied from")
    add_common_options(app)
    app.add_argument("--host", default="127.0.0.1", help="address to serve on (default "
                     "127.0.0.1: this machine only; another address warns)")
    app.add_argument("--port", type=int, default=7860, help="port (default 7860; 0: any free)")
    app.add_argument("--ablation-weights", help="a generator trained without contextual "
                     "attention (attention=False) for the page's 'without attention' toggle "
                     "(default: a probe that zeroes the attention branch's output)")
    app.set_defaults(run=cmd_app)


def cmd_app(args):
    """Serve the local web page (inpainting/app/web/, docs/app.md) until Ctrl-C."""
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be between 0 and 65535 (0: any free port), got {args.port}")
    try:
        from ..web.server import serve
    except ImportError as error:
        raise ValueError(f"the app needs its extra (Starlette, uvicorn): pip install -e "
                         f"\".[app]\" ({error})") from None
    generator = load_weights(args)
    name = f"{args.weights or 'the shipped demo model'} (cnum {generator.cnum}, {args.device})"
    ablation = None
    if args.ablation_weights:
        from ...weights.model_io import load_generator

        ablation = load_generator(args.ablation_weights, device=args.device)
        if ablation.attention:
            raise ValueError(f"--ablation-weights: {args.ablation_weights} holds a generator "
                             "with contextual attention; it must be one built and trained with "
                             "attention=False (inpainting train --no-attention)")
    try:
        serve(generator, args.host, args.port, model_name=name, ablation=ablation,
              ablation_name=f"{args.ablation_weights} (cnum {ablation.cnum})" if ablation
              else "")
    except KeyboardInterrupt:
        return 0
