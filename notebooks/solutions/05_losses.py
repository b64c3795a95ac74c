"""Solutions of notebook 05's exercises (build_notebooks.py --solutions fills them in)."""
# %% [exercise]
# Exercise 5.1: the larger of the two axes' discounts, each counting from the nearer
# edge (i from the top, h − i from the bottom).
def discount_weight(i, j, h, w, gamma=0.9):
    return max(gamma ** min(i, h - i), gamma ** min(j, w - j))


# %% [exercise]
# Exercise 5.2: the gradient is w for every sample, so every sample has the same slope
# n = sqrt(Σ w²M) and the mean over the batch is (n − 1)².
def linear_critic_penalty(w, mask):
    """w (C, H, W), mask (1, 1, H, W) -> gp, a float."""
    n = np.sqrt((w ** 2 * mask[0]).sum())
    return float((n - 1.0) ** 2)


# %% [exercise]
# Exercise 5.3: d (n − 1)² / dw = 2 (n − 1) dn/dw, and dn/dw = w·M / n.
def linear_critic_penalty_grad(w, mask):
    """w (C, H, W), mask (1, 1, H, W) -> d gp / d w, shape (C, H, W)."""
    n = np.sqrt((w ** 2 * mask[0]).sum())
    return 2.0 * (n - 1.0) * w * mask[0] / n
