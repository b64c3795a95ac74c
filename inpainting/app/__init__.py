"""Floor 6, applications: the ``inpainting`` command, inpainting files, large images, and the web
app (``web/``).

See docs/architecture.md for the floors and the rule between them."""
