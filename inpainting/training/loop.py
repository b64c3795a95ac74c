"""A ``Trainer``'s loop: ``run`` trains to a total number of steps, writing the run folder
(``config.toml``, ``log.jsonl``, checkpoints, sample grids and loss plots) and stopping
cleanly on Ctrl-C or SIGTERM; a progress bar shows the losses and the speed.

``TrainingLoop`` is a base class of ``inpainting.training.train.Trainer``; ``run`` calls the
trainer's ``iteration`` and ``save_checkpoint``.
"""
from __future__ import annotations

import json
import signal
import time

from ..weights import checkpoint as ckpt
from . import distributed, run_files

__all__ = ["NothingToTrain", "TrainingLoop"]


class NothingToTrain(ValueError):
    """``run`` was asked for a total of steps the run has already reached; nothing written."""


class TrainingLoop:
    """``run``: the loop over iterations and what it writes (a ``Trainer`` base class)."""

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


def _postfix(terms, rate):
    """The progress bar's figures: the critic loss only once critics train (not in warm-up)."""
    shown = {"d": terms["d_loss"]} if "d_loss" in terms else {}
    shown.update(g=terms["g_loss"], l1=terms["l1"])
    return {**{key: f"{value:.3f}" for key, value in shown.items()}, "it_s": f"{rate:.2f}"}


def _progress(start, total, enabled):
    from tqdm import tqdm

    return tqdm(total=total, initial=start, disable=not enabled, unit="it", dynamic_ncols=True)
