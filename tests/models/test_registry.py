"""The model registry (models/registry.py): names, and settings that cannot clash."""

import pytest

from sigerec.config import TrainingConfig
from sigerec.models import get_model_class, model_names


def test_model_and_training_settings_do_not_share_names():
    from sigerec.config import config_fields

    training = set(config_fields(TrainingConfig))
    for name in model_names():
        assert not training & set(config_fields(get_model_class(name).config_class))


def test_an_unknown_model_name_suggests_the_closest_registered_one():
    from sigerec.errors import SigerecError

    with pytest.raises(SigerecError, match="Did you mean 'lightgcn'"):
        get_model_class("lightgc")
