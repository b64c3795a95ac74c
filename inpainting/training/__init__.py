"""Floor 4, training: the release's recipe (``Trainer``, ``TrainConfig``), run folders, data-
parallel ranks, prefetching, and the figures drawn during training.

See docs/architecture.md for the floors and the rule between them."""
