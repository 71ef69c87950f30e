"""Pure helpers of the benchmark scripts: result merging, tables, feature captions, item maps."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import multimodal
import prepare_data
from common import describe_features, write_section


def _row(dataset, model, recall, variant=None, overrides=None):
    return {
        "dataset": dataset,
        "model": model,
        "variant": variant,
        "overrides": overrides or {},
        "test": {"recall@10": recall / 2, "recall@20": recall, "ndcg@10": recall / 4, "ndcg@20": recall / 3},
        "valid": {"recall@20": recall + 0.01},
        "best_epoch": 3,
        "epochs": 5,
        "train_seconds_per_epoch": 1.5,
        "peak_memory_mb": 500.0,
        "device": "cpu",
        "torch_threads": 2,
    }


def test_merge_replaces_rows_of_the_same_dataset_model_and_settings():
    earlier = [_row("ml100k", "bpr", 0.1), _row("baby", "bpr", 0.2)]
    new = [_row("baby", "bpr", 0.3), _row("baby", "bpr", 0.4, overrides={"n_layers": "3"})]
    merged = multimodal.merge_results(earlier, new)
    assert [(r["dataset"], r["test"]["recall@20"]) for r in merged] == [("ml100k", 0.1), ("baby", 0.3), ("baby", 0.4)]


def test_parse_settings_keeps_values_as_text():
    assert multimodal.parse_settings(["infusion_alpha=0", "anchor = none"]) == {"infusion_alpha": "0", "anchor": "none"}
    with pytest.raises(SystemExit):
        multimodal.parse_settings(["no-equals-sign"])


def test_dataset_tables_list_models_in_the_requested_order_under_their_features():
    rows = [_row("ml100k", "lightgcn", 0.2), _row("ml100k", "bpr", 0.1)]
    rows[0]["features"] = rows[1]["features"] = ["`text` (384-d): coverage 100%"]
    text = multimodal.dataset_tables(rows, "bpr,lightgcn", "ml100k")
    assert text.index("`text` (384-d)") < text.index("| bpr |") < text.index("| lightgcn |")
    assert "| bpr | 0.1100 | 0.0500 | 0.1000 | 0.0250 | 0.0333 | 3 | 5 | 1.50 | 500 | cpu (2 threads) |" in text


def test_ablation_table_gives_differences_to_the_full_model():
    rows = [
        _row("ml100k", "sige", 0.20, variant="full"),
        _row("ml100k", "sige", 0.15, variant="no-infusion", overrides={"infusion_alpha": "0"}),
    ]
    table = multimodal.ablation_table(rows).splitlines()
    assert table[2].startswith("| full SIGE | defaults | 0.2000 |")
    assert "| -0.0500 (-25.0%) |" in table[3] and "`infusion_alpha=0`" in table[3]


def test_ablation_table_leaves_out_rows_of_other_settings():
    rows = [_row("ml100k", "sige", 0.20, variant="full"), _row("ml100k", "sige", 0.1, variant="no-anchor")]
    rows[1]["overrides"] = {"anchor": "none"}  # an older definition of the variant
    assert "w/o anchor" not in multimodal.ablation_table(rows)
    assert "full SIGE" not in multimodal.ablation_table(rows, {"n_ui_layers": "3"})


def test_describe_features_names_source_encoder_and_coverage():
    metadata = {
        "modality": "genre",
        "dim": 19,
        "source": "/data/ml-100k.item",
        "encoder": {"kind": "categories", "column": "class", "n_categories": 19},
        "encoded": 1447,
        "n_items": 1447,
        "coverage": 1.0,
    }
    line = describe_features(metadata)
    assert "multi-hot of column `class` (19 labels)" in line and "1,447/1,447 items (100.0%)" in line


def test_describe_features_of_a_knowledge_graph_names_both_files():
    metadata = {
        "modality": "kg",
        "dim": 128,
        "source": {"kg_file": "/data/ml-100k.kg", "link_file": "/x/ml-100k.rekeyed.link"},
        "encoder": {"kind": "knowledge-graph one-hop multi-hot + truncated SVD"},
        "features_kept": 7767,
        "encoded": 1295,
        "n_items": 1447,
        "mean_filled": 152,
        "coverage": 1295 / 1447,
    }
    line = describe_features(metadata)
    assert "(7,767 shared facts) from `ml-100k.kg + ml-100k.rekeyed.link`" in line
    assert "1,295/1,447 items (89.5%), the other 152 mean-filled" in line


def test_feature_captions_list_only_the_modalities_a_run_used(tmp_path):
    import json

    for modality in ("text", "genre", "kg"):
        (tmp_path / f"{modality}_feat.npy").write_bytes(b"")
        (tmp_path / f"{modality}_feat.json").write_text(json.dumps({"modality": modality}))
    used = multimodal.used_feature_sources
    assert [m["modality"] for m in used(tmp_path, {"modalities": ["kg", "text"]})] == ["kg", "text"]
    assert [m["modality"] for m in used(tmp_path, {})] == ["genre", "kg", "text"]


def test_write_section_appends_missing_markers_then_replaces_between_them(tmp_path):
    doc = tmp_path / "bench.md"
    doc.write_text("# Benchmarks\n")
    write_section(doc, "multimodal", "first")
    write_section(doc, "multimodal", "second")
    assert doc.read_text() == "# Benchmarks\n\n<!-- multimodal:start -->\nsecond\n<!-- multimodal:end -->\n"


def test_sports_item_map_is_written_in_mmrec_format_and_checked_against_titles(tmp_path):
    asin_map = tmp_path / "map.tsv"
    asin_map.write_text("itemID\tasin\n0\tB01\n1\tB02\n")
    titles = tmp_path / "titles.jsonl"
    titles.write_text('{"itemID": 1, "asin": "B02", "title": "Bike pump"}\n')
    target = tmp_path / "i_id_mapping.csv"
    prepare_data.write_item_map(asin_map, titles, target)
    assert target.read_text() == "asin\titemID\nB01\t0\nB02\t1\n"
    titles.write_text('{"itemID": 0, "asin": "B02", "title": "Bike pump"}\n')
    with pytest.raises(SystemExit):
        prepare_data.write_item_map(asin_map, titles, target)


def test_selected_table_keeps_each_models_best_valid_setting_and_names_it():
    rows = [
        _row("ml100k", "sige", 0.10),
        _row("ml100k", "sige", 0.30, overrides={"align_weight": "0.001"}),
        _row("ml100k", "mgcn", 0.20),
        _row("baby", "mgcn", 0.05),
    ]
    chosen = multimodal.valid_selected(rows)
    assert chosen[("ml100k", "sige")]["overrides"] == {"align_weight": "0.001"}
    text = multimodal.selected_table(rows, "mgcn,sige", "ml100k,baby")
    assert "| model | ml100k: test R@20 / N@20 | baby: test R@20 / N@20 |" in text
    assert "| sige | **0.3000** / **0.1000** (1) |  |" in text
    assert "| mgcn | 0.2000 / 0.0667 | **0.0500** / **0.0167** |" in text
    assert "(1) sige on ml100k: `align_weight=0.001`" in text


def test_ablation_rows_are_grouped_by_the_settings_they_started_from():
    rows = [
        {**_row("ml100k", "sige", 0.1, "full"), "base_settings": {}},
        {**_row("ml100k", "sige", 0.3, "full", {"align_weight": "0.001"}), "base_settings": {"align_weight": "0.001"}},
        {**_row("ml100k", "sige", 0.2, "no-infusion", {"infusion_alpha": 0}), "base_settings": {}},
    ]
    groups = multimodal.base_settings_groups(rows)
    assert groups == [{}, {"align_weight": "0.001"}]
    tuned = multimodal.ablation_table(rows, groups[1])
    assert "| full SIGE | base settings only | 0.3000 |" in tuned and "w/o infusion" not in tuned


def test_a_finished_run_becomes_a_results_row_with_the_settings_it_changed(tiny_dataset_dir, tmp_path):
    from sigerec.training import runner

    config = runner.resolve_config("bpr", str(tiny_dataset_dir), overrides={"reg_weight": 0.001, "epochs": 2})
    run, summary = runner.train(config, tmp_path / "runs")
    row = multimodal.collected_run_row(run.path)
    assert row["dataset"] == tiny_dataset_dir.name and row["model"] == "bpr"
    assert row["overrides"] == {"reg_weight": 0.001} and row["epoch_cap"] == 2
    assert row["test"] == summary["test"] and row["variant"] is None
    assert multimodal.result_key(row) == ("tiny", "bpr", None, '{"reg_weight": 0.001}')
    # The row names the benchmark command that trains the same configuration and adds its row,
    # and keeps the `sigerec train` command and the run folder it came from.
    assert row["command"] == (
        "python benchmarks/multimodal.py --datasets tiny --models bpr --set reg_weight=0.001 "
        f"--data-root {tiny_dataset_dir.resolve().parent} --epochs 2"
    )
    assert row["invoked"].startswith(
        f"sigerec train --data {tiny_dataset_dir.resolve()} --model bpr --seed 999 --epochs 2 --set reg_weight=0.001"
    )
    assert run.path.name in row["invoked"] and run.path.name in row["note"]
    assert row["measured"] == multimodal.run_date(run.path) and len(row["measured"]) == 10
    assert row["commit"].startswith("not recorded")


def test_an_unfinished_run_cannot_be_added(tmp_path):
    with pytest.raises(SystemExit, match="no summary.json; finish the run first"):
        multimodal.collected_run_row(tmp_path)


def test_only_sige_runs_can_be_added_as_ablation_variants(tiny_dataset_dir, tmp_path):
    from sigerec.training import runner

    config = runner.resolve_config("bpr", str(tiny_dataset_dir), overrides={"epochs": 1})
    run, _ = runner.train(config, tmp_path / "runs")
    with pytest.raises(SystemExit, match="not a SIGE ablation variant"):
        multimodal.collected_run_row(run.path, ablation=True)
