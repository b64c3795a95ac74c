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
                        help="keep glibc's malloc settings (default: nnlite.memory.reuse_freed_memory)")
    args = parser.parse_args()
    from nnlite.memory import reuse_freed_memory

    reused = not args.malloc_defaults and reuse_freed_memory()
    print(f"allocator: {'freed memory reused (nnlite.memory)' if reused else 'glibc defaults'}; "
          f"nnlite threads: {nnlite.get_num_threads()}")

    from skimage import data
    from skimage.transform import resize

    from inpainting.attention import chunk_size_for_memory
    from inpainting.inference import inpaint
    from inpainting.masks import centered_bbox_mask
    from inpainting.networks import InpaintGenerator

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


if __name__ == "__main__":
    main()
