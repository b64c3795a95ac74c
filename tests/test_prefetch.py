"""Background batch prefetching: the same batches in the same order as without it, and a
state that resumes at the batch after the last one handed out."""
import numpy as np

from inpainting.data.datasets import demo_corpus
from inpainting.training.prefetch import Prefetching


def _corpus():
    return demo_corpus("train", 32, seed=3)


def test_prefetching_gives_the_same_batches_and_resumable_states():
    plain, ahead = _corpus(), Prefetching(_corpus())
    states = []
    for n in (2, 2, 3, 2):                   # a size change discards the batch read ahead
        np.testing.assert_array_equal(ahead.next_batch(n), plain.next_batch(n))
        assert ahead.state_dict() == plain.state_dict()
        states.append(ahead.state_dict())
    ahead.load_state_dict(states[1])         # rewind: the batch read ahead is dropped
    plain.load_state_dict(states[1])
    for _ in range(2):
        np.testing.assert_array_equal(ahead.next_batch(2), plain.next_batch(2))
    assert len(ahead) == len(plain)
    ahead.close()
