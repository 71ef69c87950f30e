"""``sigerec tune``: search a model's settings on valid data, one machine or a Ray cluster."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from sigerec.cli.errors import report_errors, warn
from sigerec.config import parse_set_options
from sigerec.errors import SigerecError


class Backend(str, Enum):
    local = "local"
    ray = "ray"


@report_errors
def tune_command(
    data: Annotated[str, typer.Option("--data", help="Dataset folder (MMRec format) or a built-in name: baby.")],
    model: Annotated[str, typer.Option("--model", help="Model name, see `sigerec models`.")],
    trials: Annotated[int, typer.Option(min=1, help="Trials to finish (pruned ones count).")] = 20,
    timeout: Annotated[float | None, typer.Option(help="Stop starting trials after this many seconds.")] = None,
    space: Annotated[
        Path | None, typer.Option("--space", help="YAML search space replacing the model's own (see docs).")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Fix a setting in every trial: key=value (repeatable).")
    ] = None,
    study: Annotated[str | None, typer.Option("--study", help="Study name (default <model>-<dataset>).")] = None,
    storage: Annotated[
        str | None, typer.Option(help="Optuna storage URL (default: SQLite file study.db in --out).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder of the study, its run folders and results.")] = Path(
        "tuning"
    ),
    device: Annotated[str | None, typer.Option("--device", help="cpu (default) or cuda.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sampler and of every trial's run.")] = 999,
    final_seeds: Annotated[
        int, typer.Option("--final-seeds", min=0, help="Then train the selected settings with seeds 1..K.")
    ] = 0,
    backend: Annotated[
        Backend, typer.Option("--backend", help="local: one trial at a time here; ray: trials on a Ray cluster.")
    ] = Backend.local,
    address: Annotated[
        str | None, typer.Option("--address", help="Ray: join this cluster (HEAD:6379); default a local Ray.")
    ] = None,
    cpus_per_trial: Annotated[
        float | None, typer.Option("--cpus-per-trial", min=0.01, help="Ray: CPUs each trial holds (default 1).")
    ] = None,
    gpus_per_trial: Annotated[
        float | None, typer.Option("--gpus-per-trial", min=0, help="Ray: GPUs each trial holds (default 0).")
    ] = None,
    storage_path: Annotated[
        Path | None,
        typer.Option(
            "--storage-path", help="Ray: folder every node reaches; run folders go to its runs/ (default OUT)."
        ),
    ] = None,
) -> None:
    """Search a model's settings with Optuna (seeded TPE, pruning on valid metrics).

    Example: sigerec tune --data .bench_data/ml100k --model lightgcn --trials 20 --out tuning/lightgcn-ml100k

    Every trial is an ordinary run folder under OUT/runs (use `sigerec compare` or `export` on
    it). Selection reads valid metrics only; the selected trial's test metrics are printed as
    such. Running the same command again continues the study stored in OUT/study.db: finished
    trials are kept, an interrupted one reruns from its last checkpoint. At the end OUT holds
    trials.csv (best first), best.yaml (for `sigerec train --config`) and two PNG plots.

    With --backend ray the trials run on a Ray cluster, several at once, and ASHA stops
    hopeless ones early (see docs/cluster.md).
    """
    ray_options = {
        "--address": address,
        "--cpus-per-trial": cpus_per_trial,
        "--gpus-per-trial": gpus_per_trial,
        "--storage-path": storage_path,
    }
    given = [name for name, value in ray_options.items() if value is not None]
    if backend is Backend.local and given:
        options = f"{given[0]} is an option" if len(given) == 1 else f"{', '.join(given)} are options"
        raise SigerecError(f"{options} of the Ray backend; add --backend ray.")
    from sigerec.models import get_model_class
    from sigerec.search_space import read_space_file
    from sigerec.training.run_report import format_table
    from sigerec.tuning.results import best_trial, trial_rows, write_outputs
    from sigerec.tuning.study import TuneSettings, run_study

    model_class = get_model_class(model)
    settings = TuneSettings(
        data=data,
        model=model_class.name,
        space=read_space_file(space) if space is not None else dict(model_class.search_space),
        trials=trials,
        timeout=timeout,
        overrides=parse_set_options(set_ or []),
        study_name=study,
        storage=storage,
        out=out,
        device=device,
        seed=seed,
    )
    overlap = set(settings.space) & set(settings.overrides)
    if overlap:
        raise SigerecError(f"--set fixes {sorted(overlap)}, which the search space varies; drop one of them.")

    def announce(line: str) -> None:
        typer.echo(line, err=True)

    if backend is Backend.ray:
        run_ray_study = _import_ray_backend()
        cpus, gpus = cpus_per_trial or 1, gpus_per_trial or 0
        if (gpus > 0) != (device or "cpu").startswith("cuda"):
            raise SigerecError("with --backend ray, give --device cuda and --gpus-per-trial together.")
        finished = run_ray_study(settings, address, cpus, gpus, storage_path, announce=announce, warn=warn)
    else:
        finished = run_study(settings, announce=announce, warn=warn)
    metric = settings.metric
    typer.echo(format_table(trial_rows(finished, metric), "text"), nl=False)
    best = best_trial(finished)
    test = best.user_attrs.get("test", {})
    typer.echo(
        f"selected trial {best.number} on valid {metric} {best.value:.4f}; its test metrics: "
        + ", ".join(f"{key} {test[key]:.4f}" for key in ("recall@20", "ndcg@20") if key in test)
    )
    for label, path in write_outputs(finished, out, metric).items():
        typer.echo(f"{label}: {path}")
    if final_seeds:
        from sigerec.training.run_report import aggregate_rows
        from sigerec.tuning.results import train_final_seeds

        group, aggregate = train_final_seeds(settings, list(range(1, final_seeds + 1)))
        typer.echo(f"selected settings over seeds 1..{final_seeds}: {group} (mean ± sample std)")
        typer.echo(format_table(aggregate_rows(aggregate), "text"), nl=False)


def _import_ray_backend():
    try:
        from sigerec.tuning.ray_backend import run_ray_study
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] == "ray":
            raise SigerecError("--backend ray needs Ray Tune: pip install 'sigerec[ray]'.") from None
        raise
    return run_ray_study


def register_tune_command(app: typer.Typer) -> None:
    app.command("tune")(tune_command)
