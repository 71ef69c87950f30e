"""Recall and time of the approximate (FAISS) kNN item graph against the exact one.

Example: python benchmarks/knn_recall.py                 (100k items, 384-d: ~15 minutes on 2 cores)
         python benchmarks/knn_recall.py --items 30000   (a quicker look)

Features: `sigerec data synth`'s generator (``sigerec.data.synthetic``, SYNTHETIC: clustered
latent vectors projected to 384-d plus noise, seed 0), the item features of a synthetic catalogue
of ``--items`` items. Every build runs in a fresh process on ``--threads`` threads (one by
default). The exact top-10 cosine graph is built once (its time and the peak resident memory it
added). For each IVF setting (clusters per sqrt(n), probes per item) the graph with
``knn_method="faiss"`` is built twice: the faster time counts (other jobs may share the machine),
the two graphs must be the same, and its recall against exact is the share of exact neighbours
found (``approximate_knn.knn_recall``). The default setting is also built on all cores, to see
whether the graph depends on the thread count; and, for comparison, FAISS's own
``IndexIVFFlat.search`` runs with the same clusters and probes (float32, no tie rule). ``--real``
adds the exact/default comparison on the real text features of prepared benchmark folders
(mean-filled rows included), where they exist.

The results (benchmarks/results/knn_recall.json) record the command, machine, git commit and date.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from common import REPO, RESULTS, markdown_table, provenance, provenance_sentence, save_results

from sigerec.data.synthetic import SynthConfig, feature_chunks, item_model
from sigerec.graphs import approximate_knn
from sigerec.graphs.approximate_knn import LISTS_PER_SQRT_ITEM as LISTS
from sigerec.graphs.approximate_knn import N_PROBE, knn_recall, n_lists_for
from sigerec.graphs.item_graphs import knn_item_graph

K = 10
SYNTHETIC_NOTE = "SYNTHETIC features (sigerec.data.synthetic): clustered latent vectors projected to the dimension"


def synthetic_features(n_items: int, dim: int, seed: int) -> np.ndarray:
    """The text features `sigerec data synth --items n_items --modalities text:dim --seed seed` writes."""
    config = SynthConfig(
        users=2 * n_items, items=n_items, interactions=30 * n_items, modalities=(("text", dim),), seed=seed
    )
    return np.concatenate(list(feature_chunks(config, item_model(config), "text", dim)))


def timed_graph(features_file: Path, method: str, n_probe: int = N_PROBE, lists: int = LISTS, threads: int = 0):
    """(graph, {"seconds", "cpu_seconds"}, peak MB added) of one build, in a fresh process so that
    its memory is its own."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_build, (features_file, method, n_probe, lists, threads))


def _build(features_file: Path, method: str, n_probe: int, lists: int, threads: int):
    """The child's side of ``timed_graph``: ``threads`` > 0 limits BLAS and FAISS to that many."""
    import faiss
    import torch
    from threadpoolctl import threadpool_limits

    features = np.load(features_file)
    approximate_knn.LISTS_PER_SQRT_ITEM = lists  # a module constant: this process builds one graph
    if threads:
        faiss.omp_set_num_threads(threads)
        threadpool_limits(threads)
        torch.set_num_threads(threads)  # the top-k of sigerec.ranking
    # Load FAISS, torch's top-k and the BLAS threads first, so that their one-off memory is not counted.
    knn_item_graph(features[:500], k=K, method=method, n_probe=n_probe)
    Path("/proc/self/clear_refs").write_text("5")  # Linux: the peak resident memory restarts from now
    before_mb = _status_mb("VmRSS")
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    graph = knn_item_graph(features, k=K, weighted=True, method=method, n_probe=n_probe)
    seconds, cpu_seconds = time.perf_counter() - started, _cpu_seconds() - cpu_started
    return (
        graph,
        {"seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2)},
        round(_status_mb("VmHWM") - before_mb, 1),
    )


def _cpu_seconds() -> float:
    """CPU time of this process, all threads, user and system: less sensitive than wall time to other jobs."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _status_mb(field: str) -> float:
    """A memory line of /proc/self/status (VmRSS: resident now, VmHWM: peak resident), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def faiss_index_search(features: np.ndarray, lists: int, n_probe: int, exact, threads: int) -> dict:
    """FAISS's own IVF search (IndexIVFFlat, inner product, float32) with the same clusters and probes."""
    import faiss
    import scipy.sparse as sp

    if threads:
        faiss.omp_set_num_threads(threads)

    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    n_lists = n_lists_for(len(unit), lists)
    started = time.perf_counter()
    quantizer = faiss.IndexFlatIP(unit.shape[1])
    index = faiss.IndexIVFFlat(quantizer, unit.shape[1], n_lists, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed, index.cp.niter, index.cp.spherical = 0, approximate_knn.KMEANS_ITERATIONS, True
    sample = np.random.default_rng(0).choice(
        len(unit), min(len(unit), approximate_knn.TRAINING_POINTS_PER_LIST * n_lists), replace=False
    )
    index.train(np.ascontiguousarray(unit[np.sort(sample)], dtype=np.float32))
    index.add(np.ascontiguousarray(unit, dtype=np.float32))
    index.nprobe = n_probe
    _, items = index.search(np.ascontiguousarray(unit, dtype=np.float32), K)
    seconds = time.perf_counter() - started
    rows = np.repeat(np.arange(len(unit)), K)
    graph = sp.csr_matrix((np.ones(rows.size), (rows, items.ravel().clip(0))), shape=exact.shape)
    return {
        "method": "faiss IndexIVFFlat.search (float32, for comparison)",
        "lists_per_sqrt_item": lists,
        "n_lists": n_lists,
        "n_probe": n_probe,
        "seconds": round(seconds, 2),
        "recall": round(knn_recall(graph, exact), 4),
    }


def neighbourhood(exact, features: np.ndarray) -> dict:
    """How alike neighbours are: the mean over items of their least similar kept neighbour's
    cosine, and the median cosine of random pairs of items."""
    rng = np.random.default_rng(1)
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    left, right = rng.integers(0, len(unit), (2, 100_000))
    filled = np.flatnonzero(np.diff(exact.indptr) > 0)
    weakest = np.minimum.reduceat(exact.data, exact.indptr[filled])
    return {
        "distinct_vectors": len(np.unique(features, axis=0)),
        "median_random_cosine": round(float(np.median((unit[left] * unit[right]).sum(axis=1))), 4),
        "mean_weakest_neighbour_cosine": round(float(weakest.mean()), 4),
    }


def same_graph(left, right) -> bool:
    return bool((left != right).nnz == 0)


def compare(
    label: str,
    features: np.ndarray,
    settings: list[tuple[int, int]],
    threads: int,
    all_threads: bool,
    index_search: bool,
) -> list[dict]:
    """Rows for the exact graph and each IVF setting (``(clusters per sqrt(n), probes)``) on
    ``features``, built with ``threads`` threads (0: all)."""
    print(f"{label}: {features.shape[0]:,} items, {features.shape[1]}-d", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        features_file = Path(folder) / "features.npy"
        np.save(features_file, features)
        exact, exact_time, exact_mb = timed_graph(features_file, "exact", threads=threads)
        common = {
            "features": label,
            "n_items": features.shape[0],
            "dim": features.shape[1],
            "k": K,
            "threads": threads or "all",
        }
        described = neighbourhood(exact, features)
        rows = [{**common, "method": "exact", **exact_time, "peak_added_mb": exact_mb, **described}]
        print(f"  {rows[0]}", flush=True)
        for lists, n_probe in settings:
            # Built twice: the faster build counts (other jobs may share the machine); the graphs must agree.
            graph, first_time, added_mb = timed_graph(features_file, "faiss", n_probe, lists, threads)
            again, second_time, _ = timed_graph(features_file, "faiss", n_probe, lists, threads)
            faster = min(first_time, second_time, key=lambda measured: measured["seconds"])
            row = {
                **common,
                "method": "faiss",
                "lists_per_sqrt_item": lists,
                "n_lists": n_lists_for(described["distinct_vectors"], lists),
                "n_probe": n_probe,
                "default": (lists, n_probe) == (LISTS, N_PROBE),
                **faster,
                "seconds_of_both_builds": [first_time["seconds"], second_time["seconds"]],
                "peak_added_mb": added_mb,
                "recall": round(knn_recall(graph, exact), 4),
                "speedup": round(exact_time["seconds"] / faster["seconds"], 1),
                "same_graph_when_built_again": same_graph(graph, again),
            }
            if row["default"] and all_threads and threads:
                spread, spread_time, _ = timed_graph(features_file, "faiss", n_probe, lists, threads=0)
                row["same_graph_on_all_threads"] = same_graph(spread, graph)
                row["seconds_on_all_threads"] = spread_time["seconds"]
            print(f"  {row}", flush=True)
            rows.append(row)
    if index_search:
        rows.append({**common, **faiss_index_search(features, *settings[0], exact, threads)})
        print(f"  {rows[-1]}", flush=True)
    return rows


SECTION = "knn-recall"


def section_content(results: dict) -> str:
    """The table of docs/scaling.md: each build's time, recall against exact and added memory."""
    rows = []
    for row in results["rows"]:
        probes = f"{row['n_lists']} / {row['n_probe']}" if "n_lists" in row else "-"
        method = row["method"] + (" (default)" if row.get("default") else "")
        recall = f"{row['recall']:.3f}" if "recall" in row else "1 (reference)"
        memory = f"{row['peak_added_mb']:.0f}" if "peak_added_mb" in row else "-"
        rows.append(
            [
                row["features"],
                f"{row['n_items']:,} x {row['dim']}",
                method,
                probes,
                f"{row['seconds']:.1f}",
                recall,
                memory,
            ]
        )
    columns = ["features", "items x dim", "method", "clusters / probes", "seconds", "recall vs exact", "MB added"]
    return provenance_sentence(results) + "\n\n" + markdown_table(columns, rows)


def parse_settings(text: str) -> list[tuple[int, int]]:
    return [tuple(int(part) for part in setting.split(":")) for setting in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--settings",
        default=f"{LISTS}:{N_PROBE},2:16,2:64,4:32",
        help="IVF settings to measure, 'clusters per sqrt(n):probes', comma-separated; the first is compared "
        "with FAISS's own search.",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS and FAISS threads per build (0: all cores). One by default: on a machine shared with other "
        "jobs, several threads wait for each other and times vary by 3x between runs.",
    )
    parser.add_argument(
        "--no-all-threads", dest="all_threads", action="store_false", help="Skip the default setting on all cores."
    )
    parser.add_argument("--no-index-search", dest="index_search", action="store_false")
    parser.add_argument("--real", nargs="*", type=Path, default=[], help="Prepared dataset folders with text features.")
    parser.add_argument("--results", type=Path, default=RESULTS / "knn_recall.json")
    args = parser.parse_args()

    record = provenance()
    record["note"] = [
        f"{SYNTHETIC_NOTE}, seed {args.seed}.",
        "peak_added_mb: peak resident memory of the build's process above its level before the build.",
        "faiss seconds: the faster of two builds (other jobs may share the machine); exact: one build.",
        "cpu_seconds: CPU time of the build, all threads.",
    ]
    settings = parse_settings(args.settings)
    features = synthetic_features(args.items, args.dim, args.seed)
    rows = compare(
        f"synthetic, seed {args.seed}", features, settings, args.threads, args.all_threads, args.index_search
    )
    del features
    for folder in args.real:
        path = folder / "text_feat.npy"
        if path.exists():
            real = np.load(path)
            rows += compare(f"{folder.name} text (real)", real, settings[:1], args.threads, False, False)
    save_results(args.results, rows, record)
    print(f"wrote {args.results.relative_to(REPO) if args.results.is_relative_to(REPO) else args.results}")


if __name__ == "__main__":
    main()
