"""The vectorised contextual attention against the loop-by-loop reference of spec §3.

``inpainting.model.reference`` (importable, NumPy only) spells out every step with Python loops
over p and q, including the release's quirks: background-only normalisation with
max(norm, 1e-4), propagation on row-major then column-major flattened indices with
wrap-around, logit 0 for invalid patches then their mass zeroed, the first maximum for
the offsets, / 4 after the transposed conv, and align-corners nearest resizing.
"""
import numpy as np
import pytest

from inpainting.model.attention import contextual_attention
from inpainting.model.reference import (contextual_attention_reference, diagonal_sum,
                                  nearest_source_index)
from nnlite import Tensor


# ---------------------------------------------------------------- the reference itself
def test_reference_nearest_rule_matches_the_spec_examples():
    # Spec §1: 64 -> 32 picks 0, 2, ..., 30, 33, 35, ..., 63.
    picks = [nearest_source_index(i, 64, 32) for i in range(32)]
    assert picks == list(range(0, 31, 2)) + list(range(33, 64, 2))
    # 256 -> 64 -> 32 picks 0, 8, 16, 24, 32, 40, 49, 57, ..., 121, 134, 142, ..., 255.
    twice = [nearest_source_index(nearest_source_index(i, 64, 32), 256, 64) for i in range(32)]
    assert twice[:8] == [0, 8, 16, 24, 32, 40, 49, 57]
    assert twice[14:18] == [113, 121, 134, 142] and twice[-1] == 255
    # Half-way cases round away from zero: 4 -> 7 has scale 0.5; 1 * 0.5 -> 1.
    assert [nearest_source_index(i, 4, 7) for i in range(7)] == [0, 1, 1, 2, 2, 3, 3]


def test_reference_propagation_wraps_on_flattened_indices():
    # A 2x2 grid (L = 4): a single score at (p, q) = (1, 2) (row-major (0,1) and (1,0)).
    scores = np.zeros((4, 4))
    scores[1, 2] = 1.0
    row_pass = diagonal_sum(scores, ("C", (2, 2)), 3)
    # S1[p, q] = S[p-1, q-1] + S[p, q] + S[p+1, q+1]: lands on (0, 1), (1, 2), (2, 3);
    # (2, 3) is "the next pixel" of (1, 2) only through the wrap from row 0 to row 1.
    assert sorted(zip(*np.nonzero(row_pass))) == [(0, 1), (1, 2), (2, 3)]
    # The column-major pass: column-major index of row-major k on a 2x2 grid swaps 1 and 2.
    col_pass = diagonal_sum(scores, ("F", (2, 2)), 3)
    # (1, 2) is (cm 2, cm 1): its diagonal neighbours are (cm 1, cm 0) = (2, 0) and
    # (cm 3, cm 2) = (3, 1) in row-major positions.
    assert sorted(zip(*np.nonzero(col_pass))) == [(1, 2), (2, 0), (3, 1)]


# ---------------------------------------------------------------- layer vs reference
def _mask(kind, n, height, width):
    mask = np.zeros((1, 1, height, width))
    if kind == "none":
        return None
    if kind == "border":                      # a hole touching the top-left border
        mask[..., : height // 2, : width // 3] = 1
    elif kind == "most":                      # most patches invalid: a thin valid strip
        mask[...] = 1
        mask[..., :, -3:] = 0
    elif kind == "all":                       # nothing valid: y = 0
        mask[...] = 1
    elif kind == "per_sample":                # (N, 1, H, W): a different hole per sample
        mask = np.zeros((n, 1, height, width))
        for i in range(n):
            mask[i, :, i:i + height // 2, 1 + 2 * i:1 + 2 * i + width // 2] = 1
    return mask


CASES = [  # (N, C, H, W, rate, mask kind)
    (2, 3, 16, 16, 2, "border"),
    (2, 2, 12, 8, 2, "most"),
    (1, 2, 8, 8, 1, "border"),
    (2, 2, 8, 12, 1, "none"),
    (2, 2, 16, 12, 2, "per_sample"),
    (1, 2, 12, 12, 3, "border"),
    (2, 2, 8, 8, 2, "all"),
]


@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("n, c, height, width, rate, kind", CASES)
def test_layer_matches_reference(n, c, height, width, rate, kind, fuse):
    rng = np.random.default_rng(height * 100 + width + rate)
    f = rng.standard_normal((n, c, height, width))
    b = rng.standard_normal((n, c, height, width))
    mask = _mask(kind, n, height, width)
    expected_y, expected_offsets = contextual_attention_reference(f, b, mask, rate=rate,
                                                                  fuse=fuse)
    y, offsets = contextual_attention(Tensor(f), Tensor(b), mask, rate=rate, fuse=fuse)
    assert y.shape == (n, c, height, width) and y.dtype == np.float64
    np.testing.assert_allclose(y.data, expected_y, rtol=1e-10, atol=1e-12)
    assert offsets.shape == (n, 2, height // rate, width // rate)
    assert offsets.dtype.kind == "i"
    np.testing.assert_array_equal(offsets, expected_offsets)
    if kind == "all":
        assert np.all(y.data == 0)


def test_layer_matches_reference_with_other_hyperparameters():
    rng = np.random.default_rng(5)
    f, b = rng.standard_normal((2, 2, 2, 10, 10))
    mask = _mask("border", 1, 10, 10)
    kwargs = dict(ksize=2, rate=2, fuse_k=2, softmax_scale=3.0)
    expected_y, expected_offsets = contextual_attention_reference(f, b, mask, **kwargs)
    y, offsets = contextual_attention(Tensor(f), Tensor(b), mask, **kwargs)
    np.testing.assert_allclose(y.data, expected_y, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(offsets, expected_offsets)


def test_zero_background_patches_use_the_norm_floor():
    # A zero region makes ||w_q|| = 0: the release divides by 1e-4 (not by 0, no epsilon
    # inside the norm), so those patches score exactly 0.
    rng = np.random.default_rng(2)
    f = rng.standard_normal((1, 2, 8, 8)) * 1e-3
    b = rng.standard_normal((1, 2, 8, 8))
    b[..., :6, :6] = 0.0
    expected_y, expected_offsets = contextual_attention_reference(f, b, None, rate=2)
    y, offsets = contextual_attention(Tensor(f), Tensor(b), None, rate=2)
    np.testing.assert_allclose(y.data, expected_y, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(offsets, expected_offsets)


def test_float32_matches_reference_closely():
    rng = np.random.default_rng(3)
    f, b = rng.standard_normal((2, 1, 3, 16, 16)).astype(np.float32)
    mask = _mask("border", 1, 16, 16).astype(np.float32)
    expected_y, _ = contextual_attention_reference(f, b, mask, rate=2)
    y, _ = contextual_attention(Tensor(f), Tensor(b), Tensor(mask), rate=2)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, expected_y, rtol=1e-4, atol=1e-5)


def test_the_reference_is_independent_of_the_layer_and_refuses_what_it_does_not_define():
    """The oracle imports nothing of the library (only the standard library and NumPy), so
    agreement with the layer cannot come from shared code; unsupported input is refused."""
    import ast

    import inpainting.model.reference as reference

    tree = ast.parse(open(reference.__file__, encoding="utf-8").read())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "math", "numpy"}, imported
    f = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match="only stride 1"):
        contextual_attention_reference(f, f, stride=2)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        contextual_attention_reference(f, np.zeros((1, 1, 4, 6)))
