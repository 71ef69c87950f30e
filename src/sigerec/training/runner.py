"""Start or resume a run from user-level settings: the one entry point the CLI and
benchmarks use, so both train exactly the same way."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from sigerec.config import RunConfig, SettingError, TrainingConfig, read_config_file, resolve_run_config
from sigerec.data.atomic import load_dataset
from sigerec.data.builtin import resolve_data_path
from sigerec.data.dataset import Dataset
from sigerec.errors import SigerecError
from sigerec.evaluation.metrics import METRIC_NAMES
from sigerec.models import get_model_class
from sigerec.safe_write import create_folder
from sigerec.training.run_directory import RunDirectory, run_folder_names
from sigerec.training.sampler import TripletSampler
from sigerec.training.seeds import AGGREGATE_FILE, aggregate_summaries, group_seeds, seed_folder, write_aggregate
from sigerec.training.trainer import Trainer


def resolve_config(
    model: str,
    data: str | Path,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    flags: dict[str, Any] | None = None,
) -> RunConfig:
    """Defaults < the model's training defaults < config file < ``--set`` overrides < explicit flags."""
    model_class = get_model_class(model)
    if Path(data).exists():  # an absolute path keeps the run resumable from any folder
        data = Path(data).resolve()
    layers = [(f"{model_class.name} training defaults", dict(model_class.training_defaults))]
    if config_file is not None:
        layers.append((str(config_file), read_config_file(config_file)))
    if overrides:
        layers.append(("--set", overrides))
    if flags:
        layers.append(("command-line flags", {k: v for k, v in flags.items() if v is not None}))
    config = resolve_run_config(model_class.name, str(data), model_class.config_class, layers)
    check_training_settings(config.training)
    return config


def check_training_settings(config: TrainingConfig) -> None:
    """What the field types cannot say: settings that depend on each other, on the metric
    registry or on the machine."""
    if not config.topk:
        raise SigerecError("setting 'topk' must list at least one cut-off, e.g. [10, 20].")
    if config.step_scope == "batch" and config.device != "cpu":
        raise SigerecError(
            "setting 'step_scope' is 'batch', which runs on the CPU only (its products use scipy); use "
            "step_scope=full (or auto) with a GPU."
        )
    if config.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SigerecError(
                f"setting 'device' is {config.device!r} but this torch build sees no CUDA GPU; use --device cpu."
            )
    elif config.device != "cpu":
        raise SigerecError(f"setting 'device' must be cpu or cuda[:N], got {config.device!r}.")
    metric, _, k = config.valid_metric.lower().partition("@")
    if metric not in METRIC_NAMES or not k.isdigit() or int(k) not in config.topk:
        raise SigerecError(
            f"setting 'valid_metric' is {config.valid_metric!r}; use <{'|'.join(METRIC_NAMES)}>@K "
            f"with K in topk {list(config.topk)}."
        )


def load_run_dataset(config: RunConfig, warn=None) -> Dataset:
    """The dataset of a run, restricted to the run's ``modalities`` (all when empty)."""
    return load_dataset(resolve_data_path(config.data), warn=warn).with_modalities(config.training.modalities)


def prepare(config: RunConfig, warn=None) -> Trainer:
    """Load the run's data and build its model, before anything is written or shown.

    Bad data, missing features or settings a model rejects fail here, so a refused run leaves
    no run folder and opens no progress bar.
    """
    trainer = Trainer(config, load_run_dataset(config, warn=warn), run=None)
    check_training_pairs(trainer.dataset, trainer.sampler, trainer.model.trainable, warn)
    return trainer


def check_data(config: RunConfig, warn=None) -> None:
    """What :func:`prepare` checks of the data (and warns about), without building the model:
    for a driver that hands the training to other processes, such as a Ray search."""
    dataset = load_run_dataset(config, warn=warn)
    sampler = TripletSampler(dataset.train, config.training.train_batch_size)
    check_training_pairs(dataset, sampler, get_model_class(config.model).trainable, warn)


def check_training_pairs(dataset: Dataset, sampler: TripletSampler, trainable: bool, warn=None) -> None:
    """Refuse data on which no training step can happen, and say which users training leaves out.

    A user who has every item that occurs in training has no negative to pair with, so BPR-style
    training skips their pairs; with only such users it would train nothing and report it as done.
    """
    if not sampler.skipped_users or not trainable:
        return
    name, users = dataset.name, sampler.skipped_users
    every_item = f"interacted in training with every item that occurs in training ({len(sampler.candidate_items)})"
    if len(sampler) == 0:
        raise SigerecError(
            f"dataset '{name}': nothing to train on: each of its {users} users with training "
            f"interactions {every_item}, so no negative item can be drawn for BPR-style training. "
            "Add interactions with more items, or users who have not seen every item."
        )
    if warn is not None:
        warn(
            f"dataset '{name}': {users} user(s) {every_item}; no negative item can be drawn for "
            f"them, so training leaves out their {sampler.skipped_pairs} pairs (valid and test "
            "still rank their held-out items)."
        )


def train(
    config: RunConfig,
    runs_root: str | Path = "runs",
    progress=None,
    warn=None,
    announce=None,
    prepared: Trainer | None = None,
    run_name: str | None = None,
) -> tuple[RunDirectory, dict]:
    """Train a new run under ``runs_root``; returns its folder and summary.

    ``prepared`` is the result of :func:`prepare` when the caller checked the run first;
    ``announce(path)`` is called once the run folder exists, before training starts.
    The run folder is ``<model>-<dataset>-<time>`` unless ``run_name`` names a new folder.
    It appears with its ``config.yaml`` in it, so a kill leaves no folder or one that
    ``sigerec train --resume`` finishes.
    """
    if prepared is not None and prepared.config is not config:
        raise ValueError("runner.train: `prepared` was made by runner.prepare for another config")
    trainer = prepared if prepared is not None else prepare(config, warn=warn)
    names = [run_name] if run_name is not None else run_folder_names(config.model, trainer.dataset.name)
    # Never trains into an existing folder: another run's, or a name given twice.
    run = RunDirectory.create_named(runs_root, names, config.to_dict())
    if announce is not None:
        announce(run.path)
    trainer.run = run
    if progress is not None:
        trainer.progress = progress
    return run, trainer.fit()


def train_seeds(
    config: RunConfig,
    seeds: Sequence[int],
    runs_root: str | Path = "runs",
    progress_factory: Callable[[RunConfig], Any] | None = None,
    warn=None,
    announce: Callable[[Path], None] | None = None,
) -> tuple[Path, dict]:
    """Train ``config`` once per seed into a group folder; returns it and its aggregate.

    The group is ``<runs_root>/<model>-<dataset>-seeds-<time>/``, holding one ordinary run
    folder per seed, ``seed-<n>`` (:func:`sigerec.training.seeds.seed_folder`), and
    ``aggregate.json`` (:func:`sigerec.training.seeds.aggregate_summaries`), written once every
    seed has finished. Each seed's run is exactly ``train`` of ``config`` with that seed; seeds
    train in ascending order. The group appears with every seed's run folder (config only) in
    it, so an interrupted group is finished by :func:`resume_seeds`. ``progress_factory(config)``
    gives each seed's progress context; ``announce(group)`` is called once the group folder exists.
    """
    if not seeds:
        raise SigerecError("--seeds: give at least one seed, e.g. --seeds 1,2,3.")
    seeds = sorted(seeds)  # the order resume_seeds finds them in, so both aggregate alike
    # replace() builds a new TrainingConfig, so each seed's settings are checked again.
    configs = [dataclasses.replace(config, training=dataclasses.replace(config.training, seed=s)) for s in seeds]
    prepared = prepare(configs[0], warn=warn)  # refuse before the group folder exists

    def build(staging: Path) -> None:
        for seed, seed_config in zip(seeds, configs):
            (staging / seed_folder(seed)).mkdir()
            RunDirectory(staging / seed_folder(seed)).write_config(seed_config.to_dict())

    # The group folder is named and made unique as run folders are, with "-seeds" after the dataset.
    group = create_folder(Path(runs_root), run_folder_names(config.model, f"{prepared.dataset.name}-seeds"), build)
    if announce is not None:
        announce(group)
    return group, _finish_seeds(group, seeds, prepared, progress_factory, warn)


def resume_seeds(
    group: str | Path, progress_factory: Callable[[RunConfig], Any] | None = None, warn=None
) -> tuple[Path, dict]:
    """Finish an interrupted group of :func:`train_seeds`: every seed's run is resumed (or started), then
    ``aggregate.json`` is written. A finished group is left as it is."""
    group = Path(group)
    seeds = group_seeds(group)
    if not seeds:
        raise SigerecError(f"{group}: not a group folder (no seed-<n>/config.yaml); give a folder made by --seeds.")
    first = RunDirectory.existing(group / seed_folder(seeds[0]))
    prepared = prepare(load_run_config(first), warn=warn) if first.read_summary() is None else None
    return group, _finish_seeds(group, seeds, prepared, progress_factory, warn)


def extend_seeds(
    group: str | Path,
    seeds: Sequence[int],
    progress_factory: Callable[[RunConfig], Any] | None = None,
    warn=None,
) -> tuple[Path, dict]:
    """Add ``seeds`` to a group of :func:`train_seeds` and finish it, so asking for more seeds
    later trains only the new ones. Each new seed trains the group's settings (those of its
    lowest seed) with its own seed; the aggregate then covers every seed of the group."""
    group = Path(group)
    have = group_seeds(group)
    if not have:
        raise SigerecError(f"{group}: not a group folder (no seed-<n>/config.yaml); give a folder made by --seeds.")
    first = RunDirectory.existing(group / seed_folder(have[0]))
    load_run_config(first)  # refuse settings this version cannot train before changing the group
    # The group's own saved settings, given to each new seed as saved (not as this version would
    # write them), so that every run of the group shows the same settings to `compare`.
    saved = first.read_config()
    # The stale aggregate goes first: a group without one is always finished by resume_seeds.
    (group / AGGREGATE_FILE).unlink(missing_ok=True)
    for seed in sorted(set(seeds) - set(have)):
        folder = group / seed_folder(seed)
        folder.mkdir(exist_ok=True)  # left empty by an interrupted call: it has no config yet
        RunDirectory(folder).write_config({**saved, "training": {**saved["training"], "seed": seed}})
    return resume_seeds(group, progress_factory, warn)


def _finish_seeds(
    group: Path,
    seeds: Sequence[int],
    prepared: Trainer | None,
    progress_factory: Callable[[RunConfig], Any] | None,
    warn,
) -> dict:
    """Run each seed's run folder to its end (finished ones are kept), then write the aggregate."""
    dataset = prepared.dataset if prepared is not None else None  # loaded once; each seed builds its own model
    summaries = []
    for seed in seeds:
        run = RunDirectory.existing(group / seed_folder(seed))
        summary = run.read_summary()
        if summary is None:
            seed_config = load_run_config(run)
            if prepared is None:
                dataset = dataset if dataset is not None else load_run_dataset(seed_config, warn=warn)
                prepared = Trainer(seed_config, dataset, run=None)
            with progress_factory(seed_config) if progress_factory is not None else nullcontext() as progress:
                _, summary = resume(run.path, progress=progress, warn=warn, prepared=prepared)
            prepared = None
        summaries.append(summary)
    aggregate = aggregate_summaries(seeds, [seed_folder(seed) for seed in seeds], summaries)
    write_aggregate(group, aggregate)
    return aggregate


def load_run_config(run: RunDirectory, device: str | None = None, overrides: dict | None = None) -> RunConfig:
    """The run's saved settings; ``overrides`` replace some (only settings that do not change
    the weights' shapes make sense, e.g. ``cold_item_rule``)."""
    saved = run.read_config()
    flags = {"device": device} if device is not None else None
    try:
        file = run.file("config.yaml")
        return resolve_config(saved["model"], saved["data"], config_file=file, overrides=overrides, flags=flags)
    except SettingError as error:
        if overrides and error.key in overrides:
            raise SigerecError(str(error).replace("--set: ", f"--{error.key.replace('_', '-')}: ", 1)) from None
        # Runs saved before settings were range-checked may hold a value that is refused now.
        raise SigerecError(
            f"{error} The run was saved with a value this version refuses; edit '{error.key}' in "
            f"{run.file('config.yaml')} to resume, evaluate or export it."
        ) from None


def resume(
    run_path: str | Path, progress=None, warn=None, prepared: Trainer | None = None
) -> tuple[RunDirectory, dict]:
    """Continue an interrupted run from its last checkpoint (or finish it if it had stopped).

    A finished run is left untouched: its summary keeps the timings it was measured with.
    ``prepared`` is ``prepare(load_run_config(run))`` when the caller built the model first.
    """
    run = RunDirectory.existing(run_path)
    finished = run.read_summary()
    if finished is not None:
        return run, finished
    trainer = prepared if prepared is not None else prepare(load_run_config(run), warn=warn)
    trainer.run = run
    if progress is not None:
        trainer.progress = progress
    trainer.resume()
    return run, trainer.fit()


def evaluate_run(
    run_path: str | Path, checkpoint: str = "best", splits=("valid", "test"), warn=None, overrides: dict | None = None
) -> dict[str, dict]:
    """Re-evaluate a run's saved weights (``best`` or ``last``) on the given splits."""
    from sigerec.training.trainer import evaluate_split

    model, dataset, config = load_trained_model(run_path, checkpoint, warn=warn, overrides=overrides)
    return {split: evaluate_split(model, dataset, split, config) for split in splits}


def load_trained_model(
    run_path: str | Path, checkpoint: str = "best", warn=None, device: str | None = None, overrides: dict | None = None
):
    """``(model, dataset, config)`` of a run, with the ``best`` or ``last`` saved weights, in eval mode.

    ``device`` overrides the run's device (e.g. "cpu" to export a model trained on a GPU);
    ``overrides`` some scoring settings (see :func:`load_run_config`).
    """
    from sigerec.errors import SigerecError
    from sigerec.training.run_directory import BEST_CHECKPOINT, LAST_CHECKPOINT
    from sigerec.training.trainer import build_model

    run = RunDirectory.existing(run_path)
    config = load_run_config(run, device, overrides)
    dataset = load_run_dataset(config, warn=warn)
    name = {"best": BEST_CHECKPOINT, "last": LAST_CHECKPOINT}[checkpoint]
    state = run.load_checkpoint(name, config.training.device)
    if state is None:
        raise SigerecError(f"{run.file(name)}: no such checkpoint; the run has not evaluated an epoch yet.")
    model = build_model(config, dataset)
    model.load_state_dict(state["model"])
    model.eval()
    return model, dataset, config
