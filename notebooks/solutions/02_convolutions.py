"""Solutions of notebook 02's exercises (build_notebooks.py --solutions fills them in)."""
# %% [exercise]
# Exercise 2.1: the padded row has n + before + after pixels; a dilated kernel spans
# d(k−1)+1 of them; windows start every s pixels, so count the starts 0, s, 2s, ... that
# leave room for one span.
def output_size(n, k, s, before, after, d):
    return (n + before + after - d * (k - 1) - 1) // s + 1


# %% [exercise]
# Exercise 2.2: out = ⌈8/2⌉ = 4, total = max(3·2 + 2 + 1 − 8, 0) = 1, before = 0,
# after = 1. Output 0's window covers pixels 0, 1, 2 with SAME (centre 1) and the padding
# pixel −1, then 0, 1 with symmetric padding 1 (centre 0).
same_pads_8 = (0, 1)
centre_same = 1
centre_symmetric = 0

# %% [exercise]
# Exercise 2.3: scatter every output's gradient back over the window it read.
def conv2d_input_grad(gy, w, x_shape):
    gx = np.zeros(x_shape)
    n, o, oh, ow = gy.shape
    _, c, kh, kw = w.shape
    for b in range(n):
        for out in range(o):
            for i in range(oh):
                for j in range(ow):
                    gx[b, :, i:i + kh, j:j + kw] += gy[b, out, i, j] * w[out]
    return gx
