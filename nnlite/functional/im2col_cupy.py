"""im2col / col2im as single CUDA kernels (CuPy), each with a NumPy twin.

On the GPU the KH*KW slice copies of ``im2col.py`` would be KH*KW kernel
launches plus a padded copy; here each direction is ONE ``cupy.RawKernel``
with one thread per output element, built once per dtype and cached
(``_kernel``). The GEMM that follows runs on cuBLAS through ``cupy.matmul``, on
the same code path as NumPy (``conv_arrays.py``).

Index arithmetic is 64-bit throughout (``long long`` element indices in a
grid-stride loop), so arrays above 2**31 elements are handled; the grid size is
capped at ``MAX_BLOCKS`` and the loop covers the rest.

Twins: ``im2col_twin`` / ``col2im_twin`` compute the very same formulas with
NumPy on int64 index arrays; the tests compare each kernel with its twin (on a
GPU) and each twin with the slice-copy ``im2col`` / ``col2im`` (always).

Notation of ``conv_utils``; cols has shape (C, KH, KW, N, OH, OW)::

    im2col: cols[c, i, j, n, oh, ow] = x[n, c, oh*SH - PT + i*DH, ow*SW - PL + j*DW]  (0 outside)
    col2im: x[n, c, r, s] = sum over (i, j) with r + PT - i*DH = oh*SH, 0 <= oh < OH
                                          and s + PL - j*DW = ow*SW, 0 <= ow < OW
                            of cols[c, i, j, n, oh, ow]

col2im gathers (each input pixel sums its own taps), so it needs no atomics and
is deterministic.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from .conv_utils import ConvGeometry

__all__ = ["im2col_gpu", "col2im_gpu", "im2col_twin", "col2im_twin", "im2col_source",
           "KERNEL_SOURCE", "kernel_source",
           "MAX_BLOCKS", "THREADS"]

THREADS = 256
MAX_BLOCKS = 65535

KERNEL_SOURCE = r"""
extern "C" __global__ void im2col_T(
        const T* x, T* cols, long long total,
        long long N, long long C, long long H, long long W,
        long long KH, long long KW, long long SH, long long SW,
        long long PT, long long PL, long long DH, long long DW,
        long long OH, long long OW) {
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
         e += (long long)blockDim.x * gridDim.x) {
        long long ow = e % OW, t = e / OW;
        long long oh = t % OH; t /= OH;
        long long n = t % N;   t /= N;
        long long j = t % KW;  t /= KW;
        long long i = t % KH;
        long long c = t / KH;
        long long r = oh * SH - PT + i * DH;
        long long s = ow * SW - PL + j * DW;
        cols[e] = (r >= 0 && r < H && s >= 0 && s < W) ? x[((n * C + c) * H + r) * W + s] : (T)0;
    }
}

extern "C" __global__ void col2im_T(
        const T* cols, T* x, long long total,
        long long N, long long C, long long H, long long W,
        long long KH, long long KW, long long SH, long long SW,
        long long PT, long long PL, long long DH, long long DW,
        long long OH, long long OW) {
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
         e += (long long)blockDim.x * gridDim.x) {
        long long s = e % W, t = e / W;
        long long r = t % H; t /= H;
        long long c = t % C;
        long long n = t / C;
        T sum = 0;
        for (long long i = 0; i < KH; ++i) {
            long long rr = r + PT - i * DH;
            if (rr < 0 || rr % SH != 0 || rr / SH >= OH) continue;
            long long oh = rr / SH;
            for (long long j = 0; j < KW; ++j) {
                long long ss = s + PL - j * DW;
                if (ss < 0 || ss % SW != 0 || ss / SW >= OW) continue;
                long long ow = ss / SW;
                sum += cols[((((c * KH + i) * KW + j) * N + n) * OH + oh) * OW + ow];
            }
        }
        x[e] = sum;
    }
}
"""

_KERNELS: dict = {}


def _kernel(name, dtype):
    """The compiled kernel ``name`` ("im2col" or "col2im") for ``dtype``, built once."""
    import cupy

    ctype = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}.get(np.dtype(dtype))
    if ctype is None:
        raise TypeError(f"{name}_gpu: only float32 and float64 are supported, got {dtype}")
    key = (name, ctype)
    if key not in _KERNELS:
        _KERNELS[key] = cupy.RawKernel(kernel_source(ctype), f"{name}_{ctype}")
    return _KERNELS[key]


def kernel_source(ctype):
    """``KERNEL_SOURCE`` with the element type ``T`` spelled out ("float" or "double")."""
    return KERNEL_SOURCE.replace("_T(", f"_{ctype}(").replace("T* ", f"{ctype}* ") \
        .replace("(T)0", f"({ctype})0").replace("T sum", f"{ctype} sum")


def _launch(name, source, out, g: ConvGeometry, n, c):
    import cupy

    total = out.size
    blocks = max(1, min(MAX_BLOCKS, -(-total // THREADS)))
    args = [cupy.ascontiguousarray(source), out, total, n, c, g.H, g.W, g.KH, g.KW,
            g.SH, g.SW, g.PT, g.PL, g.DH, g.DW, g.OH, g.OW]
    _kernel(name, out.dtype)((blocks,), (THREADS,),
                             tuple(a if isinstance(a, cupy.ndarray) else np.int64(a) for a in args))
    return out


def im2col_gpu(x, g: ConvGeometry):
    """CuPy (N, C, H, W) -> columns (C, KH, KW, N, OH, OW) in one kernel."""
    xp = get_array_module(x)
    n, c = x.shape[:2]
    cols = xp.empty((c, g.KH, g.KW, n, g.OH, g.OW), dtype=x.dtype)
    return _launch("im2col", x, cols, g, n, c)


def col2im_gpu(cols, g: ConvGeometry):
    """CuPy columns (C, KH, KW, N, OH, OW) -> (N, C, H, W), summing the taps, in one kernel."""
    xp = get_array_module(cols)
    c, n = cols.shape[0], cols.shape[3]
    x = xp.empty((n, c, g.H, g.W), dtype=cols.dtype)
    return _launch("col2im", cols, x, g, n, c)


def im2col_source(e, n, c, g: ConvGeometry):
    """For column elements ``e`` (int64): the flat index into x each reads, and whether inside.

    Exactly the kernel's arithmetic; valid for any index below 2**63.
    """
    e = np.asarray(e, dtype=np.int64)
    ow, t = e % g.OW, e // g.OW
    oh, t = t % g.OH, t // g.OH
    nn, t = t % n, t // n
    j, t = t % g.KW, t // g.KW
    i, cc = t % g.KH, t // g.KH
    r = oh * g.SH - g.PT + i * g.DH
    s = ow * g.SW - g.PL + j * g.DW
    inside = (r >= 0) & (r < g.H) & (s >= 0) & (s < g.W)
    return ((nn * c + cc) * g.H + r) * g.W + s, inside


def im2col_twin(x, g: ConvGeometry):
    """NumPy twin of the im2col kernel: the same index formula, one element per int64 index."""
    n, c = x.shape[:2]
    shape = (c, g.KH, g.KW, n, g.OH, g.OW)
    source, inside = im2col_source(np.arange(int(np.prod(shape)), dtype=np.int64), n, c, g)
    values = np.ascontiguousarray(x).reshape(-1)[np.where(inside, source, 0)]
    return np.where(inside, values, 0).astype(x.dtype).reshape(shape)


def col2im_twin(cols, g: ConvGeometry):
    """NumPy twin of the col2im kernel: each pixel gathers the taps that read it."""
    c, n = cols.shape[0], cols.shape[3]
    e = np.arange(n * c * g.H * g.W, dtype=np.int64)
    s, t = e % g.W, e // g.W
    r, t = t % g.H, t // g.H
    cc, nn = t % c, t // c
    flat_cols = np.ascontiguousarray(cols).reshape(-1)
    total = np.zeros(e.shape, dtype=cols.dtype)
    for i in range(g.KH):
        rr = r + g.PT - i * g.DH
        row_ok = (rr >= 0) & (rr % g.SH == 0) & (rr // g.SH < g.OH)
        oh = np.where(row_ok, rr // g.SH, 0)
        for j in range(g.KW):
            ss = s + g.PL - j * g.DW
            ok = row_ok & (ss >= 0) & (ss % g.SW == 0) & (ss // g.SW < g.OW)
            ow = np.where(ok, ss // g.SW, 0)
            index = ((((cc * g.KH + i) * g.KW + j) * n + nn) * g.OH + oh) * g.OW + ow
            total += np.where(ok, flat_cols[index], 0)
    return total.reshape(n, c, g.H, g.W)
