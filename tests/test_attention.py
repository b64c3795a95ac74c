"""Contextual attention: staged == fused, chunked == direct, gradients, meaning, errors."""
import numpy as np
import pytest

import nnlite
from inpainting.model.attention import chunk_plan, chunk_size_for_memory, contextual_attention
from inpainting.model.attention_steps import contextual_attention_steps, propagate
from nnlite import Tensor
from nnlite.testing import gradcheck, gradgradcheck


def _inputs(seed, n=2, c=2, height=12, width=12, scale=1.0):
    rng = np.random.default_rng(seed)
    return (Tensor(rng.standard_normal((n, c, height, width)) * scale),
            Tensor(rng.standard_normal((n, c, height, width)) * scale))


def _hole(n, height, width, top, left, size):
    mask = np.zeros((n, 1, height, width))
    mask[..., top:top + size, left:left + size] = 1
    return mask


# ---------------------------------------------------------------- propagation op
@pytest.mark.parametrize("fuse_k", [1, 2, 3, 4, 9])   # 9 > L = 7: some shifts miss entirely
def test_diagonal_sum_matches_a_loop_and_is_twice_differentiable(fuse_k):
    """S'[p, q] = sum_u S[p + u - a, q + u - a], a = (fuse_k - 1) // 2, zero outside."""
    from inpainting.model.attention_steps import diagonal_sum

    rng = np.random.default_rng(fuse_k)
    scores = rng.standard_normal((2, 7, 7))
    a = (fuse_k - 1) // 2
    expected = np.zeros_like(scores)
    for n in range(2):
        for p in range(7):
            for q in range(7):
                for u in range(fuse_k):
                    i, j = p + u - a, q + u - a
                    if 0 <= i < 7 and 0 <= j < 7:
                        expected[n, p, q] += scores[n, i, j]
    np.testing.assert_allclose(diagonal_sum(Tensor(scores), fuse_k).data, expected, rtol=1e-14)
    x = Tensor(rng.standard_normal((1, 5, 5)), requires_grad=True)
    assert gradcheck(lambda t: diagonal_sum(t, fuse_k), (x,))
    assert gradgradcheck(lambda t: diagonal_sum(t, fuse_k) ** 2, (x,))


@pytest.mark.parametrize("fuse_k", [1, 2, 3, 4])
@pytest.mark.parametrize("h, w", [(3, 4), (4, 3), (5, 5), (2, 3), (1, 4)])
def test_column_major_diagonal_sum_matches_a_loop_and_is_twice_differentiable(h, w, fuse_k):
    """grid=(h, w): S'[p, q] = sum_u S[cm^-1(cm(p) + u - a), cm^-1(cm(q) + u - a)] with
    cm(i, j) = j*h + i (row-major matrix, column-major walk, zero past either end), equal
    to the release's transpose / sum / transpose; (1, 4) and (2, 3) with fuse_k 4 take the
    transpose path (a shift spans a whole column)."""
    from inpainting.model.attention_steps import diagonal_sum, swap_flattening

    rng = np.random.default_rng(10 * h + w + fuse_k)
    length = h * w
    scores = rng.standard_normal((2, length, length))
    a = (fuse_k - 1) // 2

    def walk(p, u):                                   # row-major index of cm^-1(cm(p) + u)
        k = (p % w) * h + p // w + u
        return (k % h) * w + k // h if 0 <= k < length else None

    expected = np.zeros_like(scores)
    for p in range(length):
        for q in range(length):
            for u in range(fuse_k):
                i, j = walk(p, u - a), walk(q, u - a)
                if i is not None and j is not None:
                    expected[:, p, q] += scores[:, i, j]
    got = diagonal_sum(Tensor(scores), fuse_k, grid=(h, w)).data
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
    swapped = swap_flattening(diagonal_sum(swap_flattening(Tensor(scores), h, w), fuse_k), w, h)
    np.testing.assert_allclose(got, swapped.data, rtol=1e-13, atol=1e-13)
    x = Tensor(rng.standard_normal((1, length, length)), requires_grad=True)
    assert gradcheck(lambda t: diagonal_sum(t, fuse_k, grid=(h, w)), (x,))
    assert gradgradcheck(lambda t: diagonal_sum(t, fuse_k, grid=(h, w)) ** 2, (x,))


def test_diagonal_sum_grid_must_match_the_matrix():
    from inpainting.model.attention_steps import diagonal_sum

    with pytest.raises(ValueError, match="grid 3x3 does not match L = 8"):
        diagonal_sum(Tensor(np.zeros((1, 8, 8))), 3, grid=(3, 3))


# ---------------------------------------------------------------- staged form
@pytest.mark.parametrize("fuse", [True, False])
def test_staged_form_equals_fused_layer(fuse):
    f, b = _inputs(0, height=16, width=12)
    mask = _hole(1, 16, 12, 3, 2, 7)
    steps = contextual_attention_steps(f, b, mask, rate=2, fuse=fuse)
    y, offsets = contextual_attention(f, b, mask, rate=2, fuse=fuse)
    np.testing.assert_allclose(steps.y.data, y.data, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(steps.offsets, offsets)
    length = 8 * 6
    assert steps.raw.shape == (2, length, 2, 4, 4)
    assert steps.f_small.shape == steps.b_small.shape == (2, 2, 8, 6)
    assert steps.mask_small.shape == (1, 1, 8, 6)
    assert steps.w.shape == (2, length, 2, 3, 3) and steps.mm.shape == (1, length)
    assert steps.scores.shape == steps.propagated.shape == steps.attention.shape == \
        (2, length, length)
    # A puts no mass on invalid patches, and rows sum to at most 1.
    valid = steps.mm[0] == 1
    assert 0 < valid.sum() < length
    np.testing.assert_allclose(steps.attention.data[..., ~valid], 0)
    assert np.all(steps.attention.data.sum(-1) <= 1 + 1e-12)


def test_invalid_patches_take_logit_zero_so_rows_sum_to_less_than_one():
    # With tiny features every logit is ~0, invalid ones exactly 0: the softmax is ~uniform
    # over all L patches and zeroing the invalid ones leaves (valid count) / L per row.
    f, b = _inputs(0, height=16, width=12, scale=1e-4)
    steps = contextual_attention_steps(f, b, _hole(1, 16, 12, 3, 2, 7))
    fraction = steps.mm[0].mean()
    np.testing.assert_allclose(steps.attention.data.sum(-1), fraction, rtol=1e-2)


@pytest.mark.parametrize("mask_rows", [1, 2, "one_empty_row"])
def test_masked_softmax_matches_the_formula_and_is_twice_differentiable(mask_rows):
    """A = mm * softmax(scale * mm * s) row by row (plain NumPy), for a shared (1, L) and a
    per-sample (N, L) mask; its one-Function backward (scale * A * (gA - sum(gA * A)))
    against finite differences, first and second order."""
    from inpainting.model.attention_steps import masked_softmax

    rng = np.random.default_rng(len(str(mask_rows)))
    n, length, scale = 2, 7, 3.0
    scores = rng.standard_normal((n, length, length))
    if mask_rows == "one_empty_row":     # a sample with no valid patch, at the default scale
        mask_rows, scale = 2, 10.0
        mm = np.array([[0.0] * length, [1, 1, 0, 1, 0, 1, 1]])
    else:
        mm = (rng.uniform(size=(mask_rows, length)) > 0.4).astype(np.float64)
    expected = np.empty_like(scores)
    for i in range(n):
        m = mm[i % mask_rows]
        for p in range(length):
            logits = scale * m * scores[i, p]
            e = np.exp(logits - logits.max())
            expected[i, p] = m * e / e.sum()
    got = masked_softmax(Tensor(scores), mm, softmax_scale=scale).data
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
    x = Tensor(scores, requires_grad=True)
    assert gradcheck(lambda t: masked_softmax(t, mm, scale), (x,))
    assert gradgradcheck(lambda t: masked_softmax(t, mm, scale), (x,))


def test_masked_softmax_rejects_a_soft_mask():
    from inpainting.model.attention_steps import masked_softmax

    with pytest.raises(ValueError, match="only 0 .* and 1"):
        masked_softmax(Tensor(np.zeros((1, 3, 3))), np.array([[1.0, 0.5, 0.0]]))


def test_propagation_is_the_neighbourhood_sum_away_from_the_edges():
    # Away from row/column ends, the two passes add the 3x3 neighbourhood moved together:
    # S'((i, j), (k, l)) = sum_{a, b in -1..1} S((i+a, j+b), (k+a, l+b)).
    h, w = 5, 6
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((1, h * w, h * w))
    out = propagate(Tensor(scores), h, w).data[0]
    grid = scores[0].reshape(h, w, h, w)
    for (i, j, k, m) in [(2, 2, 2, 3), (1, 3, 3, 1), (3, 4, 1, 2)]:
        expected = sum(grid[i + a, j + c, k + a, m + c] for a in (-1, 0, 1) for c in (-1, 0, 1))
        assert out[i * w + j, k * w + m] == pytest.approx(expected)


# ---------------------------------------------------------------- chunked == direct
@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("chunk_size", [1, 5, 6, 13, 36, 100])
def test_chunked_equals_direct(chunk_size, fuse):
    f, b = _inputs(2, height=12, width=12)                   # h = w = 6, L = 36
    mask = _hole(1, 12, 12, 0, 4, 6)
    y, offsets = contextual_attention(f, b, mask, fuse=fuse)
    with nnlite.no_grad():
        yc, offsets_c = contextual_attention(f, b, mask, fuse=fuse, chunk_size=chunk_size)
    np.testing.assert_allclose(yc.data, y.data, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(offsets_c, offsets)


def test_chunked_equals_direct_rectangular_rate1_per_sample_masks():
    f, b = _inputs(3, n=3, height=7, width=10)
    mask = np.concatenate([_hole(1, 7, 10, i, 2 * i, 4) for i in range(3)])
    y, offsets = contextual_attention(f, b, mask, rate=1)
    yc, offsets_c = contextual_attention(f, b, mask, rate=1, chunk_size=9)
    np.testing.assert_allclose(yc.data, y.data, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(offsets_c, offsets)


@pytest.mark.parametrize("kwargs", [dict(fuse_k=2, ksize=2), dict(fuse_k=5), dict(rate=3)])
def test_chunked_equals_direct_other_hyperparameters(kwargs):
    f, b = _inputs(13, n=1, height=12, width=18)
    mask = _hole(1, 12, 18, 3, 3, 6)
    y, offsets = contextual_attention(f, b, mask, **kwargs)
    yc, offsets_c = contextual_attention(f, b, mask, chunk_size=4, **kwargs)
    np.testing.assert_allclose(yc.data, y.data, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(offsets_c, offsets)


def test_chunk_plan_halo_is_bounded():
    h, w = 9, 7
    for start in range(0, h * w, 10):
        plan = chunk_plan(start, min(start + 10, h * w), h, w)
        assert len(plan["rows1"]) <= 10 + 2 * w + 4
        assert set(range(start, min(start + 10, h * w))) <= set(plan["rows2"].tolist())


def test_chunked_gradients_equal_direct_gradients():
    f, b = _inputs(4, n=1, height=8, width=8)
    f.requires_grad = b.requires_grad = True
    mask = _hole(1, 8, 8, 2, 2, 4)
    v = Tensor(np.random.default_rng(0).standard_normal((1, 2, 8, 8)))
    direct = nnlite.grad(contextual_attention(f, b, mask)[0], [f, b], v)
    chunked = nnlite.grad(contextual_attention(f, b, mask, chunk_size=3)[0], [f, b], v)
    for g, gc in zip(direct, chunked):
        np.testing.assert_allclose(gc.data, g.data, rtol=1e-10, atol=1e-12)


def test_chunk_size_for_memory():
    # 128x128 features at rate 2: L = 4096, w = 64; 1 GiB float32 fits
    # 2**30 / (8 * 4 * 4096) - 132 = 8060 rows, capped at L.
    assert chunk_size_for_memory(2 ** 30, 128, 128) == 4096
    assert chunk_size_for_memory(2 ** 28, 128, 128) == 2 ** 28 // (8 * 4 * 4096) - 132
    with pytest.raises(ValueError, match="cannot hold"):
        chunk_size_for_memory(1000, 128, 128)


# ---------------------------------------------------------------- gradients
def _attention_of(mask, **kwargs):
    return lambda f, b: contextual_attention(f, b, mask, **kwargs)[0]


def test_gradcheck_wrt_f_and_b():
    f, b = _inputs(5, n=1, height=8, width=8, scale=0.3)
    f.requires_grad = b.requires_grad = True
    assert gradcheck(_attention_of(_hole(1, 8, 8, 0, 3, 4)), (f, b))


def test_gradcheck_rate1_without_fuse_and_chunked():
    f, b = _inputs(6, n=1, c=1, height=5, width=6, scale=0.3)
    f.requires_grad = b.requires_grad = True
    assert gradcheck(_attention_of(None, rate=1, fuse=False), (f, b))
    assert gradcheck(_attention_of(_hole(1, 5, 6, 1, 1, 2), rate=1, chunk_size=7), (f, b))


def test_gradgradcheck_wrt_f_and_b():
    f, b = _inputs(7, n=1, c=2, height=4, width=4, scale=0.3)
    f.requires_grad = b.requires_grad = True
    assert gradgradcheck(_attention_of(_hole(1, 4, 4, 0, 0, 2)), (f, b))


def test_gradient_of_an_all_zero_background_patch_is_finite():
    f, b = _inputs(8, n=1, height=8, width=8)
    b.data[...] = 0.0                    # every ||w_q|| = 0: the 1e-4 floor is active
    f.requires_grad = b.requires_grad = True
    y, _ = contextual_attention(f, b)
    gf, gb = nnlite.grad(y.sum(), [f, b])
    assert np.all(np.isfinite(gf.data)) and np.all(np.isfinite(gb.data))


# ---------------------------------------------------------------- meaning of the result
def test_identical_foreground_and_background_attend_to_themselves():
    # s(p, q) = <f_p, f_q>/|f_q| <= |f_p| with equality at q = p (Cauchy-Schwarz), and the
    # propagated sums inherit it: with f = b and no hole every offset is (0, 0).
    f, _ = _inputs(9, height=16, width=16)
    _, offsets = contextual_attention(f, f)
    assert np.all(offsets == 0)


def test_offsets_point_to_valid_patches_and_find_a_pure_shift():
    # Inside a 6x6 hole, f is a copy of what lies 10 pixels to the right in b. Where the
    # 5x5 neighbourhood of p is all copied, the 9 propagated terms all peak at q = p + 10
    # (Cauchy-Schwarz equality), so the offset is exactly (0, +10) (rate 1: no resampling).
    rng = np.random.default_rng(10)
    b = rng.standard_normal((1, 4, 14, 24))
    mask = _hole(1, 14, 24, 4, 2, 6)
    f = b.copy()
    f[..., 4:10, 2:8] = b[..., 4:10, 12:18]
    _, offsets = contextual_attention(Tensor(f), Tensor(b), mask, rate=1)
    steps = contextual_attention_steps(Tensor(f), Tensor(b), mask, rate=1)
    target_rows = np.arange(14)[:, None] + offsets[0, 0]
    target_cols = np.arange(24)[None, :] + offsets[0, 1]
    assert np.all(steps.mm[0].reshape(14, 24)[target_rows, target_cols] == 1)
    assert np.all(offsets[0, :, 6:8, 4:6] == np.array([0, 10])[:, None, None])


def test_release_mask_semantics_batch1_vs_per_sample():
    f, b = _inputs(11, n=2, height=12, width=12)
    first = _hole(1, 12, 12, 0, 0, 6)
    second = _hole(1, 12, 12, 6, 6, 6)
    y_release, off_release = contextual_attention(f, b, first)
    y_per, off_per = contextual_attention(f, b, np.concatenate([first, second]))
    # Sample 0 uses the first mask either way; sample 1 only differs with its own mask.
    np.testing.assert_allclose(y_per.data[0], y_release.data[0], rtol=1e-12)
    np.testing.assert_array_equal(off_per[0], off_release[0])
    y_alone, off_alone = contextual_attention(f[1:], b[1:], second)
    np.testing.assert_allclose(y_per.data[1], y_alone.data[0], rtol=1e-12)
    np.testing.assert_array_equal(off_per[1], off_alone[0])
    assert not np.allclose(y_per.data[1], y_release.data[1])


# ---------------------------------------------------------------- errors
def test_size_validation_errors():
    f, b = _inputs(12, n=2, height=12, width=12)
    with pytest.raises(ValueError, match="multiples of rate=5"):
        contextual_attention(f, b, rate=5)
    odd, _ = _inputs(12, n=2, height=9, width=12)
    with pytest.raises(ValueError, match=r"H and W \(9, 12\) must be multiples of rate=2"):
        contextual_attention(odd, odd)
    with pytest.raises(ValueError, match="same shape"):
        contextual_attention(f, b[:, :1])
    with pytest.raises(ValueError,
                       match=r"mask must be \(1 or 2, 1, 12, 12\) at the feature resolution"):
        contextual_attention(f, b, np.zeros((1, 1, 6, 6)))
    with pytest.raises(ValueError, match="mask must be"):
        contextual_attention(f, b, np.zeros((3, 1, 12, 12)))
    with pytest.raises(ValueError, match="only stride=1"):
        contextual_attention(f, b, stride=2)
    with pytest.raises(ValueError, match="rate must be an integer >= 1"):
        contextual_attention(f, b, rate=0)
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        contextual_attention(f, b, chunk_size=0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        contextual_attention(f[0], b[0])
    with pytest.raises(TypeError, match="floating point"):
        contextual_attention(np.zeros((1, 1, 4, 4), dtype=np.int64),
                             np.zeros((1, 1, 4, 4), dtype=np.int64))


# ---------------------------------------------------------------- each step on its own
# Each stage function against the spec's words written out as loops (spec §3); the whole
# layer is also checked against the independent loop implementation in inpainting/model/reference.py.
def test_step1_raw_patches_cover_rows_2i_minus_1_to_2i_plus_2():
    """Patch q = (i, j) of b at rate 2 is b[2i-1 .. 2i+2, 2j-1 .. 2j+2], zeros outside."""
    from inpainting.model.attention_steps import raw_patches

    b = np.random.default_rng(20).standard_normal((2, 3, 8, 6))
    got = raw_patches(Tensor(b), 2).data
    h, w = 4, 3
    assert got.shape == (2, h * w, 3, 4, 4)
    for i in range(h):
        for j in range(w):
            expected = np.zeros((2, 3, 4, 4))
            for u in range(4):
                for v in range(4):
                    y, x = 2 * i - 1 + u, 2 * j - 1 + v
                    if 0 <= y < 8 and 0 <= x < 6:
                        expected[:, :, u, v] = b[:, :, y, x]
            np.testing.assert_array_equal(got[:, i * w + j], expected)


def test_step2_downsample_is_the_align_corners_rule_of_spec_1():
    """64 -> 32 keeps rows and columns 0, 2, ..., 30, 33, ..., 63 (spec §1's example)."""
    from inpainting.model.attention_steps import downsample

    x = np.random.default_rng(21).standard_normal((1, 2, 64, 64))
    kept = list(range(0, 31, 2)) + list(range(33, 64, 2))
    np.testing.assert_array_equal(downsample(Tensor(x), 2).data, x[:, :, kept][:, :, :, kept])


def test_step4_valid_patches_by_a_loop_over_zero_padded_windows():
    """mm[q] = 1 iff every entry of the 3x3 zero-padded window of the mask at q is 0; a hole
    at the border makes the windows that reach it invalid, the padding itself does not."""
    from inpainting.model.attention_steps import valid_patches

    mask = np.zeros((1, 1, 5, 6))
    mask[0, 0, 0, 4:6] = 1                          # a hole touching the top-right border
    mask[0, 0, 3, 1] = 1
    got = valid_patches(mask)
    expected = np.zeros((1, 30))
    for i in range(5):
        for j in range(6):
            window = [mask[0, 0, y, x] for y in range(i - 1, i + 2) for x in range(j - 1, j + 2)
                      if 0 <= y < 5 and 0 <= x < 6]
            expected[0, i * 6 + j] = float(all(value == 0 for value in window))
    np.testing.assert_array_equal(got, expected)
    assert 0 < expected.sum() < 30


def test_step5_norm_floor_is_1e_minus_4_for_tiny_but_nonzero_patches():
    """s[p, q] = <f_p, w_q> / max(||w_q||, 1e-4): background patches with 0 < ||w_q|| < 1e-4
    are divided by 1e-4, not by their norm (a loop over the 3x3 SAME windows)."""
    from inpainting.model.attention_steps import matching_patches, patch_scores

    rng = np.random.default_rng(22)
    f = rng.standard_normal((1, 2, 4, 5))
    b = rng.standard_normal((1, 2, 4, 5)) * 1e-6      # every ||w_q|| is far below 1e-4
    b[0, :, 0, 0] = 3.0                               # ... but the patches that see this pixel

    def window(x, i, j):
        out = np.zeros((2, 3, 3))
        for u in range(3):
            for v in range(3):
                if 0 <= i - 1 + u < 4 and 0 <= j - 1 + v < 5:
                    out[:, u, v] = x[0, :, i - 1 + u, j - 1 + v]
        return out.ravel()

    positions = [(i, j) for i in range(4) for j in range(5)]
    expected = np.array([[window(f, *p) @ window(b, *q) / max(np.linalg.norm(window(b, *q)), 1e-4)
                          for q in positions] for p in positions])
    got = patch_scores(Tensor(f), matching_patches(Tensor(b)))
    np.testing.assert_allclose(got.data[0], expected, rtol=1e-12, atol=1e-15)


def test_step8_offsets_from_a_hand_built_attention_with_ties():
    """offset(p) = (a // w - i, a % w - j), a = the first argmax of row p."""
    from inpainting.model.attention_steps import attention_offsets

    h, w = 2, 3
    attention = np.zeros((1, 6, 6))
    targets = [5, 0, 4, 1, 3, 2]                      # row p attends most to patch targets[p]
    for p, a in enumerate(targets):
        attention[0, p, a] = 0.9
    attention[0, 2, 1] = attention[0, 2, 4]           # a tie: the first maximum (1) wins
    got = attention_offsets(attention, h, w)
    expected = np.zeros((1, 2, h, w), np.int64)
    for p, a in enumerate([5, 0, 1, 1, 3, 2]):
        i, j = divmod(p, w)
        expected[0, :, i, j] = (a // w - i, a % w - j)
    np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------- memory planning bounds
def test_chunk_size_for_memory_refuses_a_budget_of_zero_rows():
    """chunk_size_for_memory: rows = budget // (8 * itemsize * L) - (2w + 4); a budget giving
    0 rows is refused (ValueError), one row more gives chunk_size 1; float64 halves the rows."""
    length, w = 64 * 64, 64                     # 128x128 features at rate 2
    per_row = 8 * 4 * length
    with pytest.raises(ValueError, match="cannot hold even one chunk"):
        chunk_size_for_memory((2 * w + 4) * per_row, 128, 128)
    assert chunk_size_for_memory((2 * w + 5) * per_row, 128, 128) == 1
    assert chunk_size_for_memory((2 * w + 4 + 10) * 2 * per_row, 128, 128, itemsize=8) == 10
    # rectangular: w follows the width; 64x32 features at rate 2 -> w = 16, L = 32 * 16
    rect_row = 8 * 4 * (32 * 16)
    assert chunk_size_for_memory((2 * 16 + 4 + 7) * rect_row, 64, 32) == 7


def test_chunk_size_true_is_not_a_chunk_size():
    """chunk_size=True (a bool, although an int subclass) is refused like any non-integer."""
    f, b = _inputs(0, n=1, height=8, width=8)
    with pytest.raises(ValueError, match="chunk_size must be a positive integer or None, got True"):
        contextual_attention(f, b, chunk_size=True)
