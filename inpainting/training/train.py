"""The release's WGAN-GP training recipe (spec §6), resumable and observable.

One *iteration* = ``critic_steps`` (5) critic updates, each on a fresh batch,
bbox and mask, then one generator update on another fresh batch:

    critic:    d_total = (mean D(fake) - mean D(real))_local + (...)_global
                         + 10 * (gp_local + gp_global)
    generator: g_total = 0.001 * (g_local + g_global) + 1.2 * l1 + 1.2 * ae

``fake`` is the composite ``x2 * M + x * (1 - M)``; the local critic sees the
bbox crops. During the optional warm-up (``warmup_iterations``, not in the release)
an iteration is one generator update on ``1.2 * l1 + 1.2 * ae`` alone.

Everything random (data order, crops, boxes, holes, gradient-penalty alphas) comes
from seeded generators whose state is saved in every checkpoint, so
``Trainer.resume`` continues exactly where a run stopped.

This module holds the updates (``critic_step``, ``generator_step``, ``iteration``);
``resume.py`` the checkpoints and resuming, ``loop.py`` the ``run`` loop.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import nnlite
import nnlite.functional as F
from nnlite.backend import get_array_module, to_device

from . import distributed
from .config import TrainConfig
from ..model.losses import (critic_total, discounted_l1, generator_total, gradient_penalty,
                     known_region_l1, spatial_discount_mask, wgan_critic_loss,
                     wgan_generator_loss)
from ..data.masks import bboxes_around_holes, free_form_mask, random_bbox_mask
from ..model.networks import GlobalCritic, InpaintGenerator, LocalCritic
from .prefetch import Prefetching
from .loop import NothingToTrain, TrainingLoop
from .resume import DATA_FIELDS, RESUME_FIELDS, Resumable  # noqa: F401 - still importable from here

__all__ = ["NothingToTrain", "Trainer", "TrainingDiverged", "make_dataset"]


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def make_dataset(config: TrainConfig):
    """The training images named by ``config.data``: 'demo', a folder or an flist."""
    from ..data.datasets import ImageFolder, demo_corpus

    if config.data_manifest_sha256:
        check_manifest(config.data, config.data_manifest_sha256)
    options = dict(resize=config.resize, random_flip=config.random_flip,
                   min_crop_scale=config.min_crop_scale,
                   periodic_fraction=config.periodic_fraction, seed=config.seed)
    if config.data == "demo":
        return demo_corpus("train", config.image_size, **options)
    return ImageFolder(config.data, config.image_size, **options)


def check_manifest(data, sha256):
    """Refuse a corpus whose manifest.json (beside an flist, or in a folder) is not ``sha256``."""
    import hashlib
    from pathlib import Path

    data = Path(data)
    manifest = (data if data.is_dir() else data.parent) / "manifest.json"
    if not manifest.is_file():
        raise ValueError(f"data_manifest_sha256 is set but {manifest} does not exist (build the "
                         f"corpus with scripts/build_corpus.py)")
    found = hashlib.sha256(manifest.read_bytes()).hexdigest()
    if found != sha256:
        raise ValueError(f"{manifest} has sha256 {found}, but the configuration expects {sha256}: "
                         f"this is not the corpus the run was configured for")


def crop(x, bboxes):
    """Local patches: (N, C, h, w) crops of ``x`` at ``bboxes`` (one row, or one per sample)."""
    if len(bboxes) == 1:
        top, left, h, w = (int(v) for v in bboxes[0])
        return x[:, :, top:top + h, left:left + w]
    patches = [x[i:i + 1, :, int(t):int(t) + int(h), int(l):int(l) + int(w)]
               for i, (t, l, h, w) in enumerate(bboxes)]
    return F.concat(patches, axis=0)


class Trainer(TrainingLoop, Resumable):
    """Holds the networks, optimisers, data and random state of one training run.

    The updates are here; saving and resuming come from ``Resumable`` (training/resume.py),
    the ``run`` loop from ``TrainingLoop`` (training/loop.py)."""

    # The two loss terms that see a batch's real images and masks, called as methods so that
    # a subclass can wrap them (e.g. to record what each update was given); the functions
    # themselves are inpainting.model.losses'.
    gradient_penalty = staticmethod(gradient_penalty)
    known_region_l1 = staticmethod(known_region_l1)

    def __init__(self, config: TrainConfig, dataset=None, comm=None):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"Trainer expects a TrainConfig, got {type(config).__name__}; build "
                            "one with TrainConfig(**values), TrainConfig.from_dict(values) or "
                            "load_config(path)")
        self.config = config.validate()
        # ranks of a data-parallel run (training/distributed.py); one process: no-ops
        self.comm = distributed.communicator(config.device) if comm is None else comm
        self.comm.local_batch(config.batch_size)
        seeds = np.random.SeedSequence(config.seed).spawn(4)
        self.generator = InpaintGenerator(config.cnum, attention=config.attention,
                                          rng=np.random.default_rng(seeds[0]))
        self.local_critic = LocalCritic(config.critic_cnum, config.bbox_size,
                                        rng=np.random.default_rng(seeds[1]))
        self.global_critic = GlobalCritic(config.critic_cnum, config.image_size,
                                          rng=np.random.default_rng(seeds[2]))
        self.rng = np.random.default_rng(seeds[3])   # masks and gradient-penalty alphas
        if config.init_weights:
            self._load_initial_weights(config.init_weights)
        self.device = config.device
        for module in (self.generator, self.local_critic, self.global_critic):
            module.to(self.device)
        adam = dict(lr=config.lr, betas=(config.beta1, config.beta2), eps=config.adam_eps)
        self.critic_params = (list(self.local_critic.parameters())
                              + list(self.global_critic.parameters()))
        self.g_optimizer = nnlite.optim.Adam(list(self.generator.parameters()), **adam)
        self.d_optimizer = nnlite.optim.Adam(self.critic_params, **adam)
        self.dataset = make_dataset(config) if dataset is None else dataset
        if nnlite.backend.parse_device(self.device)[0] != "cpu":
            self.dataset = Prefetching(self.dataset)   # decode while the device computes
        weights = spatial_discount_mask(config.bbox_size, config.bbox_size, config.losses.gamma)
        self.discount = to_device(weights, self.device)
        self.step = 0                  # completed generator updates
        self.out_dir = Path(config.out_dir)

    def _load_initial_weights(self, path):
        """Fine-tuning: copy a saved generator's weights (same ``cnum``) into this run's."""
        from ..weights.model_io import load_generator

        source = load_generator(path)
        if source.cnum != self.config.cnum:
            raise ValueError(f"init_weights {path} holds a generator with cnum {source.cnum}, "
                             f"but this run's cnum is {self.config.cnum}; set cnum = "
                             f"{source.cnum} to fine-tune it")
        if source.attention != self.config.attention:
            raise ValueError(f"init_weights {path} holds a generator with attention="
                             f"{source.attention}, but this run has attention="
                             f"{self.config.attention}; the two architectures differ")
        self.generator.load_state_dict(source.state_dict())

    # ------------------------------------------------------------------ batches
    def _batch(self):
        """A fresh batch with its masks and boxes, on the training device."""
        c = self.config
        real = distributed.next_images(self.dataset, c.batch_size, self.comm)   # this rank's share
        if c.mask == "free_form":
            count = c.batch_size if c.per_sample_mask else 1
            masks = np.concatenate([free_form_mask(c.image_size, rng=self.rng)
                                    for _ in range(count)])
            bboxes = bboxes_around_holes(masks, c.bbox_size)
        else:
            masks, bboxes = random_bbox_mask(c.batch_size, c.image_size, c.bbox_size, 0,
                                             c.max_delta, per_sample=c.per_sample_mask,
                                             rng=self.rng)
        masks, bboxes = self.comm.share(masks, c.batch_size), self.comm.share(bboxes, c.batch_size)
        real = nnlite.Tensor(to_device(real, self.device))
        mask = to_device(masks, self.device)
        return real, mask, bboxes

    def _complete(self, real, mask):
        incomplete = real * (1.0 - mask)
        x1, x2, offsets = self.generator(incomplete, mask)
        fake = x2 * mask + incomplete * (1.0 - mask)
        return x1, x2, offsets, fake

    # ------------------------------------------------------------------ updates
    def critic_step(self, *, fetch=True):
        """One critic update (spec §6); returns its loss terms as floats, checked finite
        before the update (``fetch=False``: as tensors, unchecked, without waiting for the
        device; ``iteration`` checks every update's terms at once)."""
        c = self.config
        real, mask, bboxes = self._batch()
        with nnlite.no_grad():
            _, _, _, fake = self._complete(real, mask)
        fake = fake.detach()
        real_local, fake_local = crop(real, bboxes), crop(fake, bboxes)
        mask_local = crop(nnlite.Tensor(mask), bboxes).data
        d_local = wgan_critic_loss(self.local_critic(real_local), self.local_critic(fake_local))
        d_global = wgan_critic_loss(self.global_critic(real), self.global_critic(fake))
        alphas = (self.comm.share(self.rng.random(c.batch_size), c.batch_size),
                  self.comm.share(self.rng.random(c.batch_size), c.batch_size))
        gp_local = self.gradient_penalty(self.local_critic, real_local, fake_local, mask_local,
                                         alpha=alphas[0])
        gp_global = self.gradient_penalty(self.global_critic, real, fake, mask, alpha=alphas[1])
        total = critic_total(d_local, d_global, gp_local, gp_global,
                             gp_lambda=c.losses.wgan_gp_lambda)
        terms = {"d_local": d_local, "d_global": d_global, "gp_local": gp_local,
                 "gp_global": gp_global, "d_loss": total}   # components first: blame them
        values = self._check_finite([terms])[0] if fetch else terms
        _apply(self.d_optimizer, self.critic_params, total, self.comm)
        return values

    @property
    def warming_up(self):
        """True while the reconstruction-only warm-up lasts (no critic, no GAN term)."""
        return self.step < self.config.warmup_iterations

    def generator_step(self, *, fetch=True):
        """One generator update (spec §6); returns its loss terms as floats, checked finite
        before the update (``fetch=False``: as tensors, unchecked; see ``critic_step``)."""
        w = self.config.losses
        real, mask, bboxes = self._batch()
        x1, x2, _, fake = self._complete(real, mask)
        l1 = discounted_l1(crop(real, bboxes), crop(x1, bboxes), crop(x2, bboxes),
                           self.discount, coarse_alpha=w.coarse_l1_alpha)
        ae = self.known_region_l1(real, x1, x2, mask, coarse_alpha=w.coarse_l1_alpha)
        ae = ae * self.comm.known_weight(mask)   # ranks, one mask per sample: global fraction
        terms = {"l1": l1, "ae": ae}
        g_gan = None                   # warm-up: reconstruction terms alone
        if not self.warming_up:
            g_local = wgan_generator_loss(self.local_critic(crop(fake, bboxes)))
            g_global = wgan_generator_loss(self.global_critic(fake))
            g_gan = g_local + g_global
            terms.update(g_local=g_local, g_global=g_global)
        total = generator_total(g_gan, l1, ae, gan_alpha=w.gan_loss_alpha,
                                l1_alpha=w.l1_loss_alpha, ae_alpha=w.ae_loss_alpha)
        terms["g_loss"] = total
        values = self._check_finite([terms])[0] if fetch else terms
        _apply(self.g_optimizer, list(self.generator.parameters()), total, self.comm)
        return values

    def iteration(self):
        """``critic_steps`` critic updates, then one generator update (warm-up: no critic).

        The loss terms of all the updates are fetched from the device once, at the end
        (one host synchronisation per iteration, not one per term): a non-finite term
        stops the run there with ``TrainingDiverged``, before any checkpoint is written,
        so the weights it spoiled are never saved. Returns the last critic update's and
        the generator update's terms as floats."""
        pending = []
        for _ in range(0 if self.warming_up else self.config.critic_steps):
            pending.append(self.critic_step(fetch=False))
        pending.append(self.generator_step(fetch=False))
        log = {}
        for values in self._check_finite(pending):
            log.update(values)
        self.step += 1
        return log

    def _check_finite(self, updates):
        """``updates``: dicts of one-element loss tensors -> the same dicts of floats, fetched
        in one transfer; raises ``TrainingDiverged`` naming the first non-finite term."""
        tensors = [tensor for terms in updates for tensor in terms.values()]
        for name, tensor in ((n, t) for terms in updates for n, t in terms.items()):
            if tensor.size != 1:
                raise ValueError(f"loss term {name!r} has shape {tensor.shape}; a loss is "
                                 "one number")
        xp = get_array_module(*(t.data for t in tensors))
        host = to_device(xp.concatenate([t.data.reshape(1).astype(xp.float64)
                                         for t in tensors]), "cpu").tolist()
        results, position = [], 0
        for terms in updates:
            values = dict(zip(terms, host[position:position + len(terms)]))
            position += len(terms)
            values = self.comm.average_values(values)  # the global batch's, the same on all ranks
            for name, value in values.items():
                if not math.isfinite(value):
                    raise TrainingDiverged(
                        f"loss term {name!r} is {value} at generator step {self.step + 1}; "
                        f"stopping. The last good checkpoint in "
                        f"{self.out_dir / 'checkpoints'} is kept; try a lower learning rate "
                        "or check the data.")
            results.append(values)
        return results


def _apply(optimizer, params, loss, comm=None):
    """Gradients by ``nnlite.grad`` (no graph is kept in ``.grad``), averaged over the ranks
    of a data-parallel run, then one update."""
    grads = nnlite.grad(loss, params, allow_unused=True)
    if comm is not None:
        grads = comm.average_gradients(grads)
    for param, g in zip(params, grads):
        param.grad = g
    optimizer.step()
    optimizer.zero_grad()
