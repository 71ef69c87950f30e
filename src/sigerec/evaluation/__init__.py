"""Full-ranking evaluation (MMRec's protocol) and its top-K metrics."""

from sigerec.evaluation.evaluator import evaluate, top_k_items
from sigerec.evaluation.metrics import METRIC_NAMES, metric_keys, metric_sums

__all__ = ["METRIC_NAMES", "evaluate", "metric_keys", "metric_sums", "top_k_items"]
