"""Full-ranking evaluation (MMRec's protocol) and its top-K metrics; the top-k rule is ``sigerec.ranking``."""

from sigerec.evaluation.evaluator import evaluate
from sigerec.evaluation.metrics import METRIC_NAMES, metric_keys, metric_sums

__all__ = ["METRIC_NAMES", "evaluate", "metric_keys", "metric_sums"]
