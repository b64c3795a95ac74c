"""Floor 3, weights: the project's model files, training checkpoints, the authors' TensorFlow
checkpoints and their conversion. The shipped model file lives in this folder too.

See docs/architecture.md for the floors and the rule between them."""
