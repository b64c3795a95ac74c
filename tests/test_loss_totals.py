"""The two weighted sums of spec §6, ``losses.generator_total`` and ``losses.critic_total``,
against sums written out by hand, and the trainer's totals against them.

    generator: 0.001 (g_local + g_global) + 1.2 l1 + 1.2 ae    (warm-up: 1.2 l1 + 1.2 ae)
    critic:    d_local + d_global + 10 (gp_local + gp_global)

Each total is a plain weighted sum, so its value and its gradient with respect to every
term (the term's weight) are checked; the trainer tests run one tiny update with unusual
weights, so a weight applied to the wrong term, or a term dropped, changes the result.
"""
import numpy as np
import pytest

import nnlite
from inpainting.model import losses
from inpainting.training.config import TrainConfig
from inpainting.training.train import Trainer
from nnlite import Tensor

TINY = dict(image_size=32, bbox_size=16, max_delta=2, batch_size=2, cnum=4, critic_cnum=4)


def _scalars(values):
    return [Tensor(np.array(v, dtype=np.float64), requires_grad=True) for v in values]


def test_generator_total_is_the_release_sum_and_each_weight_is_its_gradient():
    g_gan, l1, ae = _scalars([0.37, 2.5, -0.75])
    total = losses.generator_total(g_gan, l1, ae)
    by_hand = 0.001 * 0.37 + 1.2 * 2.5 + 1.2 * -0.75
    assert total.item() == pytest.approx(by_hand, rel=1e-15)
    grads = nnlite.grad(total, [g_gan, l1, ae])
    assert [float(g.item()) for g in grads] == pytest.approx([0.001, 1.2, 1.2], rel=1e-15)


def test_generator_total_weights_are_arguments_and_none_is_the_warm_up():
    g_gan, l1, ae = _scalars([3.0, 5.0, 7.0])
    total = losses.generator_total(g_gan, l1, ae, gan_alpha=0.5, l1_alpha=2.0, ae_alpha=0.25)
    assert total.item() == 0.5 * 3.0 + 2.0 * 5.0 + 0.25 * 7.0
    warm = losses.generator_total(None, l1, ae)
    assert warm.item() == pytest.approx(1.2 * 5.0 + 1.2 * 7.0, rel=1e-15)
    grads = nnlite.grad(warm, [l1, ae])
    assert [float(g.item()) for g in grads] == pytest.approx([1.2, 1.2], rel=1e-15)


def test_critic_total_is_the_release_sum_and_each_weight_is_its_gradient():
    d_local, d_global, gp_local, gp_global = _scalars([-0.5, 1.25, 0.125, 2.0])
    total = losses.critic_total(d_local, d_global, gp_local, gp_global)
    by_hand = -0.5 + 1.25 + 10.0 * 0.125 + 10.0 * 2.0
    assert total.item() == pytest.approx(by_hand, rel=1e-15)
    grads = nnlite.grad(total, [d_local, d_global, gp_local, gp_global])
    assert [float(g.item()) for g in grads] == pytest.approx([1.0, 1.0, 10.0, 10.0], rel=1e-15)
    other = losses.critic_total(d_local, d_global, gp_local, gp_global, gp_lambda=3.0)
    assert other.item() == pytest.approx(-0.5 + 1.25 + 3.0 * 0.125 + 3.0 * 2.0, rel=1e-15)


def test_the_totals_sum_per_sample_terms_elementwise():
    """Terms of any (matching) shape: the sums are taken term by term, nothing is reduced."""
    rng = np.random.default_rng(0)
    a, b, c, d = (rng.standard_normal(3) for _ in range(4))
    got = losses.critic_total(Tensor(a), Tensor(b), Tensor(c), Tensor(d), gp_lambda=2.0)
    np.testing.assert_allclose(got.data, [a[i] + b[i] + 2.0 * (c[i] + d[i]) for i in range(3)],
                               rtol=1e-15)
    got = losses.generator_total(Tensor(a), Tensor(b), Tensor(c))
    np.testing.assert_allclose(got.data,
                               [0.001 * a[i] + 1.2 * b[i] + 1.2 * c[i] for i in range(3)],
                               rtol=1e-15)


WEIGHTS = dict(gan_loss_alpha=0.5, l1_loss_alpha=3.0, ae_loss_alpha=0.25, wgan_gp_lambda=7.0)


def test_trainer_critic_update_adds_its_terms_with_the_configured_lambda(tmp_path):
    trainer = Trainer(TrainConfig(out_dir=str(tmp_path), losses=dict(WEIGHTS), **TINY))
    got = trainer.critic_step()
    by_hand = got["d_local"] + got["d_global"] + 7.0 * (got["gp_local"] + got["gp_global"])
    assert got["d_loss"] == pytest.approx(by_hand, rel=1e-5, abs=1e-6)
    assert got["gp_local"] + got["gp_global"] > 1e-3       # the lambda term is not negligible


def test_trainer_generator_update_adds_its_terms_with_the_configured_weights(tmp_path):
    trainer = Trainer(TrainConfig(out_dir=str(tmp_path), losses=dict(WEIGHTS), **TINY))
    got = trainer.generator_step()
    by_hand = 0.5 * (got["g_local"] + got["g_global"]) + 3.0 * got["l1"] + 0.25 * got["ae"]
    assert got["g_loss"] == pytest.approx(by_hand, rel=1e-5, abs=1e-6)


def test_trainer_warm_up_update_has_no_gan_term(tmp_path):
    trainer = Trainer(TrainConfig(out_dir=str(tmp_path), losses=dict(WEIGHTS),
                                  warmup_iterations=1, **TINY))
    got = trainer.generator_step()
    assert set(got) == {"l1", "ae", "g_loss"}
    assert got["g_loss"] == pytest.approx(3.0 * got["l1"] + 0.25 * got["ae"], rel=1e-5)
