"""Benchmark records a reader can reproduce: results merged by the scripts, commands without
private output paths, and docs tables that name the machine, the commit and the date."""

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import baselines
import common
import multimodal
import render_docs
import serving_load
import speed

DATE = re.compile(r"measured:? \d{4}-\d{2}-\d{2}", re.IGNORECASE)
RECORD = {"command": "python benchmarks/x.py", "machine": "Test CPU, 2 cores visible, Python 3.11.7"}


def _run(dataset, model, recall, **provenance):
    return {
        "dataset": dataset,
        "model": model,
        "variant": None,
        "overrides": {},
        "test": {"recall@10": recall / 2, "recall@20": recall, "ndcg@10": recall / 4, "ndcg@20": recall / 3},
        "valid": {"recall@20": recall},
        "best_epoch": 3,
        "epochs": 5,
        "train_seconds_per_epoch": 1.5,
        "eval_seconds": 0.5,
        "peak_memory_mb": 500.0,
        "device": "cpu",
        "torch_threads": 2,
        **RECORD,
        "commit": "abc1234",
        "measured": "2026-12-02",
        **provenance,
    }


def _serving_row(endpoint, workers, clients, **provenance):
    return {
        "endpoint": endpoint,
        "workers": workers,
        "clients": clients,
        "index": "exact",
        "k": 10,
        "model": "lightgcn on tiny",
        "model_size": {"n_users": 4, "n_items": 6, "dim": 64},
        "requests": 100,
        "errors": 0,
        "requests_per_second": 50.0,
        "p50_ms": 1.0,
        "p99_ms": 2.0,
        "max_ms": 3.0,
        "server_cpu_seconds": 0.1,
        **RECORD,
        "commit": "abc1234",
        "measured": "2026-12-02",
        **provenance,
    }


def test_runs_of_one_dataset_at_a_time_add_up_in_one_results_file(tmp_path):
    results = tmp_path / "multimodal.json"
    multimodal_key = multimodal.result_key
    common.update_results(results, [_run("ml100k", "bpr", 0.1), _run("ml100k", "sige", 0.2)], multimodal_key)
    common.update_results(results, [_run("baby", "bpr", 0.05)], multimodal_key)
    # Measured again: the row is replaced in place, the others are kept.
    common.update_results(results, [_run("ml100k", "bpr", 0.15, commit="def5678")], multimodal_key)
    rows = common.load_results(results)
    assert [(r["dataset"], r["model"], r["test"]["recall@20"], r["commit"]) for r in rows] == [
        ("ml100k", "bpr", 0.15, "def5678"),
        ("ml100k", "sige", 0.2, "abc1234"),
        ("baby", "bpr", 0.05, "abc1234"),
    ]


def test_baseline_runs_merge_by_dataset_and_model_into_the_file_of_their_device(tmp_path):
    assert (
        baselines.results_path("cpu").name == "baselines_cpu.json" and baselines.section_name("cpu") == "baselines-cpu"
    )
    assert baselines.results_path("cuda").name == "baselines.json" and baselines.section_name("cuda") == "baselines"
    results = tmp_path / "baselines_cpu.json"
    common.update_results(results, [_run("baby", "bpr", 0.1), _run("baby", "lightgcn", 0.2)], baselines.row_key)
    common.update_results(results, [_run("sports", "lightgcn", 0.3), _run("baby", "bpr", 0.12)], baselines.row_key)
    rows = baselines.ordered(common.load_results(results))
    assert [(r["dataset"], r["model"], r["test"]["recall@20"]) for r in rows] == [
        ("baby", "bpr", 0.12),
        ("baby", "lightgcn", 0.2),
        ("sports", "lightgcn", 0.3),
    ]


def test_serving_rows_of_each_endpoint_and_worker_count_build_one_table():
    first = [_serving_row("user", 1, c) for c in (1, 8)]
    second = [_serving_row("mix", 2, 1), _serving_row("user", 1, 8, p99_ms=9.0)]
    merged = serving_load.merge_rows(first, second)
    assert [(r["endpoint"], r["workers"], r["clients"], r["p99_ms"]) for r in merged] == [
        ("user", 1, 1, 2.0),
        ("user", 1, 8, 9.0),
        ("mix", 2, 1, 2.0),
    ]


def test_recorded_commands_leave_out_where_run_folders_and_docs_go():
    argv = ["/x/benchmarks/multimodal.py", "--datasets", "ml100k", "--out", "../runs/mm", "--doc=/tmp/d.md"]
    argv += ["--plot", "/tmp/p.png", "--set", "align_weight=0.001", "--parallel", "2"]
    command = common.script_command(argv)
    assert command == "python benchmarks/multimodal.py --datasets ml100k --set align_weight=0.001 --parallel 2"


def test_a_new_record_names_command_machine_commit_and_date():
    record = common.provenance(argv=["benchmarks/speed.py", "--epochs", "5"])
    assert record["command"] == "python benchmarks/speed.py --epochs 5"
    assert "cores visible, Python 3." in record["machine"]
    assert re.fullmatch(
        r"([0-9a-f]{7}( with uncommitted changes)?|not recorded \(not a git checkout\))", record["commit"]
    )
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", record["measured"])


def test_the_list_of_commands_groups_rows_and_names_unrecorded_commits_honestly():
    rows = [
        _run("ml100k", "bpr", 0.1, commit="not recorded", results_commit="1111111", measured="2026-12-01"),
        _run("ml100k", "sige", 0.1, commit="not recorded", results_commit="2222222", measured="2026-12-01"),
        _run("baby", "bpr", 0.1, command="python benchmarks/y.py", note=["own note", "shared note"]),
        _run("baby", "sige", 0.1, command="python benchmarks/y.py", note=["other note", "shared note"]),
    ]
    text = common.provenance_list(rows)
    lines = text.splitlines()
    assert lines[0] == (
        f"- `python benchmarks/x.py` (2 rows): {RECORD['machine']}; commit not recorded "
        "(results committed in 1111111, 2222222); measured 2026-12-01."
    )
    assert lines[1] == f"- `python benchmarks/y.py` (2 rows): {RECORD['machine']}; commit abc1234; measured 2026-12-02."
    assert text.endswith("own note\n\nother note\n\nshared note")


def _fake_results(folder: Path) -> None:
    """One tiny results file per docs section, as the scripts write them."""
    folder.mkdir()
    record = {**RECORD, "commit": "abc1234", "measured": "2026-12-02"}
    runs = [_run("ml100k", "bpr", 0.1, features=["`text` (384-d)"]), _run("ml100k", "sige", 0.2)]
    (folder / "baselines.json").write_text(json.dumps([_run("baby", "bpr", 0.1)]))
    (folder / "baselines_cpu.json").write_text(json.dumps([_run("baby", "lightgcn", 0.1)]))
    (folder / "multimodal.json").write_text(json.dumps(runs))
    ablation = [_run("ml100k", "sige", 0.2, variant="full"), _run("ml100k", "sige", 0.1, variant="no-align")]
    ablation[1]["overrides"] = {"align_weight": 0}
    (folder / "sige_ablation.json").write_text(json.dumps(ablation))
    speed_rows = [{"cores": "1 core", "train_seconds_per_epoch": 1.0, "eval_seconds": 0.5, "peak_memory_mb": 500}]
    speed_rows[0]["torch_threads"] = 1
    (folder / "speed.json").write_text(json.dumps({**record, "rows": speed_rows}))
    encoder_rows = [{"input": "titles", "model": "m", "items": 10, "items_per_second": 5.0, "encode_seconds": 2.0}]
    (folder / "encoders.json").write_text(json.dumps({**record, "rows": encoder_rows}))
    model_rows = [
        {"dataset": "baby", "model": model, "epochs": 3, "train_seconds_per_epoch": seconds, "eval_seconds": 0.5}
        for model, seconds in (("mgcn", 8.0), ("sige", 16.0))
    ]
    for row in model_rows:
        row["peak_memory_mb"] = 600
    (folder / "model_speed.json").write_text(json.dumps({**record, "rows": model_rows}))
    (folder / "serving.json").write_text(json.dumps({"rows": [_serving_row("user", 1, 1)]}))
    same_rows = [
        {"model": "bpr", "dataset": "ml100k", "epochs": 2, "same_losses": True, "same_metrics": True}
        | {"same_weights": True, "base_test_recall@20": 0.1, "new_test_recall@20": 0.1}
    ]
    same_record = {**RECORD, "commit": "abc1234", "measured": "2026-12-01", "base": "c955886"}
    (folder / "same_numbers.json").write_text(json.dumps({**same_record, "rows": same_rows}))
    fair_row = {"dataset": "ml100k", "model": "sige", "trials": 2, "pruned": 0, "search_hours": 0.1, "seeds": [1, 2]}
    fair_row["test"] = {m: {"mean": 0.3, "std": 0.01} for m in ("recall@20", "ndcg@20")}
    fair_record = {**RECORD, "commit": "abc1234", "measured": "2026-12-01", "trials": 2, "seeds": [1, 2]}
    (folder / "fair.json").write_text(json.dumps({**fair_record, "rows": [fair_row], "p_values": [], "plot": False}))
    tuned = {
        "trials": 2,
        "pruned": 1,
        "repeated": 0,
        "search_seconds": 60.0,
        "test": {"recall@20": 0.07, "ndcg@20": 0.03},
    }
    tuned["selected"] = {"trial": 0, "settings": {"n_layers": 2}, "valid_recall@20": 0.07}
    (folder / "tune_reference.json").write_text(json.dumps({**fair_record, **tuned}))


def test_every_rendered_table_names_its_command_machine_commit_and_date(tmp_path):
    results = tmp_path / "results"
    _fake_results(results)
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n")
    sections = render_docs.sections(results, doc, tmp_path / "no-plot.png")
    assert set(sections) == {
        "baselines",
        "baselines-cpu",
        "speed",
        "encoders",
        "multimodal",
        "sige-ablation",
        "model-speed",
        "serving",
        "same-numbers",
        "fair",
        "tune-reference",
    }
    for name, content in sections.items():
        text = content()
        assert "`python benchmarks/x.py`" in text, name
        assert RECORD["machine"] in text, name
        assert re.search(r"commit:? abc1234", text, re.IGNORECASE), name
        assert DATE.search(text), name
        assert "|---|" in text, name
    rendered = render_docs.render(doc, results, tmp_path / "no-plot.png")
    assert all(f"<!-- {name}:start -->" in rendered for name in sections)


def test_a_table_of_results_measured_before_commits_were_recorded_says_so():
    record = {**RECORD, "commit": "not recorded", "results_commit": "203c92e", "measured": "2026-11-26"}
    rows = [{"cores": "1 core", "train_seconds_per_epoch": 1.39, "eval_seconds": 0.75, "peak_memory_mb": 507}]
    rows[0]["torch_threads"] = 1
    text = speed.section_content({**record, "rows": rows})
    assert text.startswith(
        f"Command: `python benchmarks/x.py`. Machine: {RECORD['machine']}. "
        "Commit: not recorded (results committed in 203c92e). Measured: 2026-11-26."
    )
    assert "| 1 core | 1.39 | 0.75 | 507 | 1 |" in text


def test_the_committed_docs_show_the_committed_results():
    """docs/benchmarks.md and the measured sections of docs/sige.md are what render_docs.py makes
    of benchmarks/results/: no table is
    edited by hand, and each names its commands, machines, commits and dates."""
    doc = render_docs.DOC
    if not doc.exists():
        pytest.skip("no docs/benchmarks.md")
    plot = doc.parent / "img" / "multimodal.png"
    assert render_docs.render(doc, render_docs.RESULTS, plot) == doc.read_text()
    sige_doc = render_docs.SIGE_DOC
    assert render_docs.render_sections(sige_doc, render_docs.sige_sections()) == sige_doc.read_text()
