"""Name -> model class, so the CLI, configs and benchmarks find a new model without edits."""

from __future__ import annotations

import importlib
import pkgutil

from sigerec.errors import SigerecError

_MODELS: dict[str, type] = {}
_DISCOVERED = False


def register_model(cls: type) -> type:
    """Class decorator: register a :class:`Recommender` under its lower-case ``name``."""
    name = cls.name
    if name != name.lower():
        raise ValueError(f"model names are lower case, got {name!r}")
    if name in _MODELS and _MODELS[name] is not cls:
        raise ValueError(f"model name {name!r} registered twice")
    from sigerec.config import TrainingConfig, config_fields

    clash = set(config_fields(cls.config_class)) & set(config_fields(TrainingConfig))
    if clash:
        raise ValueError(f"{name}: config keys {sorted(clash)} clash with training settings")
    _MODELS[name] = cls
    return cls


def unregister_model(name: str) -> None:
    """Forget a model registered at run time (e.g. one defined in a test or a notebook)."""
    _MODELS.pop(name.lower(), None)


def _discover() -> None:
    """Import every module of ``sigerec.models`` once so their decorators run."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    import sigerec.models as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in {"base", "registry", "losses"}:
            importlib.import_module(f"{package.__name__}.{module.name}")
    _DISCOVERED = True


def model_names() -> list[str]:
    _discover()
    return sorted(_MODELS)


def get_model_class(name: str) -> type:
    _discover()
    key = name.lower()
    if key not in _MODELS:
        import difflib

        close = difflib.get_close_matches(key, list(_MODELS), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise SigerecError(f"unknown model '{name}'.{hint} Registered models: {', '.join(sorted(_MODELS))}.")
    return _MODELS[key]
