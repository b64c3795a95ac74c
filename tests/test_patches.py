"""unfold / fold (im2col / col2im as differentiable ops): layout against loop references,
the adjoint identity, derivatives, the contextual-attention geometry and errors."""
import numpy as np
import pytest

import nnlite.functional as F
from nnlite import Tensor
from nnlite.functional.conv_reference import fold_reference, unfold_reference
from nnlite.conv_geometry import same_padding
from nnlite.testing import gradcheck, gradgradcheck

CASES = [  # kernel, dilation, padding, stride
    (3, 1, 0, 1), (3, 1, 1, 1), (2, 1, 0, 2), (4, 1, "same", 2), (3, 2, (1, 0, 2, 1), 1),
    ((2, 3), (1, 2), (1, 2), (2, 1)), (1, 1, 0, 3), (5, 1, "same", 1),
]


def explicit(padding, h, w, kernel, dilation, stride):
    if padding == "same":
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        return same_padding(h, kh, sh, dh) + same_padding(w, kw, sw, dw)
    return padding


@pytest.mark.parametrize("kernel,dilation,padding,stride", CASES)
def test_unfold_and_fold_match_loop_references(kernel, dilation, padding, stride, rng):
    x = rng.standard_normal((2, 3, 6, 7))
    pads = explicit(padding, 6, 7, kernel, dilation, stride)
    cols = F.unfold(Tensor(x), kernel, dilation=dilation, padding=padding, stride=stride)
    expected = unfold_reference(x, kernel, dilation, pads, stride)
    np.testing.assert_array_equal(cols.data, expected)
    c = rng.standard_normal(cols.shape)
    back = F.fold(Tensor(c), (6, 7), kernel, dilation=dilation, padding=padding, stride=stride)
    np.testing.assert_allclose(back.data, fold_reference(c, (6, 7), kernel, dilation, pads, stride),
                               rtol=1e-12, atol=1e-12)
    # adjoint identity <unfold(x), c> = <x, fold(c)>
    assert np.isclose(np.sum(cols.data * c), np.sum(x * back.data), rtol=1e-12)


@pytest.mark.parametrize("kernel,dilation,padding,stride", CASES)
def test_gradcheck_and_gradgradcheck(kernel, dilation, padding, stride, rng):
    x = Tensor(rng.standard_normal((1, 2, 5, 6)), requires_grad=True)

    def unfold(x):
        return F.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)

    assert gradcheck(unfold, (x,))
    assert gradgradcheck(unfold, (x,))
    cols = Tensor(rng.standard_normal(unfold(x).shape), requires_grad=True)

    def fold(cols):
        return F.fold(cols, (5, 6), kernel, dilation=dilation, padding=padding, stride=stride)

    assert gradcheck(fold, (cols,))
    assert gradgradcheck(fold, (cols,))


def test_contextual_attention_raw_patch_geometry(rng):
    """spec §3 step 1: 4x4 patches, stride 2, SAME on 64 pads (1, 1); patch q covers
    rows 2i-1 .. 2i+2 (zeros outside)."""
    assert same_padding(64, 4, 2, 1) == (1, 1)
    x = rng.standard_normal((1, 1, 8, 8))
    cols = F.unfold(Tensor(x), 4, padding="same", stride=2)
    assert cols.shape == (1, 16, 16)
    patch = cols.data[0, :, 1 * 4 + 2].reshape(4, 4)            # i = 1, j = 2
    np.testing.assert_array_equal(patch, x[0, 0, 1:5, 3:7])
    corner = cols.data[0, :, 0].reshape(4, 4)                    # i = j = 0: row/col -1 is zero
    np.testing.assert_array_equal(corner[0], 0)
    np.testing.assert_array_equal(corner[1:, 1:], x[0, 0, :3, :3])


def test_float32_kept(rng):
    x = Tensor(rng.standard_normal((1, 2, 4, 4)).astype(np.float32))
    assert F.unfold(x, 3, padding=1).dtype == np.float32


@pytest.mark.parametrize("call,match", [
    (lambda: F.fold(Tensor(np.zeros((1, 8, 4))), (3, 3), 3), r"\(N, C\*3\*3, L\)"),
    (lambda: F.fold(Tensor(np.zeros((1, 9, 5))), (3, 3), 2), r"\(N, C\*2\*2, L\)"),
    (lambda: F.fold(Tensor(np.zeros((1, 4, 5))), (3, 3), 2), r"L = 2\*2 = 4"),
    (lambda: F.unfold(Tensor(np.zeros((1, 1, 2, 2))), 3), r"larger than the padded input"),
    (lambda: F.unfold(Tensor(np.zeros((1, 2, 2))), 1), r"\(N, C, H, W\)"),
    (lambda: F.unfold(Tensor(np.zeros((1, 1, 4, 4))), 0), r"kernel_size must be positive"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
