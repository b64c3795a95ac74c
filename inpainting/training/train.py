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
"""
from __future__ import annotations

import json
import math
import signal
import time
from pathlib import Path

import numpy as np

import nnlite
import nnlite.functional as F
from nnlite.backend import get_array_module, to_device

from ..weights import checkpoint as ckpt
from . import distributed, run_files
from .config import TrainConfig
from ..model.losses import (critic_total, discounted_l1, generator_total, gradient_penalty,
                     known_region_l1, spatial_discount_mask, wgan_critic_loss,
                     wgan_generator_loss)
from ..data.masks import bboxes_around_holes, free_form_mask, random_bbox_mask
from ..model.networks import GlobalCritic, InpaintGenerator, LocalCritic
from .prefetch import Prefetching

__all__ = ["NothingToTrain", "Trainer", "TrainingDiverged", "make_dataset"]

#: configuration fields that decide the networks' shapes: a checkpoint can only be resumed by
#: a run that has the same values (any other recipe field: the same unless forced)
RESUME_FIELDS = ("cnum", "attention", "critic_cnum", "image_size", "bbox_size")
#: recipe fields that name the training images: a forced change restarts the data order
DATA_FIELDS = ("data", "data_manifest_sha256")


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class NothingToTrain(ValueError):
    """``run`` was asked for a total of steps the run has already reached; nothing written."""


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


class Trainer:
    """Holds the networks, optimisers, data and random state of one training run."""

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
        # ranks of a data-parallel run (inpainting/distributed.py); one process: no-ops
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

    # ------------------------------------------------------------------ state
    def state(self):
        """Everything needed to continue exactly: weights, optimisers, RNG, data position."""
        return {
            "step": np.asarray(self.step),
            "generator": self.generator.state_dict(),
            "local_critic": self.local_critic.state_dict(),
            "global_critic": self.global_critic.state_dict(),
            "g_optimizer": self.g_optimizer.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict(),
            "rng": np.asarray(json.dumps(self.rng.bit_generator.state)),
            "data": self.dataset.state_dict(),
            "config": np.asarray(json.dumps(self.config.to_dict())),
        }

    def load_state(self, state, *, new_data=False):
        """Restore a checkpoint's state. ``new_data``: the checkpoint was trained on another
        data set (a forced recipe change): the data order starts a fresh epoch of this one."""
        self.step = int(state["step"])
        self.generator.load_state_dict(state["generator"])
        self.local_critic.load_state_dict(state["local_critic"])
        self.global_critic.load_state_dict(state["global_critic"])
        self.g_optimizer.load_state_dict(state["g_optimizer"])
        self.d_optimizer.load_state_dict(state["d_optimizer"])
        self.rng.bit_generator.state = json.loads(str(state["rng"]))
        data = {k: int(v) for k, v in state["data"].items()}
        if new_data:     # the old position means nothing in another list of images
            data = dict(self.dataset.state_dict(), epoch=data["epoch"] + 1, position=0)
        self.dataset.load_state_dict(data)

    def save_checkpoint(self):
        path = ckpt.save(self.out_dir / "checkpoints", self.step, self.state(),
                         keep=self.config.keep_checkpoints)
        return path

    def read_checkpoint(self, path):
        """The checkpoint file ``path`` as the nested dict ``resume`` restores
        (``checkpoint.load``); a subclass may read it another way. ``resume`` turns any
        error raised here into a ``CheckpointError`` that names the file."""
        return ckpt.load(path)

    def resume(self, force=False):
        """Load the newest checkpoint of ``out_dir``; returns its path (None if none).

        A checkpoint that cannot be read, or was written by a run whose networks have other
        shapes (``RESUME_FIELDS``), raises ``CheckpointError`` (a ValueError) naming the file;
        so does one written with another recipe (any field but ``run_files.FREE_FIELDS``:
        batch size, data, learning rate, ...) unless ``force``.
        """
        found = ckpt.latest(self.out_dir / "checkpoints")
        if found is None:
            return None
        try:
            state = self.read_checkpoint(found)
        except ckpt.CheckpointError:
            raise
        except Exception as error:     # whatever nnlite.load raises on a foreign file
            raise ckpt.CheckpointError(f"{found} is not a readable training checkpoint "
                                       f"({_short(error)}); delete it to resume from the "
                                       "previous one") from None
        new_data = self._check_resume_config(found, state, force)
        try:
            self.load_state(state, new_data=new_data)
        except (KeyError, ValueError, TypeError, IndexError) as error:   # StateDictError too
            reason = (f"it has no {error.args[0]!r} entry" if type(error) is KeyError
                      else _short(error))
            raise ckpt.CheckpointError(f"cannot resume from {found}: {reason}") from None
        return found

    def _check_resume_config(self, path, state, force=False):
        """One line naming the file and every differing shape (or, unless ``force``, recipe)
        field, before any weight moves. Returns whether the forced change is of the data
        (``DATA_FIELDS``)."""
        try:
            saved = json.loads(str(state["config"]))
        except (KeyError, ValueError, TypeError):
            return False               # no stored configuration: load_state_dict will tell
        if not isinstance(saved, dict):
            return False
        differing = [name for name in RESUME_FIELDS
                     if name in saved and saved[name] != getattr(self.config, name)]
        if differing:
            was = ", ".join(f"{name}={saved[name]!r}" for name in differing)
            now = ", ".join(f"{name}={getattr(self.config, name)!r}" for name in differing)
            flags = " ".join(f"--{name.replace('_', '-')} {saved[name]}" if name != "attention"
                             else "--no-attention" if not saved[name] else "no --no-attention"
                             for name in differing)
            raise ckpt.CheckpointError(f"{path} was trained with {was}, this run has {now}: "
                                       f"pass {flags} (or the same --config) to resume it")
        changed = run_files.recipe_changes(saved, self.config)
        if changed and not force:
            was = ", ".join(f"{name}={old!r}" for name, old, _ in changed)
            now = ", ".join(f"{name}={new!r}" for name, _, new in changed)
            raise ckpt.CheckpointError(f"{path} was trained with {was}, this run has {now}: "
                                       "the run would not continue exactly; resume with the "
                                       "recorded values, or with force=True (--force) to "
                                       "change the recipe")
        return any(name in DATA_FIELDS for name, _, _ in changed)

    # ------------------------------------------------------------------ loop
    def progress_bar(self, start, total, enabled):
        """The bar ``run`` draws from step ``start`` to ``total`` (tqdm on stderr, hidden
        unless ``enabled``): an object with ``update``, ``set_postfix``, ``set_description``
        and ``close``. A subclass may return its own, e.g. to record what the bar is told."""
        return _progress(start, total, enabled)

    def run(self, iterations=None, *, progress=True, on_log=None):
        """Train until ``iterations`` generator steps in total (default: the config's).

        Writes ``config.toml``, ``log.jsonl``, checkpoints every
        ``checkpoint_every`` steps and on Ctrl-C or SIGTERM (then raises ``ckpt.Stopped``, a
        KeyboardInterrupt), and sample/loss figures every ``sample_every`` steps. First
        removes the temporary files of interrupted writes, repairs ``log.jsonl`` and records
        any configuration change in ``config.toml`` (``run_files``). Returns the last
        logged losses.
        """
        from .viz import save_loss_plot, save_sample_grid

        c = self.config
        target = c.iterations if iterations is None else iterations
        if self.step >= target:
            raise NothingToTrain(
                f"the run in {self.out_dir} is already at step {self.step} >= iterations "
                f"{target}: nothing was trained and no file was written; set iterations "
                f"(--iterations) above {self.step} to train further")
        if not self.comm.is_root:          # ranks > 0: the same updates, no file written
            return distributed.run_other_rank(self, target)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        run_files.remove_interrupted_writes(self.out_dir)
        log_path = self.out_dir / "log.jsonl"
        run_files.repair_log(log_path, self.step)      # steps past the checkpoint run again
        run_files.record_config(self.out_dir, c, self.step)
        bar = self.progress_bar(self.step, target, progress)
        last, started, done_at_start = {}, time.perf_counter(), self.step
        stop, finished = ckpt.StopRequest(), False
        with stop.installed():
            try:
                while self.step < target:
                    last = self.iteration()
                    stopping = self.comm.any(stop.requested)   # every rank stops at one step
                    rate = (self.step - done_at_start) / max(time.perf_counter() - started, 1e-9)
                    last["steps_per_s"] = rate
                    if self.step % c.log_every == 0 or self.step == target:
                        with open(log_path, "a") as handle:
                            handle.write(json.dumps({"step": self.step, **last}) + "\n")
                        if on_log is not None:
                            on_log(self.step, last)
                    bar.update(1)
                    bar.set_postfix(_postfix(last, rate))
                    if self.step - done_at_start == 1:     # the first step sets things up
                        first_done = time.perf_counter()
                    if self.step - done_at_start == 1 + run_files.ESTIMATE_AFTER:
                        estimate = run_files.estimate(
                            target - done_at_start, time.perf_counter() - first_done,
                            warmup=self.warming_up and c.warmup_iterations < target)
                        if estimate:
                            bar.set_description(estimate)
                    if stopping or self.step % c.checkpoint_every == 0 \
                            or self.step == target:
                        path = self.save_checkpoint()
                    if self.step % c.sample_every == 0 or self.step == target:
                        save_sample_grid(self, self.out_dir / f"samples_{self.step:07d}.png")
                        save_loss_plot(log_path, self.out_dir / "losses.png")
                    if stopping:
                        finished = True
                        print(f"\ninterrupted: checkpoint saved to {path} at the end of step "
                              f"{self.step}; continue with --resume")
                        raise ckpt.Stopped(stop.signum or signal.SIGINT)   # stopped by another rank: as Ctrl-C
            except KeyboardInterrupt:
                bar.close()
                if not finished:   # a second Ctrl-C: no half-iteration checkpoint
                    print(f"\nstopped at once: the newest checkpoint in "
                          f"{self.out_dir / 'checkpoints'} is kept; continue with --resume")
                raise
        bar.close()
        return last


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


def _short(error, limit=300):
    """An exception's message on one line, cut to ``limit`` characters."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _postfix(terms, rate):
    """The progress bar's figures: the critic loss only once critics train (not in warm-up)."""
    shown = {"d": terms["d_loss"]} if "d_loss" in terms else {}
    shown.update(g=terms["g_loss"], l1=terms["l1"])
    return {**{key: f"{value:.3f}" for key, value in shown.items()}, "it_s": f"{rate:.2f}"}


def _progress(start, total, enabled):
    from tqdm import tqdm

    return tqdm(total=total, initial=start, disable=not enabled, unit="it", dynamic_ncols=True)
