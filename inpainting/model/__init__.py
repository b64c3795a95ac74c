"""Floor 2, the model: the generator and critics, contextual attention (fused layer, named
steps, the loop reference), the losses, the attention colours, and ``inpaint`` (the model on
one image of any size).

See docs/architecture.md for the floors and the rule between them."""
