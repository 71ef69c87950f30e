"""Models: one file each, found through the registry."""

from sigerec.models.base import Recommender
from sigerec.models.registry import get_model_class, model_names, register_model

__all__ = ["Recommender", "get_model_class", "model_names", "register_model"]
