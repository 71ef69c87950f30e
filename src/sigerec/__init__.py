"""sigerec: graph-based multimodal recommendation (SIGE and baselines)."""

__version__ = "0.1.0"
