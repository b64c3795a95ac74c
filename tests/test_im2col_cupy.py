"""The CuPy im2col / col2im kernels: each against its NumPy twin (on a GPU; on the fake
device the launch code runs and the twin computes), each twin against the slice-copy
version (everywhere), 32/64-bit index arithmetic, kernel caching, and the conv family on
every available backend against the loop reference."""
import re

import numpy as np
import pytest

import nnlite
import nnlite.functional as F
from nnlite import Tensor, backend, fake_device
from nnlite.functional.conv_reference import conv2d_reference
from nnlite.conv_geometry import conv_geometry
from nnlite.kernels.im2col import col2im, im2col
from nnlite.kernels import im2col_cupy as kernels

GPU = nnlite.cuda_available()

GEOMETRIES = [  # stride, padding, dilation, kernel
    (1, 1, 1, 3), (2, "same", 1, 3), (2, "same", 1, 5), (3, (1, 0, 2, 1), 2, 4),
    (1, "same", 4, 3), (2, 0, 1, 1), ((1, 2), (2, 1), (2, 1), (3, 2)),
]


def geometry(x_shape, stride, padding, dilation, kernel):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    return conv_geometry(x_shape, (1, x_shape[1], kh, kw), stride, padding, dilation)


@pytest.mark.parametrize("params", GEOMETRIES, ids=str)
def test_twins_match_slice_copies(params, rng):
    x = rng.standard_normal((2, 3, 9, 8))
    g = geometry(x.shape, *params)
    cols = im2col(x, g)
    np.testing.assert_array_equal(kernels.im2col_twin(x, g), cols)
    c = rng.standard_normal(cols.shape)
    np.testing.assert_allclose(kernels.col2im_twin(c, g), col2im(c, g), rtol=1e-12, atol=1e-12)


DEVICES = ["fake"] + (["cuda"] if GPU else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("params", GEOMETRIES, ids=str)
def test_kernels_match_twins(params, dtype, device, rng):
    """On a GPU the compiled kernels; on the fake device the launch path (argument list,
    integer width, grid) with the registered twin computing."""
    x = rng.standard_normal((2, 3, 9, 8)).astype(dtype)
    g = geometry(x.shape, *params)
    cols = kernels.im2col_gpu(backend.to_device(x, device), g)
    np.testing.assert_array_equal(backend.to_device(cols, "cpu"), kernels.im2col_twin(x, g))
    c = rng.standard_normal(cols.shape).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(backend.to_device(kernels.col2im_gpu(backend.to_device(c, device),
                                                                     g), "cpu"),
                               kernels.col2im_twin(c, g), rtol=tol, atol=tol)


def test_index_width_follows_the_array_sizes():
    """32-bit indices exactly when the largest array plus one grid-stride step fits below
    2**31; the fake device's launch refuses a kernel whose width does not match."""
    step = kernels.MAX_BLOCKS * kernels.THREADS
    assert kernels.index_type(10, 2 ** 31 - 1 - step) == "int"
    assert kernels.index_type(10, 2 ** 31 - step) == "long long"
    assert kernels.index_type(2 ** 40, 1) == "long long"
    x = fake_device.cupy.zeros((1, 1, 4, 4), dtype=np.float32)
    g = geometry(x.shape, 1, 1, 1, 3)
    out = fake_device.cupy.empty((1, 3, 3, 1, 4, 4), dtype=np.float32)
    wrong = kernels._kernel("im2col", np.float32, "long long", fake_device.cupy)
    args = (x, out) + tuple(np.int64(v) for v in (out.size, 1, 1, g.H, g.W, g.KH, g.KW, g.SH,
                                                  g.SW, g.PT, g.PL, g.DH, g.DW, g.OH, g.OW))
    with pytest.raises(OverflowError, match="long long indices"):
        wrong((1,), (kernels.THREADS,), args)


def test_index_arithmetic_is_64_bit():
    """Column indices past 2**31 (a 19 GB float32 cols buffer) decode exactly as Python ints do."""
    n, c, h, w = 64, 512, 128, 128
    g = conv_geometry((n, c, h, w), (1, c, 3, 3), 1, 1, 1)
    total = c * 9 * n * g.OH * g.OW
    assert total > 2 ** 31
    picks = np.array([2 ** 31 + 12345, total - 1, 2 ** 32 + 7], dtype=np.int64)
    source, inside = kernels.im2col_source(picks, n, c, g)
    for e, got, ok in zip(picks.tolist(), source.tolist(), inside.tolist()):
        ow, rest = e % g.OW, e // g.OW
        oh, rest = rest % g.OH, rest // g.OH
        nn, rest = rest % n, rest // n
        j, rest = rest % 3, rest // 3
        i, cc = rest % 3, rest // 3
        r, s = oh - 1 + i, ow - 1 + j
        assert ok == (0 <= r < h and 0 <= s < w)
        assert got == ((nn * c + cc) * h + r) * w + s
    # and the kernels themselves: every index variable has the one index type IDX, which
    # the 64-bit build spells long long (the 32-bit one int)
    declarations = re.findall(r"\b(int|long long|unsigned|IDX)\s+\w+\s*=", kernels.KERNEL_SOURCE)
    assert declarations and set(declarations) == {"IDX"}
    wide, narrow = kernels.kernel_source("float", "long long"), kernels.kernel_source("float", "int")
    assert "IDX" not in wide and "long long total" in wide and "e += (long long)" in wide
    assert "long long" not in narrow and "int total" in narrow and "e += (int)" in narrow


@pytest.mark.parametrize("device", DEVICES)
def test_kernels_are_built_once_per_dtype(device):
    xp = backend.get_array_module(backend.to_device(np.zeros(1), device))
    first = kernels._kernel("im2col", np.float32, "int", xp)
    assert kernels._kernel("im2col", np.float32, "int", xp) is first
    assert kernels._kernel("im2col", np.float32, "long long", xp) is not first
    assert kernels._kernel("col2im", np.float64, "int", xp) is not first
    with pytest.raises(TypeError, match="only float32 and float64"):
        kernels._kernel("im2col", np.float16, "int", xp)


def _nvrtc_available():
    try:
        from cupy_backends.cuda.libs import nvrtc
        nvrtc.getVersion()
        return True
    except Exception:
        return False


@pytest.mark.skipif(not _nvrtc_available(), reason="NVRTC (libnvrtc) is not installed here, so "
                                                    "the CUDA source cannot be compiled "
                                                    "(pip install 'cupy-cuda12x[ctk]' locally)")
@pytest.mark.parametrize("index", ["int", "long long"])
@pytest.mark.parametrize("ctype", ["float", "double"])
def test_kernel_source_compiles_with_nvrtc(ctype, index):
    """The exact source ``_kernel`` hands to ``cupy.RawKernel`` compiles for sm_90 (no GPU needed)."""
    from cupy_backends.cuda.libs import nvrtc

    program = nvrtc.createProgram(kernels.kernel_source(ctype, index), "im2col.cu", [], [])
    try:
        try:
            nvrtc.compileProgram(program, ["-arch=compute_90"])
        except nvrtc.NVRTCError:
            pytest.fail("NVRTC rejected the kernel source:\n" + nvrtc.getProgramLog(program))
        ptx = nvrtc.getPTX(program)
    finally:
        nvrtc.destroyProgram(program)
    ptx = ptx.decode() if isinstance(ptx, bytes) else ptx
    for name in ("im2col", "col2im"):   # extern "C": unmangled entry points
        assert f".entry {kernels.kernel_name(name, ctype, index)}" in ptx


def test_a_broken_kernel_source_would_fail_to_compile():
    """The compile test can fail: a type error in the source is rejected by NVRTC."""
    if not _nvrtc_available():
        pytest.skip("NVRTC (libnvrtc) is not installed here")
    from cupy_backends.cuda.libs import nvrtc

    program = nvrtc.createProgram(kernels.kernel_source("float").replace("long long OW)",
                                                                         "undefined_t OW)", 1),
                                  "broken.cu", [], [])
    try:
        with pytest.raises(nvrtc.NVRTCError):
            nvrtc.compileProgram(program, ["-arch=compute_90"])
    finally:
        nvrtc.destroyProgram(program)


@pytest.mark.parametrize("stride,padding,dilation", [(1, "same", 1), (2, "same", 1),
                                                     (1, "same", 2), (3, (0, 1, 2, 0), 1)])
def test_conv_family_on_every_backend(xp, stride, padding, dilation, rng):
    """conv2d forward and both gradients on ``xp`` (NumPy, and CuPy when a GPU is present)."""
    x = rng.standard_normal((2, 3, 7, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    g = conv_geometry(x.shape, w.shape, stride, padding, dilation)
    pads = (g.PT, g.PB, g.PL, g.PR)
    xt = Tensor(xp.asarray(x), requires_grad=True)
    wt = Tensor(xp.asarray(w), requires_grad=True)
    y = F.conv2d(xt, wt, stride=stride, padding=padding, dilation=dilation)
    np.testing.assert_allclose(backend.to_device(y.data, "cpu"),
                               conv2d_reference(x, w, None, stride, pads, dilation), atol=1e-10)
    v = rng.standard_normal(y.shape)
    gx, gw = nnlite.grad(y, [xt, wt], Tensor(xp.asarray(v)))
    host = [Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)]
    y_host = F.conv2d(*host, stride=stride, padding=padding, dilation=dilation)
    hx, hw = nnlite.grad(y_host, host, Tensor(v))
    np.testing.assert_allclose(backend.to_device(gx.data, "cpu"), hx.data, atol=1e-10)
    np.testing.assert_allclose(backend.to_device(gw.data, "cpu"), hw.data, atol=1e-10)
