"""A short demonstration of nnlite: fit a tiny function and show a second derivative.

Run with ``python -m nnlite.demo``.
"""
import numpy as np

import nnlite
import nnlite.functional as F


def main():
    rng = np.random.default_rng(0)
    x = nnlite.Tensor(rng.standard_normal((64, 1)).astype(np.float32))
    target = nnlite.Tensor(np.sin(3 * x.data))
    w1 = nnlite.Tensor(rng.standard_normal((1, 32)).astype(np.float32), requires_grad=True)
    w2 = nnlite.Tensor((rng.standard_normal((32, 1)) / 6).astype(np.float32), requires_grad=True)
    for step in range(301):
        loss = F.mse_loss(F.tanh(x @ w1) @ w2, target)
        gw1, gw2 = nnlite.grad(loss, [w1, w2])
        with nnlite.no_grad():
            w1.data -= 0.1 * gw1.data
            w2.data -= 0.1 * gw2.data
        if step % 100 == 0:
            print(f"step {step:3d}  mse {loss.item():.4f}")
    t = nnlite.Tensor(np.array(0.5), requires_grad=True)
    y = t ** 3
    (dy,) = nnlite.grad(y, t, create_graph=True)
    (d2y,) = nnlite.grad(dy, t)
    print(f"d/dt t^3 at 0.5 = {dy.item():.3f} (3t^2 = 0.75); d2/dt2 = {d2y.item():.3f} (6t = 3.0)")


if __name__ == "__main__":
    main()
