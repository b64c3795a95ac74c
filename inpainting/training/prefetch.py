"""Decode the next training batch on a background thread while the device computes.

On a GPU the training step runs asynchronously, so the host is free while it works;
reading and augmenting the next batch (``ImageFolder.next_batch``: PNG/JPEG decoding,
crops, flips) can happen then instead of between steps. ``Prefetching`` wraps a
dataset with the same interface (``next_batch``, ``state_dict``, ``load_state_dict``):

* the wrapped dataset is still called in order, one batch at a time, by one thread at
  a time, so the batches are exactly the ones it would give without the wrapper;
* ``state_dict()`` is the state *after the last batch handed out* (recorded before the
  background read starts), so a checkpoint resumes at the right batch;
* ``load_state_dict`` discards a batch read ahead.

The trainer uses it on devices other than the CPU (on the CPU both cores are busy with
the step itself, and a decoding thread would only take time from it).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

__all__ = ["Prefetching"]


class Prefetching:
    """``dataset`` with its next batch read ahead on one background thread."""

    def __init__(self, dataset):
        self.dataset = dataset
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
        self._pending = None          # (batch size, Future) of the batch read ahead
        self._state = None            # the dataset's state after the last batch handed out

    def next_batch(self, n):
        if self._pending is not None and self._pending[0] == n:
            batch = self._pending[1].result()      # re-raises what the reader raised
        else:
            self._discard()
            batch = self.dataset.next_batch(n)
        self._pending = None
        self._state = self.dataset.state_dict()     # nobody else touches it now
        self._pending = (n, self._executor.submit(self.dataset.next_batch, n))
        return batch

    def state_dict(self):
        if self._pending is None:
            return self.dataset.state_dict()
        return dict(self._state)

    def load_state_dict(self, state):
        self._discard()
        self.dataset.load_state_dict(state)

    def _discard(self):
        """Wait for a batch read ahead and drop it (its reader must not run concurrently)."""
        if self._pending is not None:
            future, self._pending = self._pending[1], None
            future.exception()                     # wait; an error there no longer matters
            if self._state is not None:
                self.dataset.load_state_dict(self._state)

    def close(self):
        self._discard()
        self._executor.shutdown(wait=True)

    def __getattr__(self, name):                   # everything else: the dataset's
        return getattr(self.dataset, name)

    def __len__(self):
        return len(self.dataset)
