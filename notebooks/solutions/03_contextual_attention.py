"""Solutions of notebook 03's exercises (build_notebooks.py --solutions fills them in)."""
# %% [exercise]
# Exercise 3.1: 12 rows up and 20 columns right at full resolution is (−12, +20) pixels,
# and at the ½ scale of the offsets (−6, +10).
expected_offset = (-6, 10)

# %% [exercise]
# Exercise 3.2: the nine terms, each pair of positions moved by the same (i, j).
def propagated_score(s, w, x, y, x2, y2):
    """s: (L, L) scores of one image on an h × w grid; interior positions only."""
    return sum(s[(x + i) * w + (y + j), (x2 + i) * w + (y2 + j)]
               for i in (-1, 0, 1) for j in (-1, 0, 1))


# %% [exercise]
# Exercise 3.3: invalid patches get logit 0 (not −∞) and are zeroed afterwards.
def masked_softmax_numpy(s_hat, mm, lam):
    """s_hat (L, L), mm (L,) of 0/1, lam a float -> (L, L)."""
    logits = lam * mm[None, :] * s_hat
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return mm[None, :] * e / e.sum(axis=1, keepdims=True)
