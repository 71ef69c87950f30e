"""Helpers of benchmarks/recbole_speed.py: the split RecBole reads, the timing loop, the table."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import recbole_speed
from epoch_timing import TIMES, time_epochs


def test_recbole_files_hold_each_split_of_the_sigerec_dataset(tmp_path):
    source = tmp_path / "toy"
    source.mkdir()
    rows = ["userID\titemID\tx_label", "0\t0\t0", "0\t1\t1", "1\t1\t0", "1\t2\t2", "2\t0\t0", "2\t2\t0"]
    (source / "toy.inter").write_text("\n".join(rows) + "\n")
    n_items = recbole_speed.write_recbole_dataset(source, tmp_path / "recbole", name="toy")
    folder = tmp_path / "recbole" / "toy"
    read = {split: (folder / f"toy.{split}.inter").read_text().splitlines() for split in ("train", "valid", "test")}
    assert n_items == 3
    assert read["train"] == ["user_id:token\titem_id:token", "0\t0", "1\t1", "2\t0", "2\t2"]
    assert read["valid"] == ["user_id:token\titem_id:token", "0\t1"]
    assert read["test"] == ["user_id:token\titem_id:token", "1\t2"]


def test_recbole_evaluates_512_users_per_batch_like_sigerec():
    settings = recbole_speed.recbole_settings(Path("/data"), Path("/work"), n_items=7050)
    assert settings["eval_batch_size"] // (7050 + 1) == 512  # RecBole counts scores, item 0 is padding
    assert (settings["n_layers"], settings["train_batch_size"], settings["topk"]) == (1, 2048, [20])


def test_every_epoch_is_timed_in_wall_and_cpu_seconds():
    calls = []
    times = time_epochs(lambda epoch: calls.append(("train", epoch)), lambda: calls.append(("eval",)), epochs=2)
    assert calls == [("train", 0), ("eval",), ("train", 1), ("eval",)]
    assert set(times) == set(TIMES) and all(len(values) == 2 for values in times.values())
    assert all(value >= 0 for values in times.values() for value in values)


def test_medians_leave_out_each_process_first_epoch():
    runs = [{"train_seconds": [9.0, 1.0, 3.0]}, {"train_seconds": [9.0, 2.0]}]
    assert recbole_speed.warm_median(runs, "train_seconds") == 2.0


def test_the_table_gives_each_time_and_how_many_times_faster_than_recbole():
    def row(library, seconds):
        return {"library": library, **dict.fromkeys(TIMES, seconds)}

    results = {"command": "python benchmarks/recbole_speed.py", "rows": [row("sigerec", 0.5), row("recbole", 2.0)]}
    table = recbole_speed.section_content(results)
    assert "| sigerec | 0.50 (4.0x) | 0.50 (4.0x) | 0.50 (4.0x) | 0.50 (4.0x) |" in table
    assert "| RecBole 1.2.1 | 2.00 (1.0x) |" in table
    assert "Command: `python benchmarks/recbole_speed.py`" in table
