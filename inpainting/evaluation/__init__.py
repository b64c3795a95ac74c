"""Floor 5, evaluation: metrics, baselines, the evaluation protocol and its statistics and report.

See docs/architecture.md for the floors and the rule between them."""
