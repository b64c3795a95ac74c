"""The losses of spec §6, each against a direct NumPy formula."""
import numpy as np
import pytest

import nnlite
import nnlite.functional as F
from inpainting.model import losses
from nnlite import Tensor
from nnlite.testing import gradcheck, gradgradcheck


def test_spatial_discount_values_match_the_release_loop():
    w = losses.spatial_discount_mask(128, 128)[0, 0]
    expected = np.ones((128, 128))
    for i in range(128):            # the release's own double loop
        for j in range(128):
            expected[i, j] = max(0.9 ** min(i, 128 - i), 0.9 ** min(j, 128 - j))
    np.testing.assert_allclose(w, expected, rtol=1e-6)
    assert w[0, 0] == 1.0 and w[0, 64] == 1.0 and w[64, 0] == 1.0
    np.testing.assert_allclose(w[127, 64], 0.9, rtol=1e-6)
    np.testing.assert_allclose(w[64, 64], 0.9 ** 64, rtol=1e-5)
    assert round(float(w.mean()), 4) == 0.2529


def test_spatial_discount_rectangular_and_errors():
    w = losses.spatial_discount_mask(8, 12, gamma=0.5)[0, 0]
    for i in range(8):
        for j in range(12):
            assert w[i, j] == pytest.approx(max(0.5 ** min(i, 8 - i), 0.5 ** min(j, 12 - j)))
    with pytest.raises(ValueError, match="positive"):
        losses.spatial_discount_mask(0, 4)
    for gamma in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match=r"gamma must be in \(0, 1\]"):
            losses.spatial_discount_mask(4, 4, gamma=gamma)
    assert (losses.spatial_discount_mask(4, 4, gamma=1.0) == 1).all()   # no discount


def test_masks_and_weights_must_fit_the_images():
    """A mask or weight map of another size (or a 2-d one) is refused by name, not
    broadcast into a silently different loss."""
    images = Tensor(np.ones((2, 3, 8, 8)))
    critic = lambda x: F.sum(x, axis=(1, 2, 3))   # noqa: E731
    cases = [
        (lambda m: losses.known_region_l1(images, images, images, m), "known_region_l1: mask"),
        (lambda m: losses.discounted_l1(images, images, images, m), "discounted_l1: weights"),
        (lambda m: losses.gradient_penalty(critic, images, images, m, alpha=np.ones(2)),
         "gradient_penalty: mask"),
    ]
    for loss, prefix in cases:
        for bad in (np.zeros((1, 1, 4, 4)), np.zeros((8, 8)), np.zeros((3, 1, 8, 8))):
            with pytest.raises(ValueError, match=rf"{prefix} must be \(1 or 2, 1 or 3, 8, 8\) "
                                                 rf"for images of shape \(2, 3, 8, 8\), got"):
                loss(bad)
        for good in (np.zeros((1, 1, 8, 8)), np.zeros((2, 1, 8, 8)), np.zeros((2, 3, 8, 8))):
            assert np.isfinite(float(loss(good).data))


def _random(rng, *shape):
    return rng.uniform(-1, 1, shape)


def test_discounted_l1_against_formula():
    rng = np.random.default_rng(0)
    real, x1, x2 = (_random(rng, 2, 3, 16, 16) for _ in range(3))
    w = losses.spatial_discount_mask(16, 16, dtype=np.float64)
    got = losses.discounted_l1(Tensor(real), Tensor(x1), Tensor(x2)).item()
    expected = 1.2 * np.mean(np.abs(real - x1) * w) + np.mean(np.abs(real - x2) * w)
    assert got == pytest.approx(expected, rel=1e-12)


def test_known_region_l1_against_formula_with_shared_and_per_sample_masks():
    rng = np.random.default_rng(1)
    real, x1, x2 = (_random(rng, 3, 3, 8, 8) for _ in range(3))
    for mask in (np.zeros((1, 1, 8, 8)), np.zeros((3, 1, 8, 8))):
        mask[..., 2:6, 3:7] = 1
        mask[-1, ..., 0, 0] = 1
        got = losses.known_region_l1(Tensor(real), Tensor(x1), Tensor(x2), mask).item()
        known = np.broadcast_to(1 - mask, real.shape)
        expected = (1.2 * np.mean(np.abs(real - x1) * known)
                    + np.mean(np.abs(real - x2) * known)) / np.mean(1 - mask)
        assert got == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="whole image"):
        losses.known_region_l1(Tensor(real), Tensor(x1), Tensor(x2), np.ones((1, 1, 8, 8)))


def test_wgan_losses_and_generator_total():
    d_real, d_fake = np.array([[1.0], [3.0]]), np.array([[0.5], [-1.5]])
    assert losses.wgan_critic_loss(Tensor(d_real), Tensor(d_fake)).item() == pytest.approx(-2.5)
    assert losses.wgan_generator_loss(Tensor(d_fake)).item() == pytest.approx(0.5)
    total = losses.generator_total(Tensor(np.array(2.0)), Tensor(np.array(3.0)),
                                   Tensor(np.array(5.0)))
    assert total.item() == pytest.approx(0.001 * 2 + 1.2 * 3 + 1.2 * 5)


def test_gradient_penalty_on_a_linear_critic_equals_its_closed_form():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((3, 6, 6))
    mask = np.zeros((1, 1, 6, 6))
    mask[..., 1:4, 2:5] = 1

    def critic(x):  # D(x) = <w, x>: its input gradient is w for every sample
        return F.sum(x * w, axis=(1, 2, 3)).reshape(-1, 1)

    real, fake = _random(rng, 4, 3, 6, 6), _random(rng, 4, 3, 6, 6)
    gp = losses.gradient_penalty(critic, Tensor(real), Tensor(fake), mask, rng=rng).item()
    slope = np.sqrt(np.sum(w ** 2 * mask[0]) + 1e-12)
    assert gp == pytest.approx((slope - 1) ** 2, rel=1e-10)


def test_gradient_penalty_with_zero_gradient_is_finite_and_differentiable():
    weight = Tensor(np.zeros((1, 3)), requires_grad=True)

    def critic(x):  # depends on x only through a zero weight: gradient exactly 0
        return F.sum(x, axis=(2, 3)) @ weight.T

    real = Tensor(np.ones((2, 3, 4, 4)))
    gp = losses.gradient_penalty(critic, real, real * 0.5, np.ones((1, 1, 4, 4)),
                                 alpha=np.array([0.3, 0.7]))
    assert gp.item() == pytest.approx(1.0, abs=1e-5)
    gp.backward()
    assert np.all(np.isfinite(weight.grad.data))


def test_gradient_penalty_quadratic_critic_against_formula_and_alpha_rule():
    rng = np.random.default_rng(3)
    real, fake = _random(rng, 2, 3, 4, 4), _random(rng, 2, 3, 4, 4)
    mask = np.zeros((2, 1, 4, 4))
    mask[0, :, 1:3, 1:3] = 1
    mask[1, :, :2, :] = 1
    alpha = np.array([0.25, 0.8])

    def critic(x):  # D(x) = sum(x^2): input gradient 2 x_hat
        return F.sum(x * x, axis=(1, 2, 3)).reshape(-1, 1)

    gp = losses.gradient_penalty(critic, Tensor(real), Tensor(fake), mask, alpha=alpha).item()
    x_hat = real + alpha[:, None, None, None] * (fake - real)
    slope = np.sqrt(np.sum((2 * x_hat) ** 2 * mask, axis=(1, 2, 3)) + 1e-12)
    assert gp == pytest.approx(np.mean((slope - 1) ** 2), rel=1e-10)
    with pytest.raises(ValueError, match="alpha or rng"):
        losses.gradient_penalty(critic, Tensor(real), Tensor(fake), mask)
    # alpha ~ U[0, 1) per sample: with rng, one uniform draw per sample, in sample order
    drawn = np.random.default_rng(7).random(2)
    from_rng = losses.gradient_penalty(critic, Tensor(real), Tensor(fake), mask,
                                       rng=np.random.default_rng(7)).item()
    x_hat = real + drawn[:, None, None, None] * (fake - real)
    slope = np.sqrt(np.sum((2 * x_hat) ** 2 * mask, axis=(1, 2, 3)) + 1e-12)
    assert from_rng == pytest.approx(np.mean((slope - 1) ** 2), rel=1e-10)


def test_gradient_penalty_second_derivative_through_a_small_critic():
    """gradcheck/gradgradcheck of the penalty w.r.t. critic weights (needs 2nd/3rd derivatives)."""
    rng = np.random.default_rng(4)
    real, fake = Tensor(_random(rng, 2, 2, 4, 4)), Tensor(_random(rng, 2, 2, 4, 4))
    mask = np.zeros((1, 1, 4, 4))
    mask[..., 1:3, :] = 1
    w1 = Tensor(rng.standard_normal((2 * 16, 5)) * 0.3, requires_grad=True)
    w2 = Tensor(rng.standard_normal((5, 1)) * 0.3, requires_grad=True)

    def penalty(a, b):
        def critic(x):
            return F.elu(F.flatten(x) @ a) @ b
        return losses.gradient_penalty(critic, real, fake, mask, alpha=np.array([0.4, 0.6]))

    assert gradcheck(penalty, (w1, w2))
    assert gradgradcheck(penalty, (w1, w2))


def test_gradient_penalty_leaves_no_graph_in_parameter_grads():
    rng = np.random.default_rng(5)
    w = nnlite.Tensor(rng.standard_normal((3, 1)), requires_grad=True)

    def critic(x):
        return F.tanh(F.mean(x, axis=(2, 3))) @ w

    gp = losses.gradient_penalty(critic, Tensor(_random(rng, 2, 3, 4, 4)),
                                 Tensor(_random(rng, 2, 3, 4, 4)), np.ones((1, 1, 4, 4)), rng=rng)
    gp.backward()
    assert w.grad is not None and w.grad.creator is None and not w.grad.requires_grad


def test_discounted_l1_default_weights_on_a_rectangular_crop():
    """Without weights, W is built for the crop's own (h, w): rows discount with h, columns
    with w (written out as the release's loop for a 6 x 10 crop)."""
    rng = np.random.default_rng(9)
    real, x1, x2 = (_random(rng, 2, 3, 6, 10) for _ in range(3))
    w = np.empty((6, 10))
    for i in range(6):
        for j in range(10):
            w[i, j] = max(0.9 ** min(i, 6 - i), 0.9 ** min(j, 10 - j))
    got = losses.discounted_l1(Tensor(real), Tensor(x1), Tensor(x2)).item()
    expected = 1.2 * np.mean(np.abs(real - x1) * w) + np.mean(np.abs(real - x2) * w)
    assert got == pytest.approx(expected, rel=1e-12)
