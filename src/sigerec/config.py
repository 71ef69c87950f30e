"""Typed configuration with defaults in one place, layered like RecBole/MMRec.

Layers, later ones winning: the dataclass defaults below (MMRec's ``overall.yaml``) and
each model's own config class < a YAML file (flat ``key: value``, MMRec's key names) <
``--set key=value`` < explicit CLI flags such as ``--seed``. Unknown keys are errors
that suggest the closest known key, so a typo never silently falls back to a default.

A field's type says what it accepts: ``Literal[...]`` for a choice, ``Annotated[int, Range(...)]``
(or an alias such as :data:`PositiveInt`) for a bounded number. Every config class checks its
fields against those types when it is built (:func:`check_settings`), so each model gets the
same error for a bad value without writing a validator.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from sigerec.errors import SigerecError


@dataclass(frozen=True)
class Range:
    """The values a numeric setting accepts, declared with its type: ``Annotated[float, Range(0, 1)]``."""

    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True

    def contains(self, value: float) -> bool:
        if isinstance(value, float) and math.isnan(value):  # NaN compares false with everything: it would pass
            return False
        if self.low is not None and (value < self.low or (value == self.low and not self.low_inclusive)):
            return False
        return self.high is None or (value < self.high or (value == self.high and self.high_inclusive))

    def describe(self) -> str:
        low, high = _bound(self.low), _bound(self.high)
        if self.low is not None and self.high is not None:
            left, right = "[" if self.low_inclusive else "(", "]" if self.high_inclusive else ")"
            return f"in {left}{low}, {high}{right}"
        if self.low is not None:
            return f"{'>=' if self.low_inclusive else '>'} {low}"
        return f"{'<=' if self.high_inclusive else '<'} {high}"


def _bound(value: float | None) -> str:
    """Integers in full (a seed's 4294967295, not 4.29497e+09); other numbers in short form."""
    return str(value) if isinstance(value, int | None) else f"{value:g}"


NonNegativeInt = Annotated[int, Range(low=0)]
PositiveInt = Annotated[int, Range(low=1)]
NonNegativeFloat = Annotated[float, Range(low=0)]
PositiveFloat = Annotated[float, Range(low=0, low_inclusive=False)]
UnitInterval = Annotated[float, Range(0, 1)]  # a weight or share, both ends allowed
DropoutRate = Annotated[float, Range(0, 1, high_inclusive=False)]  # 1 would drop everything


class SettingError(SigerecError):
    """A setting's value that its declared type does not accept; ``key`` names the setting."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def _value_problem(value: Any, annotation: Any) -> str | None:
    """What ``value`` should be instead, or None when ``annotation`` accepts it."""
    origin = typing.get_origin(annotation)
    if annotation is bool:
        return None if isinstance(value, bool) else "true or false"
    if annotation is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if annotation is float:
        return None if is_finite_number(value) else "a finite number"
    if annotation is str:
        return None if isinstance(value, str) else "text"
    if origin is Annotated:
        base, *extras = typing.get_args(annotation)
        problem = _value_problem(value, base)
        if problem is not None:
            return problem
        for extra in extras:
            if isinstance(extra, Range) and isinstance(value, (int, float)) and not extra.contains(value):
                return extra.describe()
        return None
    if origin is Literal:
        choices = typing.get_args(annotation)
        return None if value in choices else "one of " + ", ".join(str(c) for c in choices)
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            return "a list"
        elements = typing.get_args(annotation)
        if elements[-1] is not Ellipsis and len(value) != len(elements):
            return f"a list of {len(elements)} values"
        for position, item in enumerate(value):
            problem = _value_problem(item, elements[0] if elements[-1] is Ellipsis else elements[position])
            if problem is not None:
                return f"a list of values each {problem}"
    return None


def is_finite_number(value: Any) -> bool:
    """A number with a finite float value (an int beyond float's range, 10**400, has none)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


@cache
def _field_types(config_class: type) -> dict[str, Any]:
    return typing.get_type_hints(config_class, include_extras=True)


def check_settings(config: Any) -> None:
    """Raise one clear error for the first field whose value its declared type does not accept."""
    for name, annotation in _field_types(type(config)).items():
        value = getattr(config, name)
        problem = _value_problem(value, annotation)
        if problem is not None:
            raise SettingError(name, f"setting '{name}' must be {problem}, got {value!r}.")


class CheckedSettings:
    """Mixin of every config dataclass: its fields are checked whenever one is built or replaced
    (so a config made in code is checked too, not only one read from files and flags)."""

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass
class TrainingConfig(CheckedSettings):
    """The training and evaluation protocol shared by every model (MMRec's defaults)."""

    learning_rate: PositiveFloat = 1e-3
    # lr at epoch e is learning_rate * a ** (e / b), as MMRec's LambdaLR.
    learning_rate_scheduler: tuple[PositiveFloat, PositiveFloat] = (1.0, 50.0)
    weight_decay: NonNegativeFloat = 0.0
    train_batch_size: PositiveInt = 2048
    epochs: PositiveInt = 1000
    # Stop after this many evaluations in a row without a strictly better valid metric
    # (MMRec stops when the count exceeds stopping_step).
    stopping_step: NonNegativeInt = 20
    valid_metric: str = "recall@20"
    # The items the valid ranking runs over (early stopping and the best checkpoint): "cold" for a
    # cold-items split, whose all-item valid metric says little (about 0.01 on ML-100k).
    valid_candidates: Literal["all", "cold", "warm"] = "all"
    topk: tuple[PositiveInt, ...] = (5, 10, 20, 50)
    eval_step: PositiveInt = 1
    # Users per evaluation chunk: bounds memory at chunk x n_items scores.
    eval_batch_size: PositiveInt = 512
    # MMRec masks only training items, also at test time; True also masks valid items.
    mask_valid_in_test: bool = False
    # numpy and torch take seeds in 0..2**32-1 (a larger or negative one crashed start-up).
    seed: Annotated[int, Range(0, 2**32 - 1)] = 999
    device: str = "cpu"
    # Content modalities a multimodal model uses, e.g. (text, image); empty = every
    # <modality>_feat.npy in the dataset folder. Unknown names are errors.
    modalities: tuple[str, ...] = ()
    # How a training step computes its batch (sigerec/training/step_scope.py): "full" propagates
    # over the whole graph, as MMRec (exact, Adam); "batch" over the batch's neighbourhood only,
    # with sparse gradients and lazy Adam (CPU); "auto" = "batch" when neighbour_fanout > 0.
    step_scope: Literal["auto", "full", "batch"] = "auto"
    # Batch-local steps only: each node keeps at most this many sampled neighbours per
    # user-item layer (an unbiased estimate, docs/scaling.md); 0 = every neighbour (exact).
    neighbour_fanout: NonNegativeInt = 0
    # "bf16": the similarity products of contrastive losses (InfoNCE, SIGE's and MGCN's
    # heaviest step) in bfloat16, accumulated in float32; everything else stays float32.
    # Off by default: docs/scaling.md measures its speed and accuracy effect.
    mixed_precision: Literal["off", "bf16"] = "off"


@dataclass
class ModelConfig(CheckedSettings):
    """Base class of every model's hyperparameters; subclasses add typed fields with defaults."""

    embedding_size: PositiveInt = 64


# The rule every content model applies to a cold item (no training interaction) unless told
# otherwise: its k most content-similar warm items lend their final vectors
# (graphs/cold_neighbours.py, the rule serving also uses for items added later).
DEFAULT_COLD_ITEM_RULE = "warm_neighbours"
ColdItemRule = Literal["warm_neighbours", "none"]
ColdItemNorm = Literal["mean", "neighbours"]


@dataclass
class ColdItemSettings(ModelConfig):
    """Base of the configs of models that score cold items from content (``can_score_cold_items``).

    - ``cold_item_rule`` ("warm_neighbours"): a cold item's final vector is the mean over
      modalities of the mean final vector of its ``cold_item_k`` most cosine-similar warm items
      by raw features (``graphs/cold_neighbours.py``); "none": its untrained vector, as before.
      A model may accept more values (its own content branch) by redeclaring the field with a
      wider ``Literal`` and default :data:`DEFAULT_COLD_ITEM_RULE`.
    - ``cold_item_k`` (10): the warm neighbours per modality.
    - ``cold_item_norm`` ("neighbours"): the length of a warm_neighbours vector: "neighbours",
      the mean length of the neighbours' vectors (the mean's direction kept), or "mean", the
      plain mean's, shorter than the neighbours' when they disagree, which sinks cold items in
      an all-item ranking. Chosen on the all-item valid ranking (warm and cold items compete,
      as on a server) of ml100k-cold, baby-cold and ml100k-mixed; "mean" scores slightly
      higher when cold items are ranked only among themselves (docs/benchmarks.md).
    None of them changes training, users or warm items.
    """

    cold_item_rule: ColdItemRule = DEFAULT_COLD_ITEM_RULE
    cold_item_k: PositiveInt = 10
    cold_item_norm: ColdItemNorm = "neighbours"


def config_fields(config_class: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(config_class)}


def _coerce(value: Any, annotation: Any, key: str, source: str) -> Any:
    """Turn a YAML/CLI value into the declared field type, or explain what is expected.

    Ranges and choices are checked afterwards, by :func:`check_settings`.
    """
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _coerce(value, typing.get_args(annotation)[0], key, source)
    if origin is Literal:
        choices = typing.get_args(annotation)
        return value if value in choices else str(value)
    try:
        if annotation is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in {"true", "false", "yes", "no", "1", "0"}:
                return value.lower() in {"true", "yes", "1"}
            raise ValueError
        if annotation is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, int):
                return value  # as given: a float round trip would change ints beyond 2**53
            if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
                return int(value)
            number = float(value)  # "3.0", 3.0; inf and nan are no integers
            if not number.is_integer():
                raise ValueError
            return int(number)
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
    except (TypeError, ValueError, OverflowError, yaml.YAMLError):  # OverflowError: float(10**400)
        pass
    else:
        return value
    expected = _value_problem(value, annotation) or getattr(annotation, "__name__", str(annotation))
    raise SettingError(key, f"{source}: setting '{key}' must be {expected}, got {value!r}.")


def coerce_settings(config_class: type, settings: dict[str, Any], source: str) -> dict[str, Any]:
    """``settings`` turned into ``config_class``'s field types (not yet range-checked)."""
    types = _field_types(config_class)
    coerced = {}
    for key, value in settings.items():
        if key not in types:
            raise unknown_key_error(key, list(types), source)
        coerced[key] = _coerce(value, types[key], key, source)
    return coerced


def build_config(config_class: type, values: dict[str, Any], sources: dict[str, str]) -> Any:
    """``config_class(**values)``, checked once; an error names the source of the bad value."""
    try:
        return config_class(**values)
    except SettingError as error:
        raise SettingError(error.key, f"{sources.get(error.key, 'default')}: {error}") from None


def unknown_key_error(key: str, known: list[str], source: str) -> SigerecError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return SigerecError(f"{source}: unknown setting {key!r}.{hint} Known settings: {', '.join(sorted(known))}.")


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


class _SettingsLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last, silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: list[Any] = []
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *defaults" may be overridden, by design
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice", key_node.start_mark
                )
            seen.append(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml_file(path: str | Path, what: str) -> Any:
    """The content of a YAML file, or an error naming the file (``what``: e.g. "config file")."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SigerecError(f"{path}: cannot read the {what} ({error.strerror or error}).") from None
    try:
        # Bytes, so that PyYAML detects UTF-8/UTF-16 (with a byte-order mark) and refuses other encodings.
        return yaml.load(data, Loader=_SettingsLoader)  # a SafeLoader: builds no Python objects
    except yaml.YAMLError as error:
        raise SigerecError(f"{path}{_yaml_problem(error)}") from None
    except RecursionError:
        raise SigerecError(f"{path}: nested too deeply to be a {what}.") from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    """Where and what, in one line (PyYAML's own message spans several, quoting the file)."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark, problem = error.problem_mark, " ".join(part for part in (error.context, error.problem) if part)
        return f", line {mark.line + 1}, column {mark.column + 1}: not valid YAML ({problem})."
    if isinstance(error, yaml.reader.ReaderError):
        return f": not valid YAML text ({error.reason} at byte {error.position}); save it as UTF-8."
    return f": not valid YAML ({' '.join(str(error).split())})."


SETTING_SECTIONS = ("training", "model_params")  # how a saved run's config.yaml groups its settings


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A flat YAML mapping of settings (MMRec style); a saved run's config.yaml also works."""
    path = Path(path)
    content = read_yaml_file(path, "config file")
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise SigerecError(f"{path}: expected a mapping of 'key: value' settings.")
    flat: dict[str, Any] = {}
    for key, value in content.items():
        # Saved run configs group settings in sections; accept both shapes.
        section = value if key in SETTING_SECTIONS and isinstance(value, dict) else {key: value}
        for name, setting in section.items():
            if not isinstance(name, str):
                raise SigerecError(f"{path}: setting names are text, found {name!r}.")
            if name in flat:
                raise SigerecError(f"{path}: setting {name!r} is given twice (at the top and in a section); keep one.")
            flat[name] = setting
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
    """Apply ``layers`` (``(source, settings)`` in increasing priority) over the defaults.

    Values are checked once, on the result: a bad value in one layer that a later layer
    replaces is no error, and an error names the layer its value came from.
    """
    training_values: dict[str, Any] = {}
    model_values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for source, settings in layers:
        settings = {k: v for k, v in settings.items() if k not in {"model", "data"}}
        training_part, model_part = split_settings(settings, model_config_class, source)
        training_values.update(coerce_settings(TrainingConfig, training_part, source))
        model_values.update(coerce_settings(model_config_class, model_part, source))
        sources.update(dict.fromkeys(settings, source))
    training = build_config(TrainingConfig, training_values, sources)
    model_params = build_config(model_config_class, model_values, sources)
    return RunConfig(model=model_name, data=data, training=training, model_params=model_params)
