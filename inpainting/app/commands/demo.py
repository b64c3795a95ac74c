"""``inpainting demo``: the README's main job with bundled defaults, a periodic texture and a
held-out photo inpainted and the teaching figure saved."""
from __future__ import annotations

from .common import add_common_options, load_weights


def add_parser(commands):
    """Add ``demo`` and its options to ``commands`` (argparse's subparsers)."""
    demo = commands.add_parser("demo", help="inpaint a periodic texture and a held-out photo "
                               "and save a figure of where the hole copies from")
    add_common_options(demo)
    demo.add_argument("--out", default="demo.png", help="figure path (default: %(default)s)")
    demo.add_argument("--image", default="astronaut",
                      help="held-out photo: astronaut or coffee (default: %(default)s)")
    demo.add_argument("--texture", help="periodic texture of the evaluation suite "
                      "(default: dots-square-16)")
    demo.add_argument("--size", type=int, help="image size (default: the model's training size)")
    demo.add_argument("--no-probe", dest="probe", action="store_false",
                      help="leave out the probe column (the fill with the attention branch's "
                      "features zeroed before the decoder; default: shown)")
    demo.set_defaults(run=cmd_demo)


def cmd_demo(args):
    """Inpaint a periodic texture and a held-out photo with the shipped model (or --weights)
    and save the teaching figure: where hole cells copy from (inpainting/app/demo_figure.py)."""
    from ...data.datasets import DEMO_HELDOUT_PHOTOS
    from ..demo_figure import DEMO_TEXTURE, attention_sources, demo_rows, exact_sources, \
        save_demo_figure
    from ...data.textures import TEXTURE_SUITE
    from ...evaluation.metrics import evaluate_pair, to_unit

    textures = [name for name, _, _ in TEXTURE_SUITE]
    args.texture = args.texture or DEMO_TEXTURE
    if args.image not in DEMO_HELDOUT_PHOTOS:
        raise ValueError(f"--image must be one of the held-out photos {', '.join(DEMO_HELDOUT_PHOTOS)}"
                         f", got {args.image!r} (for your own picture use `inpainting inpaint`)")
    if args.texture not in textures:
        raise ValueError(f"--texture must be one of the suite's textures {', '.join(textures)}, "
                         f"got {args.texture!r}")
    if args.size is not None:
        _check_size("--size", args.size)
    generator = load_weights(args)
    args.size = args.size or int(getattr(generator, "meta", {}).get("image_size", 256))
    rows = demo_rows(generator, args.size, args.texture, args.image, args.probe)
    path, _ = save_demo_figure(args.out, rows)
    for row in rows:
        scores = evaluate_pair(to_unit(row.output), to_unit(row.image), row.mask[None])
        print(f"inpainted {row.label} ({args.size}x{args.size}, centred {args.size // 2}x"
              f"{args.size // 2} hole): L1 in hole {scores['l1_hole']:.2f}%, "
              f"PSNR in hole {scores['psnr_hole']:.2f} dB")
        if row.attention is not None:
            pairs = attention_sources(row.attention, row.mask, count=row.attention[..., 0, 0].size)
            print(f"  attention peaks on a block identical to the hidden one for "
                  f"{exact_sources(row.image, pairs)} of {len(pairs)} hole cells")
    print(f"figure written to {path}")


def _check_size(flag, size):
    if size < 16 or size % 8:
        raise ValueError(f"{flag} must be a multiple of 8 and at least 16, got {size}")
