"""Floor 1, data: image files, training images and crops, hole masks, the texture suite, a
file's own pixel values.

See docs/architecture.md for the floors and the rule between them."""
