"""benchmarks/fair.py builds one table from several invocations: rows merge under a lock, keep
their own records, and say which part an earlier invocation measured."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import fair

STATS = {"mean": 0.3, "std": 0.01}


def _row(dataset, model, commit, seeds=(1, 2, 3), group=None, measured="2026-12-01"):
    return {
        "command": f"python benchmarks/fair.py --models {model}",
        "machine": "Test CPU",
        "commit": commit,
        "measured": measured,
        "dataset": dataset,
        "model": model,
        "trials": 4,
        "pruned": 0,
        "search_hours": 0.1,
        "seeds": list(seeds),
        "test": {"recall@20": STATS, "ndcg@20": STATS},
        "valid": {"recall@20": STATS},
        "group": group or f"runs/not-here/{dataset}/{model}",
    }


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setattr(fair, "PLOT", tmp_path / "fair.png")
    return tmp_path / "fair.json"


def test_rows_of_separate_invocations_add_up_to_one_table_in_the_default_order(results):
    fair.merge_into(results, [_row("ml100k-kg", "sige", "aaa1111")])
    fair.merge_into(results, [_row("ml100k", "sige", "bbb2222"), _row("ml100k", "lightgcn", "bbb2222")])
    saved = json.loads(results.read_text())
    assert [(r["dataset"], r["model"]) for r in saved["rows"]] == [
        ("ml100k", "lightgcn"),
        ("ml100k", "sige"),
        ("ml100k-kg", "sige"),
    ]
    assert [r["commit"] for r in saved["rows"]] == ["bbb2222", "bbb2222", "aaa1111"]
    text = fair.section_content(saved)
    assert "commit aaa1111" in text and "commit bbb2222" in text


def test_p_values_are_kept_where_the_run_folders_are_not_here(results):
    results.write_text(
        json.dumps(
            {
                "rows": [_row("ml100k", "sige", "aaa1111"), _row("ml100k", "lightgcn", "aaa1111")],
                "p_values": [{"dataset": "ml100k", "model": "lightgcn", "metric": "recall@20", "p": 0.04}],
            }
        )
    )
    fair.merge_into(results, [_row("ml100k-kg", "sige", "bbb2222")])
    assert json.loads(results.read_text())["p_values"] == [
        {"dataset": "ml100k", "model": "lightgcn", "metric": "recall@20", "p": 0.04}
    ]


def test_a_row_given_more_seeds_later_names_what_the_earlier_invocation_measured(results):
    fair.merge_into(results, [_row("ml100k", "sige", "aaa1111", group="runs/g")])
    fair.merge_into(
        results, [_row("ml100k", "sige", "bbb2222", seeds=(1, 2, 3, 4, 5), group="runs/g", measured="2026-12-02")]
    )
    (row,) = json.loads(results.read_text())["rows"]
    assert row["commit"] == "bbb2222" and row["seeds"] == [1, 2, 3, 4, 5]
    assert "seeds 1, 2, 3 were measured by `python benchmarks/fair.py --models sige` at commit aaa1111" in row["note"]
    assert row["note"] in fair.section_content(json.loads(results.read_text()))


def test_a_row_measured_again_unchanged_keeps_its_own_record(results):
    fair.merge_into(results, [_row("ml100k", "sige", "aaa1111", group="runs/g")])
    fair.merge_into(results, [_row("ml100k", "sige", "bbb2222", group="runs/g")])
    (row,) = json.loads(results.read_text())["rows"]
    assert row["commit"] == "aaa1111" and "note" not in row


def test_files_from_before_rows_carried_records_give_each_row_the_files_record():
    old = {
        "command": "python benchmarks/fair.py",
        "commit": "f634a29",
        "measured": "2026-12-01",
        "rows": [{"model": "x"}],
    }
    assert fair.rows_of(old) == [
        {"command": "python benchmarks/fair.py", "commit": "f634a29", "measured": "2026-12-01", "model": "x"}
    ]


def test_a_second_table_keeps_its_own_plot_and_links_it(results, tmp_path):
    pytest.importorskip("matplotlib")
    budget_plot = tmp_path / "fair-budget.png"
    fair.merge_into(results, [_row("ml100k", "sige", "aaa1111")], budget_plot)
    saved = json.loads(results.read_text())
    assert budget_plot.is_file() and not (tmp_path / "fair.png").exists()
    assert saved["plot"] == "fair-budget.png"
    assert "![Fair benchmark](img/fair-budget.png)" in fair.section_content(saved)


def test_results_from_before_the_plot_name_was_kept_link_the_default_plot():
    saved = {"rows": [], "p_values": [], "plot": True}
    assert fair.section_content(saved).endswith("![Fair benchmark](img/fair.png)")


def test_the_budget_table_keeps_its_own_files_and_its_recorded_command_says_which_table():
    import common

    first, budget = fair.TABLES["fair"], fair.TABLES["budget"]
    assert all(getattr(first, field) != getattr(budget, field) for field in ("results", "runs", "section", "plot"))
    command = common.script_command(["benchmarks/fair.py", "--table", "budget", "--out", "/tmp/private"])
    assert command == "python benchmarks/fair.py --table budget"


def test_search_time_is_saved_while_it_runs_and_kept_when_the_search_is_killed(tmp_path, monkeypatch):
    """A killed invocation's search time still counts: the total is saved as the search runs."""
    import common

    out = tmp_path / "study"
    seen_during_the_search = []

    def interrupted_tune(*args):
        time.sleep(0.3)
        seen_during_the_search.append(fair.searched_seconds(out))
        raise KeyboardInterrupt

    monkeypatch.setattr(fair, "TIMING_INTERVAL", 0.05)
    monkeypatch.setattr(common, "run_sigerec", interrupted_tune)
    with pytest.raises(KeyboardInterrupt):
        fair.search(tmp_path, "lightgcn", 4, out)
    first = fair.searched_seconds(out)
    assert 0 < seen_during_the_search[0] <= first and first >= 0.3
    commands = []
    monkeypatch.setattr(common, "run_sigerec", lambda *args: commands.append(args) or time.sleep(0.1))
    fair.search(tmp_path, "lightgcn", 4, out, "cuda")  # the next invocation adds its own time
    assert fair.searched_seconds(out) >= first + 0.1
    assert commands[0][0] == "tune" and commands[0][-2:] == ("--device", "cuda")


def _finished_fair_study(source: Path, seeds_done: bool = True) -> Path:
    """A fair study's folder as the fair benchmark leaves it: study, trials table, search time, seed group."""
    (source / "final-seeds" / "group" / "seed-1").mkdir(parents=True)
    if seeds_done:
        (source / "final-seeds" / "group" / "aggregate.json").write_text("{}")
    with closing(sqlite3.connect(source / "study.db")) as study, study:
        study.execute("create table trials (number integer)")
        study.executemany("insert into trials values (?)", [(n,) for n in range(4)])
    (source / "trials.csv").write_text("trial,state\n")
    (source / fair.TIMING_FILE).write_text(json.dumps({"seconds": 60.0}))
    return source


def _trial_count(study: Path) -> int:
    with closing(sqlite3.connect(study)) as connection:
        return connection.execute("select count(*) from trials").fetchone()[0]


def test_the_budget_check_starts_from_a_copy_of_the_fair_study_once(tmp_path):
    source = _finished_fair_study(tmp_path / "fair" / "ml100k" / "sige")
    out = tmp_path / "budget" / "ml100k" / "sige"
    fair.start_from(source, out)
    assert _trial_count(out / "study.db") == 4 and fair.searched_seconds(out) == 60.0
    assert (out / "final-seeds" / "group" / "aggregate.json").is_file()  # an unchanged selection reuses its seeds
    with closing(sqlite3.connect(out / "study.db")) as study, study:
        study.execute("insert into trials values (4)")  # the continued study
    fair.start_from(source, out)  # a study is here already: it is continued, not replaced
    assert _trial_count(out / "study.db") == 5 and _trial_count(source / "study.db") == 4


def test_the_budget_check_refuses_a_fair_study_that_has_not_finished(tmp_path):
    source = _finished_fair_study(tmp_path / "fair" / "ml100k" / "sige", seeds_done=False)
    with pytest.raises(SystemExit, match="run the fair benchmark for this model first"):
        fair.start_from(source, tmp_path / "budget" / "ml100k" / "sige")
    assert not (tmp_path / "budget" / "ml100k" / "sige" / "study.db").exists()


def test_the_budget_check_without_the_fair_study_says_what_to_run_first(tmp_path):
    with pytest.raises(SystemExit, match="run the fair benchmark for this model first"):
        fair.start_from(tmp_path / "fair" / "ml100k" / "sige", tmp_path / "budget" / "ml100k" / "sige")


def _per_user_file(path, recall, ndcg):
    import pandas as pd

    table = pd.DataFrame({"recall@20": recall, "ndcg@20": ndcg}, index=pd.Index(range(len(recall)), name="user"))
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, compression={"method": "gzip", "mtime": 0})
    return str(path)


def test_p_values_come_from_the_rows_per_user_files_without_the_run_folders(results, tmp_path):
    """A row added later (on another machine, say) is tested against rows whose runs are gone."""
    from sigerec.evaluation.significance import holm, paired_wilcoxon

    rng = np.random.default_rng(0)
    values = {model: rng.random((2, 60)) * scale for model, scale in (("sige", 1.0), ("lightgcn", 0.8), ("vbpr", 0.9))}
    rows = []
    for model, (recall, ndcg) in values.items():
        row = _row("ml100k", model, "aaa1111")
        row["per_user"] = _per_user_file(tmp_path / "per_user" / f"{model}.csv.gz", recall, ndcg)
        rows.append(row)
    fair.merge_into(results, rows[:2])
    fair.merge_into(results, rows[2:])  # the later row: every row's p-value is corrected over both models
    saved = {(p["model"], p["metric"]): p["p"] for p in json.loads(results.read_text())["p_values"]}
    for index, metric in enumerate(("recall@20", "ndcg@20")):
        raw = [paired_wilcoxon(values["sige"][index], values[model][index]) for model in ("lightgcn", "vbpr")]
        expected = dict(zip(("lightgcn", "vbpr"), holm(raw)))
        assert {model: saved[(model, metric)] for model in expected} == pytest.approx(expected, rel=1e-12)


def test_a_row_without_per_user_metrics_keeps_the_datasets_earlier_p_values(results, tmp_path):
    earlier = [{"dataset": "ml100k", "model": "lightgcn", "metric": "recall@20", "p": 0.04}]
    sige = _row("ml100k", "sige", "aaa1111")
    sige["per_user"] = _per_user_file(tmp_path / "sige.csv.gz", [0.1, 0.2, 0.3], [0.1, 0.2, 0.3])
    results.write_text(json.dumps({"rows": [sige, _row("ml100k", "lightgcn", "aaa1111")], "p_values": earlier}))
    fair.merge_into(results, [_row("ml100k", "vbpr", "bbb2222")])
    assert json.loads(results.read_text())["p_values"] == earlier


def test_the_per_user_file_holds_each_users_mean_over_the_seeds_and_the_same_numbers_give_the_same_bytes(
    tiny_dataset_dir, tmp_path
):
    from sigerec.training import runner
    from sigerec.training.run_report import expand_run_folders, group_per_user, group_runs

    config = runner.resolve_config("bpr", str(tiny_dataset_dir), overrides={"epochs": 2})
    group, _ = runner.train_seeds(config, [1, 2], tmp_path / "runs")
    path = tmp_path / "results" / "fair_per_user" / "tiny" / "bpr.csv.gz"
    fair.save_per_user(group, path)
    first_bytes = path.read_bytes()
    fair.save_per_user(group, path)
    assert path.read_bytes() == first_bytes
    saved_table = fair.per_user_of({"group": str(group), "per_user": str(path)})
    for metric in ("recall@20", "ndcg@20"):
        (runs,) = group_runs(expand_run_folders([group]), [metric], "test")
        expected = group_per_user(runs, metric)
        saved = saved_table[metric]
        assert saved.index.tolist() == sorted(expected.index) and len(saved) > 0
        assert saved.to_dict() == expected.to_dict()  # exact: CSV keeps every digit


def test_a_row_measured_again_unchanged_gains_settings_and_per_user_file_but_keeps_its_record(results):
    fair.merge_into(results, [_row("ml100k", "sige", "aaa1111", group="runs/g")])
    settings = {"n_layers": 2, "temperature": 0.3202770094057608}
    again = {**_row("ml100k", "sige", "bbb2222", group="runs/g"), "settings": settings, "selected_valid": 0.3}
    fair.merge_into(results, [{**again, "per_user": "benchmarks/results/fair_per_user/ml100k/sige.csv.gz"}])
    (row,) = json.loads(results.read_text())["rows"]
    assert row["commit"] == "aaa1111" and row["settings"] == settings
    text = fair.section_content(json.loads(results.read_text()))
    assert "- ml100k / sige (valid R@20 0.3000): `n_layers=2`, `temperature=0.3203`" in text
    assert "`benchmarks/results/fair_per_user/`" in text
