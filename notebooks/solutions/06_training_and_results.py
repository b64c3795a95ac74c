"""Solutions of notebook 06's exercises (build_notebooks.py --solutions fills them in)."""
# %% [exercise]
# Exercise 6.1: the bias corrections make the first step's size lr·g/(|g| + ε) ≈ lr.
def adam_by_hand(p0, grads, lr=1e-4, beta1=0.5, beta2=0.9, eps=1e-8):
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1 ** t) * m / (np.sqrt(v) / np.sqrt(1 - beta2 ** t) + eps)
    return p


# %% [exercise]
# Exercise 6.2: map to [0, 1], average the squared error over the hole's pixels and the
# three channels, then 10·log10(1 / MSE).
def psnr_in_hole(pred, target, mask):
    error = ((np.float64(pred) + 1) / 2 - (np.float64(target) + 1) / 2) ** 2
    hole = np.broadcast_to(mask > 0.5, error.shape)
    return 10 * np.log10(1.0 / error[hole].mean())
