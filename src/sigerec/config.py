"""Typed configuration with defaults in one place, layered like RecBole/MMRec.

Layers, later ones winning: the dataclass defaults below (MMRec's ``overall.yaml``) and
each model's own config class < a YAML file (flat ``key: value``, MMRec's key names) <
``--set key=value`` < explicit CLI flags such as ``--seed``. Unknown keys are errors
that suggest the closest known key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sigerec.errors import SigerecError


@dataclass
class TrainingConfig:
    """The training and evaluation protocol shared by every model (MMRec's defaults)."""

    learning_rate: float = 1e-3
    # lr at epoch e is learning_rate * a ** (e / b), as MMRec's LambdaLR.
    learning_rate_scheduler: tuple[float, float] = (1.0, 50.0)
    weight_decay: float = 0.0
    train_batch_size: int = 2048
    epochs: int = 1000
    # Stop after this many evaluations in a row without a strictly better valid metric
    # (MMRec stops when the count exceeds stopping_step).
    stopping_step: int = 20
    valid_metric: str = "recall@20"
    topk: tuple[int, ...] = (5, 10, 20, 50)
    eval_step: int = 1
    # Users per evaluation chunk: bounds memory at chunk x n_items scores.
    eval_batch_size: int = 512
    # MMRec masks only training items, also at test time; True also masks valid items.
    mask_valid_in_test: bool = False
    seed: int = 999
    device: str = "cpu"
    # Content modalities a multimodal model uses, e.g. (text, image); empty = every
    # <modality>_feat.npy in the dataset folder. Unknown names are errors.
    modalities: tuple[str, ...] = ()


@dataclass
class ModelConfig:
    """Base class of every model's hyperparameters; subclasses add fields with defaults."""

    embedding_size: int = 64


def config_fields(config_class: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(config_class)}


def _coerce(value: Any, annotation: Any, key: str, source: str) -> Any:
    """Turn a YAML/CLI value into the declared field type, or explain what is expected."""
    origin = typing.get_origin(annotation)
    try:
        if annotation is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in {"true", "false", "yes", "no", "1", "0"}:
                return value.lower() in {"true", "yes", "1"}
            raise ValueError
        if annotation is int:
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if annotation is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if annotation is str:
            return str(value)
        if origin is tuple:
            if isinstance(value, str):
                value = yaml.safe_load(value if value.strip().startswith("[") else f"[{value}]")
            if not isinstance(value, (list, tuple)):
                value = [value]
            args = typing.get_args(annotation)
            element = args[0]
            return tuple(_coerce(v, element, key, source) for v in value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    expected = getattr(annotation, "__name__", str(annotation))
    raise SigerecError(f"{source}: '{key}' must be {expected}, got {value!r}.")


def _resolved_types(config_class: type) -> dict[str, Any]:
    return typing.get_type_hints(config_class)


def apply_overrides(config: Any, overrides: dict[str, Any], source: str) -> Any:
    """A copy of ``config`` with ``overrides`` applied and type-checked."""
    types = _resolved_types(type(config))
    changes = {}
    for key, value in overrides.items():
        if key not in types:
            raise unknown_key_error(key, list(types), source)
        changes[key] = _coerce(value, types[key], key, source)
    return dataclasses.replace(config, **changes)


def unknown_key_error(key: str, known: list[str], source: str) -> SigerecError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return SigerecError(f"{source}: unknown setting '{key}'.{hint} Known settings: {', '.join(sorted(known))}.")


def parse_set_options(pairs: list[str]) -> dict[str, Any]:
    """``["key=value", ...]`` from ``--set`` into a dict, values parsed as YAML scalars."""
    parsed: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise SigerecError(f"--set {pair!r}: expected key=value, e.g. --set n_layers=2.")
        key, raw = pair.split("=", 1)
        try:
            parsed[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            parsed[key.strip()] = raw
    return parsed


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A flat YAML mapping of settings (MMRec style); a saved run's config.yaml also works."""
    path = Path(path)
    try:
        content = yaml.safe_load(path.read_text())
    except OSError as error:
        raise SigerecError(f"{path}: cannot read the config file ({error.strerror}).") from None
    except yaml.YAMLError as error:
        raise SigerecError(f"{path}: not valid YAML ({error}).") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise SigerecError(f"{path}: expected a mapping of 'key: value' settings.")
    flat: dict[str, Any] = {}
    for key, value in content.items():
        # Saved run configs group settings in sections; accept both shapes.
        if key in {"training", "model_params"} and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


@dataclass
class RunConfig:
    """Everything that determines a run: model, data and both settings groups."""

    model: str
    data: str
    training: TrainingConfig = field(default_factory=TrainingConfig)
    model_params: ModelConfig = field(default_factory=ModelConfig)

    def to_dict(self) -> dict[str, Any]:
        def plain(config: Any) -> dict[str, Any]:
            return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}

        return {
            "model": self.model,
            "data": self.data,
            "training": plain(self.training),
            "model_params": plain(self.model_params),
        }


def split_settings(settings: dict[str, Any], model_config_class: type, source: str) -> tuple[dict, dict]:
    """Route flat settings to the training or the model group by key name."""
    training_keys = set(config_fields(TrainingConfig))
    model_keys = set(config_fields(model_config_class))
    training, model = {}, {}
    for key, value in settings.items():
        if key in training_keys:
            training[key] = value
        elif key in model_keys:
            model[key] = value
        else:
            raise unknown_key_error(key, sorted(training_keys | model_keys), source)
    return training, model


def resolve_run_config(
    model_name: str,
    data: str,
    model_config_class: type,
    layers: list[tuple[str, dict[str, Any]]],
) -> RunConfig:
    """Apply ``layers`` (``(source, settings)`` in increasing priority) over the defaults."""
    training: TrainingConfig = TrainingConfig()
    model_params = model_config_class()
    for source, settings in layers:
        settings = {k: v for k, v in settings.items() if k not in {"model", "data"}}
        training_part, model_part = split_settings(settings, model_config_class, source)
        training = apply_overrides(training, training_part, source)
        model_params = apply_overrides(model_params, model_part, source)
    validate_training_config(training)
    return RunConfig(model=model_name, data=data, training=training, model_params=model_params)


def validate_training_config(config: TrainingConfig) -> None:
    """Catch values that would only fail deep inside training."""
    positive = ("learning_rate", "train_batch_size", "epochs", "eval_step", "eval_batch_size")
    for name in positive:
        if getattr(config, name) <= 0:
            raise SigerecError(f"setting '{name}' must be positive, got {getattr(config, name)}.")
    if config.stopping_step < 0:
        raise SigerecError("setting 'stopping_step' must be >= 0.")
    if not config.topk or min(config.topk) <= 0:
        raise SigerecError(f"setting 'topk' must list positive cut-offs, got {config.topk}.")
    if config.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SigerecError(
                f"setting 'device' is {config.device!r} but this torch build sees no CUDA GPU; use --device cpu."
            )
    elif config.device != "cpu":
        raise SigerecError(f"setting 'device' must be cpu or cuda[:N], got {config.device!r}.")
    metric, _, k = config.valid_metric.lower().partition("@")
    if metric not in {"recall", "ndcg", "precision", "map", "hit"} or not k.isdigit() or int(k) not in config.topk:
        raise SigerecError(
            f"setting 'valid_metric' is {config.valid_metric!r}; use <recall|ndcg|precision|map|hit>@K "
            f"with K in topk {list(config.topk)}."
        )
