"""Property: a config file or search-space file is read exactly as written, or refused clearly.

Hypothesis writes YAML documents of any shape (and bytes that are not YAML at all), plus
well-formed settings files whose values must come back unchanged. ``sigerec train --config``
and ``sigerec tune --space`` either use exactly what the file says or raise a one-line
``SigerecError`` naming the file (or the setting at fault); never another exception, and never
a silently changed value (a key given twice, an integer rounded through a float).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sigerec.config import SettingError, read_config_file
from sigerec.errors import SigerecError
from sigerec.search_space import read_space_file
from sigerec.training.runner import resolve_config

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
SETTING_NAMES = [
    "epochs",
    "seed",
    "learning_rate",
    "topk",
    "n_layers",
    "reg_weight",
    "modalities",
    "training",
    "dropout",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(blacklist_categories=["Cs"]), max_size=5),
)
KEYS = SCALARS.filter(lambda v: not (isinstance(v, float) and math.isnan(v)))  # NaN is never equal to a key
YAML_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.one_of(st.sampled_from(SETTING_NAMES), KEYS), children, max_size=3)
    ),
    max_leaves=8,
)


def damaged(data: bytes, cut: int | None, insert: bytes) -> bytes:
    if cut is None:
        return data
    cut %= len(data) + 1
    return data[:cut] + insert + data[cut:]


def yaml_files():
    """Bytes of a YAML document of any shape, possibly with bytes cut in; or bytes of any kind."""
    document = st.builds(
        lambda value, cut, insert: damaged(yaml.safe_dump(value, allow_unicode=True).encode(), cut, insert),
        YAML_VALUES,
        st.none() | st.integers(0, 1000),
        st.sampled_from([b"", b":", b"\n  - ", b"\xff", b"[", b"&a ", b"*a", b"!!python/object:os.system ", b"\t"]),
    )
    return st.one_of(document, st.binary(max_size=40))


def assert_clear(message: str, path: Path, content) -> None:
    """One line naming the file, or a setting the file holds (errors found once settings are combined)."""
    assert "\n" not in message, message
    keys = _keys(content)
    assert str(path) in message or any(f"'{key}'" in message for key in keys), message


def _keys(content) -> set[str]:
    if isinstance(content, dict):
        return {str(k) for k in content} | {k for v in content.values() for k in _keys(v)}
    return set()


def _parsed(data: bytes):
    try:
        return yaml.safe_load(data)
    except (yaml.YAMLError, RecursionError):
        return None


@PROPERTY
@given(yaml_files())
def test_any_config_file_is_used_or_refused_with_a_message_naming_it(data):
    with tempfile.TemporaryDirectory() as root:
        path = Path(root) / "config.yaml"
        path.write_bytes(data)
        try:
            resolve_config("lightgcn", root, path)
        except SigerecError as error:
            assert_clear(str(error), path, _parsed(data))
            event("refused")
            return
    event("used")


@st.composite
def settings_files(draw) -> dict:
    """Valid settings for LightGCN, flat or in a saved run's sections."""
    values = {
        "seed": draw(st.integers(0, 2**32 - 1)),
        "epochs": draw(st.integers(1, 10**6)),
        "learning_rate": draw(st.floats(1e-12, 10.0)),
        "topk": draw(st.lists(st.integers(1, 100), max_size=3)) + [20],
        "mask_valid_in_test": draw(st.booleans()),
        "n_layers": draw(st.integers(0, 6)),
        "reg_weight": draw(st.floats(0.0, 1.0)),
    }
    chosen = draw(st.lists(st.sampled_from(sorted(values)), unique=True, min_size=1))
    return {name: values[name] for name in chosen}


@PROPERTY
@given(settings_files(), st.booleans())
def test_every_setting_of_a_config_file_is_used_exactly_as_written(values, in_sections):
    training = {k: v for k, v in values.items() if k not in {"n_layers", "reg_weight"}}
    model = {k: v for k, v in values.items() if k in {"n_layers", "reg_weight"}}
    document = {"training": training, "model_params": model} if in_sections else values
    with tempfile.TemporaryDirectory() as root:
        path = Path(root) / "config.yaml"
        path.write_text(yaml.safe_dump(document))
        config = resolve_config("lightgcn", root, path)
    used = {**vars(config.training), **vars(config.model_params)}
    for name, value in values.items():
        assert used[name] == (tuple(value) if isinstance(value, list) else value), name
        assert type(used[name]) is type(tuple(value) if isinstance(value, list) else value), name


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"epochs: 10\nepochs: 20\n", "line 2, column 1: not valid YAML (the key 'epochs' is given twice)"),
        (b"epochs: 10\ntraining: {epochs: 20}\n", "setting 'epochs' is given twice"),
        (b"1: 2\n", "setting names are text, found 1"),
        (b"seed: 1 # caf\xe9\n", "not valid YAML text"),
        (b"[" * 5000, "nested too deeply"),
        (b"epochs: .inf\n", "setting 'epochs' must be an integer, got inf"),
        (b"learning_rate: " + b"9" * 400 + b"\n", "setting 'learning_rate' must be a finite number"),
        (b"topk: '[1,'\n", "setting 'topk' must be a list"),
    ],
)
def test_config_files_that_once_gave_a_traceback_or_a_silent_value_get_a_clear_error(tmp_path, content, expected):
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    with pytest.raises(SigerecError) as caught:
        resolve_config("lightgcn", str(tmp_path), path)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_an_integer_beyond_2_to_the_53_is_read_exactly_and_a_seed_that_large_is_refused(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("seed: 9007199254740993\n")  # 2**53 + 1: a float round trip gives 2**53
    assert read_config_file(path) == {"seed": 9007199254740993}
    with pytest.raises(SettingError, match=r"'seed' must be in \[0, 4294967295\]"):  # numpy's and torch's range
        resolve_config("lightgcn", str(tmp_path), path)


def test_a_yaml_merge_key_may_be_overridden_without_counting_as_a_repeated_key(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("base: &base {epochs: 5, seed: 1}\ntraining:\n  <<: *base\n  epochs: 7\n")
    flat = read_config_file(path)  # YAML's own rule: an explicit key wins over a merged one
    assert (flat["epochs"], flat["seed"]) == (7, 1)


# --- search spaces ----------------------------------------------------------------------------

DIMENSIONS = st.one_of(
    YAML_VALUES,
    st.fixed_dictionaries(
        {"low": SCALARS, "high": SCALARS},
        optional={"log": SCALARS, "step": SCALARS, "source": SCALARS, "choices": YAML_VALUES},
    ),
)


@PROPERTY
@given(
    st.one_of(
        st.dictionaries(st.sampled_from(SETTING_NAMES) | KEYS, DIMENSIONS, max_size=3).map(
            lambda space: yaml.safe_dump(space, allow_unicode=True).encode()
        ),
        yaml_files(),
    )
)
def test_any_search_space_file_gives_finite_dimensions_or_is_refused(data):
    with tempfile.TemporaryDirectory() as root:
        path = Path(root) / "space.yaml"
        path.write_bytes(data)
        try:
            space = read_space_file(path)
        except SigerecError as error:
            assert "\n" not in str(error) and str(path) in str(error), str(error)
            event("refused")
            return
    for name, dimension in space.items():
        assert isinstance(name, str)
        if dimension.choices is not None:
            assert all(c is None or isinstance(c, str | bool | int | float) for c in dimension.choices)
            assert all(math.isfinite(c) for c in dimension.choices if isinstance(c, float))
        else:
            assert math.isfinite(dimension.low) and math.isfinite(dimension.high) and dimension.low <= dimension.high
            assert isinstance(dimension.log, bool)
            assert dimension.step is None or (math.isfinite(dimension.step) and dimension.step > 0)
    event("read")
