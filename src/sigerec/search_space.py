"""Search spaces: which settings a search varies, over which values, and where those come from.

Each model declares ``search_space`` beside its defaults (a ``ClassVar`` of its class): a dict
of setting name -> :class:`Dimension`. A YAML file given with ``sigerec tune --space FILE``
replaces it, in the same shape::

    n_layers: {choices: [1, 2, 3, 4], source: "MMRec LightGCN.yaml"}
    reg_weight: {low: 1.0e-6, high: 1.0e-2, log: true, source: "MMRec grid 1e-6..1e-2"}
    dropout: {low: 0.1, high: 0.9, step: 0.1}

A dimension is either a list of ``choices`` (any YAML scalars) or a numeric range ``low`` ..
``high`` (both included), integer when both are integers, optionally on a ``log`` scale or in
``step``s. Every name must be a setting of the model or of training; values are checked like
``--set`` values when a trial is configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sigerec.config import is_finite_number, read_yaml_file
from sigerec.errors import SigerecError


@dataclass(frozen=True)
class Dimension:
    """One searched setting: ``choices``, or a range ``low``..``high`` (``log`` scale, ``step``)."""

    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    source: str = ""  # where the values come from (a paper's or MMRec's grid, docs/sige.md)

    @property
    def is_integer(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int) and not isinstance(self.low, bool)

    def describe(self) -> str:
        if self.choices is not None:
            return "{" + ", ".join(str(choice) for choice in self.choices) + "}"
        scale = ", log" if self.log else (f", step {self.step:g}" if self.step else "")
        return f"[{self.low:g}, {self.high:g}{scale}]"


SearchSpace = dict[str, Dimension]


def choices(*values: Any, source: str = "") -> Dimension:
    return Dimension(choices=tuple(values), source=source)


def interval(low: float, high: float, log: bool = False, step: float | None = None, source: str = "") -> Dimension:
    return Dimension(low=low, high=high, log=log, step=step, source=source)


def dimension_from_mapping(name: str, spec: Any, origin: str) -> Dimension:
    """A :class:`Dimension` from its YAML form, or an error naming ``origin`` and the setting."""
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, dict):
        raise SigerecError(f"{origin}: {name!r} must be a list of choices or a mapping with low/high or choices.")
    unknown = set(spec) - {"choices", "low", "high", "log", "step", "source"}
    if unknown:
        raise SigerecError(
            f"{origin}: {name!r} has unknown key(s) {sorted(unknown, key=repr)}; use choices, low, high, log, step, "
            "source."
        )
    if "choices" in spec:
        values = spec["choices"]
        if not isinstance(values, list) or not values:
            raise SigerecError(f"{origin}: {name!r}: choices must be a non-empty list.")
        odd = [v for v in values if not (v is None or isinstance(v, (str, bool)) or is_finite_number(v))]
        if odd:
            raise SigerecError(
                f"{origin}: {name!r}: choices are single values (numbers, text, true/false, null), got {odd[0]!r}."
            )
        return Dimension(choices=tuple(values), source=str(spec.get("source", "")))
    if "low" not in spec or "high" not in spec:
        raise SigerecError(f"{origin}: {name!r} needs choices, or both low and high.")
    low, high = spec["low"], spec["high"]
    if not (is_finite_number(low) and is_finite_number(high)) or low > high:
        raise SigerecError(
            f"{origin}: {name!r}: low and high must be finite numbers with low <= high, got {low!r}, {high!r}."
        )
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SigerecError(f"{origin}: {name!r}: log must be true or false, got {log!r}.")
    if log and low <= 0:
        raise SigerecError(f"{origin}: {name!r}: a log-scale range needs low > 0, got {low!r}.")
    step = spec.get("step")
    if step is not None and (log or not is_finite_number(step) or step <= 0):
        raise SigerecError(f"{origin}: {name!r}: step must be a positive number and cannot go with log.")
    return Dimension(low=low, high=high, log=log, step=step, source=str(spec.get("source", "")))


def read_space_file(path: str | Path) -> SearchSpace:
    """The search space of a YAML file (see the module docstring)."""
    path = Path(path)
    content = read_yaml_file(path, "search-space file")
    if not isinstance(content, dict) or not content:
        raise SigerecError(f"{path}: expected a mapping of setting name -> choices or range.")
    names = [name for name in content if not isinstance(name, str)]
    if names:
        raise SigerecError(f"{path}: setting names are text, found {names[0]!r}.")
    return {name: dimension_from_mapping(name, spec, str(path)) for name, spec in content.items()}


def space_as_mapping(space: SearchSpace) -> dict[str, dict]:
    """The YAML form of ``space`` (what ``--space`` reads), for the study's record."""
    out = {}
    for name, dim in space.items():
        entry: dict[str, Any] = (
            {"choices": list(dim.choices)} if dim.choices is not None else {"low": dim.low, "high": dim.high}
        )
        if dim.log:
            entry["log"] = True
        if dim.step:
            entry["step"] = dim.step
        if dim.source:
            entry["source"] = dim.source
        out[name] = entry
    return out
