"""A large image end to end: seconds and peak memory of one inpainting with bounded attention.

    python benchmarks/large_image.py                          # 2048x2048, cnum 32, 4 GiB
    python benchmarks/large_image.py --size 1024 --attention-memory 1

Inpaints the bundled astronaut photograph resized to ``--size`` (a centred hole of half
the side) with a generator of the release's width (``--cnum 32``; random weights from a
fixed seed: time and memory do not depend on the weights) through ``inpaint(...,
attention_memory=...)``, the memory-bounded contextual attention. Prints the wall time,
the process's peak resident memory (``ru_maxrss``, everything: weights, activations,
convolution workspaces, attention chunks), and what the release's direct attention would
need for its L x L score matrix alone, for comparison. Run it alone: other processes on
the machine change the time, not the memory.

    python benchmarks/large_image.py --photo 4000x3000 --hole 300   # the default path

``--photo WxH`` measures what ``inpainting inpaint`` does by default instead: the astronaut
resized to W x H and written as a PNG, a centred ``--hole`` square, ``inpaint_image`` end to
end (read, crops around the hole at the model's working size 256, composite, write), with a
cnum 32 generator. Prints the seconds, the peak resident memory, and checks that every pixel
outside the hole is the input's.
"""
from __future__ import annotations

import argparse
import resource
import time

import nnlite  # first: sets OPENBLAS_THREAD_TIMEOUT before NumPy loads OpenBLAS
import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--cnum", type=int, default=32)
    parser.add_argument("--attention-memory", type=float, default=4.0, metavar="GIB",
                        help="budget for the attention score buffers (default 4 GiB)")
    parser.add_argument("--malloc-defaults", action="store_true",
                        help="keep glibc's malloc settings (default: nnlite.kernels.memory.reuse_freed_memory)")
    parser.add_argument("--photo", metavar="WxH",
                        help="measure inpaint_image's default (crop) path on a WxH PNG instead")
    parser.add_argument("--hole", type=int, default=300, help="--photo: side of the centred "
                        "square hole (default 300)")
    args = parser.parse_args()
    if args.photo:
        return measure_photo(args)
    from nnlite.kernels.memory import reuse_freed_memory

    reused = not args.malloc_defaults and reuse_freed_memory()
    print(f"allocator: {'freed memory reused (nnlite.kernels.memory)' if reused else 'glibc defaults'}; "
          f"nnlite threads: {nnlite.get_num_threads()}")

    from skimage import data
    from skimage.transform import resize

    from inpainting.model.attention import chunk_size_for_memory
    from inpainting.model.inference import inpaint
    from inpainting.data.masks import centered_bbox_mask
    from inpainting.model.networks import InpaintGenerator

    size = args.size
    photo = resize(data.astronaut(), (size, size), order=1, anti_aliasing=False)
    image = (photo.transpose(2, 0, 1) * 2 - 1).astype(np.float32)
    mask, _ = centered_bbox_mask(size, size // 2)
    generator = InpaintGenerator(args.cnum, rng=np.random.default_rng(0))
    budget = int(args.attention_memory * 2**30)
    features = size // 4                       # contextual attention runs at 1/4 resolution
    length = (features // 2) ** 2              # background patches L at rate 2
    chunk = chunk_size_for_memory(budget, features, features)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    result = inpaint(generator, image, mask, attention_memory=budget)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert np.isfinite(result.output).all()
    print(f"image {size}x{size}, cnum {args.cnum}, attention features {features}x{features}, "
          f"L = {length:,} patches")
    print(f"attention budget {args.attention_memory:g} GiB -> chunk_size {chunk} rows "
          f"({-(-length // chunk)} chunks)")
    print(f"inpaint: {seconds:.1f} s, peak resident memory {peak / 2**30:.2f} GiB "
          f"(before the call {before / 2**30:.2f} GiB)")
    print(f"the release's direct attention: L x L float32 scores alone = "
          f"{length * length * 4 / 2**30:.1f} GiB")


def measure_photo(args):
    """inpaint_image on a large PNG through the default crop path (see the module docstring)."""
    import tempfile
    from pathlib import Path

    from PIL import Image
    from skimage import data

    from inpainting.app.inpaint_files import inpaint_image
    from inpainting.model.networks import InpaintGenerator

    width, height = (int(side) for side in args.photo.lower().split("x"))
    folder = Path(tempfile.mkdtemp(prefix="large_image_"))
    pixels = np.asarray(Image.fromarray(data.astronaut()).resize((width, height),
                                                                 Image.Resampling.BICUBIC))
    Image.fromarray(pixels).save(folder / "photo.png")
    mask = np.zeros((height, width), np.uint8)
    top, left = (height - args.hole) // 2, (width - args.hole) // 2
    mask[top:top + args.hole, left:left + args.hole] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    generator = InpaintGenerator(args.cnum, rng=np.random.default_rng(0))
    generator.meta = {"image_size": 256}
    del pixels
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    inpaint_image(folder / "photo.png", folder / "mask.png", folder / "out.png",
                  weights=generator, progress=True)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    original = np.asarray(Image.open(folder / "photo.png"))
    result = np.asarray(Image.open(folder / "out.png"))
    outside = mask == 0
    identical = bool(np.array_equal(result[outside], original[outside]))
    changed = int(np.any(result != original, axis=2).sum())
    print(f"photo {width}x{height}, hole {args.hole}x{args.hole}, cnum {args.cnum}, working "
          f"size 256: inpaint_image {seconds:.1f} s, peak resident memory "
          f"{peak / 2**30:.2f} GiB (before the call {before / 2**30:.2f} GiB)")
    print(f"pixels outside the hole identical to the input: {identical}; pixels changed "
          f"{changed:,} (hole {args.hole * args.hole:,})")
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()


if __name__ == "__main__":
    main()
