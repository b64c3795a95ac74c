"""The trainer's wiring, recomputed by hand from the spec (spec §5 critics, §6 losses/schedule).

``tests/test_losses.py`` checks each loss function alone; these tests check what
``Trainer`` feeds them and how it combines them, which those tests cannot see:

* ``critic_step``: the critics see the composite ``fake = x2 M + x (1 - M)`` (local:
  the bbox crops), each gradient penalty has the (cropped) hole mask inside the norm,
  ``d_total = d_local + d_global + 10 (gp_local + gp_global)``, and the critics move by
  one Adam(1e-4, 0.5, 0.9, eps 1e-8) step on the gradient of that total;
* ``generator_step``: the discounted L1 is on the bbox crops of the raw x1 / x2, the
  known-region L1 is normalised by the known fraction, the WGAN terms are on the
  composite, ``g_total = 0.001 (g_local + g_global) + 1.2 l1 + 1.2 ae``, one Adam step;
* ``iteration``: ``critic_steps`` (5) critic updates, each on its own fresh batch, bbox and
  mask, then one generator update on another fresh batch; in warm-up, generator only.

The recomputation replays the trainer's random state (data sampler and mask / alpha
generator), builds every formula again from NumPy and a few nnlite ops, and runs in
float64 (the test casts the tiny networks and the batches) so that tolerances stay tight.
"""
import copy

import numpy as np

import nnlite
import nnlite.functional as F
from nnlite import Tensor
import inpainting.training.train as train_module
from inpainting.training.config import TrainConfig
from inpainting.data.masks import random_bbox_mask
from inpainting.training.train import Trainer

TINY = dict(image_size=32, bbox_size=16, max_delta=2, batch_size=2, cnum=4, critic_cnum=4)
LR, EPS, GAMMA, GP_LAMBDA = 1e-4, 1e-8, 0.9, 10.0      # spec §6
TOL = dict(rtol=1e-10, atol=1e-12)


class _Float64Data:
    """The configured dataset, its batches in float64."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __getattr__(self, name):
        return getattr(self.dataset, name)

    def next_batch(self, n):
        return self.dataset.next_batch(n).astype(np.float64)


def _float64_trainer(tmp_path, **overrides):
    config = TrainConfig(out_dir=str(tmp_path), **{**TINY, **overrides})
    trainer = Trainer(config, dataset=_Float64Data(train_module.make_dataset(config)))
    for module in (trainer.generator, trainer.local_critic, trainer.global_critic):
        for p in module.parameters():
            p.data = p.data.astype(np.float64)    # same Tensor objects: optimisers still see them
    return trainer


def _save_random_state(trainer):
    return copy.deepcopy(trainer.rng.bit_generator.state), trainer.dataset.state_dict()


def _restore_random_state(trainer, saved):
    trainer.rng.bit_generator.state = copy.deepcopy(saved[0])
    trainer.dataset.load_state_dict(saved[1])


def _draw(trainer):
    """What one update draws (spec §6): a batch, then one bbox and its shrunk hole."""
    c = trainer.config
    real = trainer.dataset.next_batch(c.batch_size)
    masks, boxes = random_bbox_mask(c.batch_size, c.image_size, c.bbox_size, 0, c.max_delta,
                                    rng=trainer.rng)
    top, left, h, w = (int(v) for v in boxes[0])
    return real, masks.astype(np.float64), np.s_[:, :, top:top + h, left:left + w]


def _expected_adam_first_step(loss, params):
    """Spec §6: Adam(lr 1e-4, betas (0.5, 0.9), eps 1e-8), first step: bias corrections
    cancel, so the update is ``-lr g / (|g| + eps)`` for g = d loss / d param."""
    grads = nnlite.grad(loss, params, allow_unused=True)
    return [np.zeros(p.shape) if g is None else -LR * g.data / (np.abs(g.data) + EPS)
            for p, g in zip(params, grads)]


def _assert_moved_by(params, before, expected_steps):
    for p, old, step in zip(params, before, expected_steps):
        np.testing.assert_allclose(p.data - old, step, rtol=0, atol=LR * 1e-6)


def _replay_and_compare(trainer, saved, step, expected, params, before, steps):
    """Rewind the trainer's random state, run its ``step``, and compare the returned terms
    with ``expected`` and the parameters' move with the expected Adam ``steps``."""
    _restore_random_state(trainer, saved)
    got = step()
    assert set(got) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, **TOL, err_msg=name)
    _assert_moved_by(params, before, steps)


def _penalty(critic, real, fake, mask, alpha):
    """Spec §6 gradient penalty, written out: x_hat = real + alpha (fake - real),
    g = d sum D(x_hat) / d x_hat, slope = sqrt(sum(g^2 M)) per sample, mean((slope - 1)^2).
    Returns (value from NumPy, the same quantity as a differentiable Tensor)."""
    x_hat = Tensor(real + alpha.reshape(-1, 1, 1, 1) * (fake - real), requires_grad=True)
    (g,) = nnlite.grad(F.sum(critic(x_hat)), x_hat, create_graph=True)
    slope = np.sqrt(np.sum(g.data ** 2 * mask, axis=(1, 2, 3)))
    value = np.mean((slope - 1.0) ** 2)
    slope_t = F.sqrt(F.sum(g * g * mask, axis=(1, 2, 3)))
    return value, F.mean((slope_t - 1.0) ** 2)


def _discount_weights(h, w, gamma=GAMMA):
    """Spec §6 loop: W[i, j] = max(g^min(i, h - i), g^min(j, w - j)) (h - i, not h - 1 - i)."""
    weights = np.zeros((1, 1, h, w))
    for i in range(h):
        for j in range(w):
            weights[0, 0, i, j] = max(gamma ** min(i, h - i), gamma ** min(j, w - j))
    return weights


def test_critic_step_matches_the_spec_recomputed_by_hand(tmp_path):
    """Spec §5/§6: WGAN on the composite (local: bbox crops), masked gradient penalties
    with their own alphas, lambda 10 on both, and one Adam step on d_total."""
    trainer = _float64_trainer(tmp_path)
    saved = _save_random_state(trainer)
    real, mask, box = _draw(trainer)
    with nnlite.no_grad():
        _, x2, _ = trainer.generator(Tensor(real * (1 - mask)), mask)
    assert x2.dtype == np.float64
    fake = x2.data * mask + real * (1 - mask)                     # composite, not raw x2
    assert not np.allclose(fake, x2.data)
    inputs = {"local": (trainer.local_critic, real[box], fake[box], mask[box]),
              "global": (trainer.global_critic, real, fake, mask)}
    alphas = {"local": trainer.rng.random(len(real)), "global": trainer.rng.random(len(real))}
    expected, total = {}, 0.0
    for name, (critic, r, f, m) in inputs.items():
        d = F.mean(critic(Tensor(f))) - F.mean(critic(Tensor(r)))
        gp_value, gp = _penalty(critic, r, f, m, alphas[name])
        expected[f"d_{name}"], expected[f"gp_{name}"] = float(d.item()), gp_value
        np.testing.assert_allclose(float(gp.item()), gp_value, rtol=1e-12)
        total = total + d + gp * GP_LAMBDA
    expected["d_loss"] = (expected["d_local"] + expected["d_global"]
                          + GP_LAMBDA * (expected["gp_local"] + expected["gp_global"]))
    params = list(trainer.critic_params)
    steps = _expected_adam_first_step(total, params)
    before = [p.data.copy() for p in params]

    _replay_and_compare(trainer, saved, trainer.critic_step, expected, params, before, steps)


def test_generator_step_matches_the_spec_recomputed_by_hand(tmp_path):
    """Spec §6: discounted L1 on the bbox crops of raw x1 / x2, known-region L1 over the
    known fraction, WGAN terms on the composite, 0.001 / 1.2 / 1.2, one Adam step."""
    trainer = _float64_trainer(tmp_path)
    weights = _discount_weights(trainer.config.bbox_size, trainer.config.bbox_size)
    # the trainer's map is float32: check it, then use its float64 twin to keep tolerances tight
    np.testing.assert_allclose(trainer.discount, weights, rtol=1e-6)
    trainer.discount = weights
    saved = _save_random_state(trainer)
    real, mask, box = _draw(trainer)
    xin = real * (1 - mask)
    x1, x2, _ = trainer.generator(Tensor(xin), mask)
    fake = x2 * mask + xin * (1 - mask)
    known = 1 - mask
    l1 = (1.2 * F.mean(F.abs(real[box] - x1[box]) * weights)
          + F.mean(F.abs(real[box] - x2[box]) * weights))
    ae = (1.2 * F.mean(F.abs(real - x1) * known) + F.mean(F.abs(real - x2) * known)) \
        * (1.0 / np.mean(known))
    g_local = -F.mean(trainer.local_critic(fake[box]))
    g_global = -F.mean(trainer.global_critic(fake))
    total = 0.001 * (g_local + g_global) + 1.2 * l1 + 1.2 * ae
    expected = {name: float(t.item()) for name, t in
                dict(l1=l1, ae=ae, g_local=g_local, g_global=g_global, g_loss=total).items()}
    params = list(trainer.generator.parameters())
    steps = _expected_adam_first_step(total, params)
    before = [p.data.copy() for p in params]
    critics_before = [p.data.copy() for p in trainer.critic_params]

    _replay_and_compare(trainer, saved, trainer.generator_step, expected, params, before, steps)
    for p, old in zip(trainer.critic_params, critics_before):
        np.testing.assert_array_equal(p.data, old)


def _recording_trainer(tmp_path, **overrides):
    """A Trainer (subclass) that records, calling through, the updates, the data and mask
    draws, and the loss calls that show which images and holes each update actually used;
    its dataset is the configured one behind a recording wrapper. Returns (trainer, log)."""
    log = dict(steps=[], batches=[], masks=[], boxes=[], penalties=[], known_l1=[])
    config = TrainConfig(out_dir=str(tmp_path), **{**TINY, **overrides})

    class RecordingData:
        def __init__(self, dataset):
            self.dataset = dataset

        def __getattr__(self, name):
            return getattr(self.dataset, name)

        def next_batch(self, n):
            log["steps"][-1]["batches"] += 1
            log["batches"].append(self.dataset.next_batch(n).copy())
            return log["batches"][-1]

    class Recording(Trainer):
        def critic_step(self, **kwargs):
            log["steps"].append({"kind": "critic_step", "batches": 0, "masks": 0})
            return super().critic_step(**kwargs)

        def generator_step(self, **kwargs):
            log["steps"].append({"kind": "generator_step", "batches": 0, "masks": 0})
            return super().generator_step(**kwargs)

        def _batch(self):              # one mask and box draw per batch
            real, masks, boxes = super()._batch()
            log["steps"][-1]["masks"] += 1
            log["masks"].append(np.array(masks))
            log["boxes"].append(tuple(int(v) for v in boxes[0]))
            return real, masks, boxes

        @staticmethod
        def gradient_penalty(critic, real, fake, mask, **kwargs):
            log["penalties"].append((np.array(real.data), np.array(mask)))
            return Trainer.gradient_penalty(critic, real, fake, mask, **kwargs)

        @staticmethod
        def known_region_l1(real, x1, x2, mask, **kwargs):
            log["known_l1"].append((np.array(real.data), np.array(mask)))
            return Trainer.known_region_l1(real, x1, x2, mask, **kwargs)

    return Recording(config, dataset=RecordingData(train_module.make_dataset(config))), log


def _all_different(arrays):
    return all(not np.array_equal(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1:])


def test_iteration_is_five_critic_updates_on_fresh_draws_then_one_generator_update(
        tmp_path):
    """Spec §6 schedule: critic_steps = 5 critic updates, each on a fresh batch, bbox and
    mask (and what the critics see is that draw), then 1 generator update on another."""
    trainer, log = _recording_trainer(tmp_path)
    assert trainer.config.critic_steps == 5
    trainer.iteration()
    assert [s["kind"] for s in log["steps"]] == ["critic_step"] * 5 + ["generator_step"]
    assert all(s["batches"] == 1 and s["masks"] == 1 for s in log["steps"]), log["steps"]
    assert len(log["batches"]) == len(log["masks"]) == 6
    assert _all_different(log["batches"]) and _all_different(log["masks"])
    assert len(set(log["boxes"][:5])) == 5, log["boxes"]
    assert len(log["penalties"]) == 10                     # local + global per critic update
    for k in range(5):
        (local_real, local_mask), (global_real, global_mask) = sorted(
            log["penalties"][2 * k:2 * k + 2], key=lambda entry: entry[0].shape[-1])
        top, left, h, w = log["boxes"][k]
        box = np.s_[:, :, top:top + h, left:left + w]
        np.testing.assert_array_equal(global_real, log["batches"][k])
        np.testing.assert_array_equal(global_mask, log["masks"][k])
        np.testing.assert_array_equal(local_real, log["batches"][k][box])
        np.testing.assert_array_equal(local_mask, log["masks"][k][box])
    (real, mask), = log["known_l1"]
    np.testing.assert_array_equal(real, log["batches"][5])
    np.testing.assert_array_equal(mask, log["masks"][5])
    assert trainer.step == 1


def test_critic_steps_setting_is_obeyed(tmp_path):
    """Spec §6 / config: the number of critic updates per iteration is ``critic_steps``."""
    trainer, log = _recording_trainer(tmp_path, critic_steps=2)
    trainer.iteration()
    assert [s["kind"] for s in log["steps"]] == ["critic_step"] * 2 + ["generator_step"]


def test_warm_up_iteration_is_one_generator_update_and_no_critic_update(tmp_path):
    """Warm-up (not in the release, train.py docstring): one generator update on
    1.2 l1 + 1.2 ae alone, one fresh draw, the critics untouched."""
    trainer, log = _recording_trainer(tmp_path, warmup_iterations=1)
    critics_before = [p.data.copy() for p in trainer.critic_params]
    got = trainer.iteration()
    assert [s["kind"] for s in log["steps"]] == ["generator_step"]
    assert log["steps"][0]["batches"] == 1 and log["penalties"] == []
    assert set(got) == {"l1", "ae", "g_loss"}
    np.testing.assert_allclose(got["g_loss"], 1.2 * got["l1"] + 1.2 * got["ae"], rtol=1e-6)
    for p, old in zip(trainer.critic_params, critics_before):
        np.testing.assert_array_equal(p.data, old)
    assert trainer.step == 1 and not trainer.warming_up
