"""im2col / col2im as single CUDA kernels (CuPy), each with a NumPy twin.

On the GPU the KH*KW slice copies of ``im2col.py`` would be KH*KW kernel
launches plus a padded copy; here each direction is ONE ``cupy.RawKernel``
with one thread per output element, built once per dtype and cached
(``_kernel``). The GEMM that follows runs on cuBLAS through ``cupy.matmul``, on
the same code path as NumPy (``conv_arrays.py``).

Index arithmetic: each kernel is built in two integer widths (``IDX`` in the source).
When every index the kernel forms fits (``index_type``: the larger array's size plus
one grid-stride step stays below 2**31) it uses 32-bit ``int``, whose divisions and
remainders are several times cheaper on a GPU than 64-bit ones; otherwise ``long long``,
so arrays above 2**31 elements are handled. The grid size is capped at ``MAX_BLOCKS``
and the grid-stride loop covers the rest.

Twins: ``im2col_twin`` / ``col2im_twin`` compute the very same formulas with
NumPy on int64 index arrays; the tests compare each kernel with its twin (on a
GPU) and each twin with the slice-copy ``im2col`` / ``col2im`` (always). On the fake
device (``nnlite.fake_device``) ``RawKernel`` runs the twins (registered below), so
the launch code, its argument list and the 32/64-bit choice run in CI without a GPU.

Notation of ``nnlite.conv_geometry``; cols has shape (C, KH, KW, N, OH, OW)::

    im2col: cols[c, i, j, n, oh, ow] = x[n, c, oh*SH - PT + i*DH, ow*SW - PL + j*DW]  (0 outside)
    col2im: x[n, c, r, s] = sum over (i, j) with r + PT - i*DH = oh*SH, 0 <= oh < OH
                                          and s + PL - j*DW = ow*SW, 0 <= ow < OW
                            of cols[c, i, j, n, oh, ow]

col2im gathers (each input pixel sums its own taps), so it needs no atomics and
is deterministic.
"""
from __future__ import annotations

import numpy as np

from types import SimpleNamespace

from .. import fake_device
from ..backend import get_array_module
from ..conv_geometry import ConvGeometry

__all__ = ["im2col_gpu", "col2im_gpu", "im2col_twin", "col2im_twin", "im2col_source",
           "KERNEL_SOURCE", "kernel_source", "index_type",
           "MAX_BLOCKS", "THREADS"]

THREADS = 256
MAX_BLOCKS = 65535

KERNEL_SOURCE = r"""
extern "C" __global__ void im2col_T(
        const T* x, T* cols, IDX total,
        IDX N, IDX C, IDX H, IDX W,
        IDX KH, IDX KW, IDX SH, IDX SW,
        IDX PT, IDX PL, IDX DH, IDX DW,
        IDX OH, IDX OW) {
    for (IDX e = blockIdx.x * (IDX)blockDim.x + threadIdx.x; e < total;
         e += (IDX)blockDim.x * gridDim.x) {
        IDX ow = e % OW, t = e / OW;
        IDX oh = t % OH; t /= OH;
        IDX n = t % N;   t /= N;
        IDX j = t % KW;  t /= KW;
        IDX i = t % KH;
        IDX c = t / KH;
        IDX r = oh * SH - PT + i * DH;
        IDX s = ow * SW - PL + j * DW;
        cols[e] = (r >= 0 && r < H && s >= 0 && s < W) ? x[((n * C + c) * H + r) * W + s] : (T)0;
    }
}

extern "C" __global__ void col2im_T(
        const T* cols, T* x, IDX total,
        IDX N, IDX C, IDX H, IDX W,
        IDX KH, IDX KW, IDX SH, IDX SW,
        IDX PT, IDX PL, IDX DH, IDX DW,
        IDX OH, IDX OW) {
    for (IDX e = blockIdx.x * (IDX)blockDim.x + threadIdx.x; e < total;
         e += (IDX)blockDim.x * gridDim.x) {
        IDX s = e % W, t = e / W;
        IDX r = t % H; t /= H;
        IDX c = t % C;
        IDX n = t / C;
        T sum = 0;
        for (IDX i = 0; i < KH; ++i) {
            IDX rr = r + PT - i * DH;
            if (rr < 0 || rr % SH != 0 || rr / SH >= OH) continue;
            IDX oh = rr / SH;
            for (IDX j = 0; j < KW; ++j) {
                IDX ss = s + PL - j * DW;
                if (ss < 0 || ss % SW != 0 || ss / SW >= OW) continue;
                IDX ow = ss / SW;
                sum += cols[((((c * KH + i) * KW + j) * N + n) * OH + oh) * OW + ow];
            }
        }
        x[e] = sum;
    }
}
"""

_KERNELS: dict = {}
INDEX_TYPES = {"int": np.int32, "long long": np.int64}


def _kernel(name, dtype, index="long long", xp=None):
    """The compiled kernel ``name`` ("im2col" or "col2im") for ``dtype`` and index type
    ``index`` ("int" or "long long"), built once per array module."""
    if xp is None:
        import cupy as xp

    ctype = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}.get(np.dtype(dtype))
    if ctype is None:
        raise TypeError(f"{name}_gpu: only float32 and float64 are supported, got {dtype}")
    key = (name, ctype, index, id(xp))
    if key not in _KERNELS:
        _KERNELS[key] = xp.RawKernel(kernel_source(ctype, index), kernel_name(name, ctype, index))
    return _KERNELS[key]


def kernel_name(name, ctype, index="long long"):
    """The entry point: e.g. ``im2col_float_i32`` (32-bit indices) or ``im2col_float_i64``."""
    return f"{name}_{ctype}_i{8 * np.dtype(INDEX_TYPES[index]).itemsize}"


def kernel_source(ctype, index="long long"):
    """``KERNEL_SOURCE`` with the element type ``T`` ("float" or "double") and the index
    type ``IDX`` ("int" or "long long") spelled out."""
    suffix = kernel_name("", ctype, index)
    return KERNEL_SOURCE.replace("_T(", f"{suffix}(").replace("T* ", f"{ctype}* ") \
        .replace("(T)0", f"({ctype})0").replace("T sum", f"{ctype} sum").replace("IDX", index)


def index_type(*sizes):
    """"int" when every index a kernel forms over arrays of ``sizes`` elements fits in 32
    bits (the grid-stride loop may step one grid past the end), else "long long"."""
    return "int" if max(sizes) + MAX_BLOCKS * THREADS < 2 ** 31 else "long long"


def _launch(name, source, out, g: ConvGeometry, n, c):
    xp = get_array_module(source, out)
    total = out.size
    index = index_type(source.size, out.size)
    blocks = max(1, min(MAX_BLOCKS, -(-total // THREADS)))
    integer = INDEX_TYPES[index]
    args = [xp.ascontiguousarray(source), out, total, n, c, g.H, g.W, g.KH, g.KW,
            g.SH, g.SW, g.PT, g.PL, g.DH, g.DW, g.OH, g.OW]
    _kernel(name, out.dtype, index, xp)(
        (blocks,), (THREADS,), tuple(a if hasattr(a, "shape") else integer(a) for a in args))
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
    """NumPy twin of the im2col kernel: the kernel's row and column formulas
    (r = oh*SH - PT + i*DH, s = ow*SW - PL + j*DW, zero outside), evaluated on index grids."""
    r = np.arange(g.OH)[None, :] * g.SH - g.PT + np.arange(g.KH)[:, None] * g.DH   # (KH, OH)
    s = np.arange(g.OW)[None, :] * g.SW - g.PL + np.arange(g.KW)[:, None] * g.DW   # (KW, OW)
    row_in, col_in = (r >= 0) & (r < g.H), (s >= 0) & (s < g.W)
    rows = np.clip(r, 0, g.H - 1)[:, None, :, None]                                # (KH, 1, OH, 1)
    cols = np.clip(s, 0, g.W - 1)[None, :, None, :]                                # (1, KW, 1, OW)
    inside = row_in[:, None, :, None] & col_in[None, :, None, :]
    values = x[:, :, rows, cols]                                   # (N, C, KH, KW, OH, OW)
    values = np.where(inside, values, 0).astype(x.dtype)
    return np.ascontiguousarray(values.transpose(1, 2, 3, 0, 4, 5))


def col2im_twin(cols, g: ConvGeometry):
    """NumPy twin of the col2im kernel: each pixel (r, s) gathers the taps (i, j) with
    r + PT - i*DH = oh*SH and s + PL - j*DW = ow*SW inside the output grid."""
    c, n = cols.shape[0], cols.shape[3]
    total = np.zeros((c, n, g.H, g.W), dtype=cols.dtype)
    r, s = np.arange(g.H), np.arange(g.W)
    for i in range(g.KH):
        rr = r + g.PT - i * g.DH
        row_ok = (rr >= 0) & (rr % g.SH == 0) & (rr // g.SH < g.OH)
        oh = np.where(row_ok, rr // g.SH, 0)
        for j in range(g.KW):
            ss = s + g.PL - j * g.DW
            col_ok = (ss >= 0) & (ss % g.SW == 0) & (ss // g.SW < g.OW)
            ow = np.where(col_ok, ss // g.SW, 0)
            taps = cols[:, i, j][:, :, oh[:, None], ow[None, :]]              # (C, N, H, W)
            total += np.where(row_ok[:, None] & col_ok[None, :], taps, 0)
    return np.ascontiguousarray(total.transpose(1, 0, 2, 3))


# ------------------------------------------------------------------ fake-device twins
def _geometry_from_args(args):
    names = ("total", "N", "C", "H", "W", "KH", "KW", "SH", "SW", "PT", "PL", "DH", "DW",
             "OH", "OW")
    return SimpleNamespace(**{k: int(v) for k, v in zip(names, args[2:])})


def _twin_launch(name, index):
    """What the fake device's ``RawKernel`` runs for kernel ``name`` with index type ``index``:
    the NumPy twin, after checking the launch arguments as the kernel would read them."""
    integer = INDEX_TYPES[index]

    def run(grid, block, args):
        source, out = args[:2]
        if any(type(a) is not integer for a in args[2:]):
            raise TypeError(f"{name}: integer arguments must all be {integer.__name__}")
        g = _geometry_from_args(args)
        if g.total != out.size or index_type(source.size, out.size) != index:
            raise OverflowError(f"{name}: launched with {index} indices for arrays of "
                                f"{source.size} and {out.size} elements")
        if name.startswith("im2col"):
            out[...] = im2col_twin(source.reshape(g.N, g.C, g.H, g.W), g).reshape(out.shape)
        else:
            cols = source.reshape(g.C, g.KH, g.KW, g.N, g.OH, g.OW)
            out[...] = col2im_twin(cols, g).reshape(out.shape)
    return run


for _name in ("im2col", "col2im"):
    for _ctype in ("float", "double"):
        for _index in INDEX_TYPES:
            fake_device.register_kernel_twin(kernel_name(_name, _ctype, _index),
                                             _twin_launch(_name, _index))
