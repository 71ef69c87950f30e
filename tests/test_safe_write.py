"""Crash-safe writes: a file or folder is replaced whole or not at all, and what a killed writer
leaves behind is removed by the next write (never what a live writer is writing)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sigerec import safe_write
from sigerec.safe_write import atomic_write, create_folder, folders, leftovers, remove_leftovers, write_folder


def _dead_process_tag() -> str:
    """``<pid>-<start time>`` of a process that has finished."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return f"{process.pid}-1-{leftovers.HOST}"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")

    def half_then_crash(path: Path) -> None:
        path.write_text("ne")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(target, half_then_crash)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["summary.json"]


def test_numpy_gets_its_suffix_and_readers_patterns_never_match_a_temporary(tmp_path):
    seen = []
    atomic_write(tmp_path / "text_feat.npy", lambda path: (seen.append(path.name), np.save(path, np.ones(2))))
    assert np.load(tmp_path / "text_feat.npy").tolist() == [1.0, 1.0]
    assert seen[0].startswith(".text_feat.npy.sigerec-tmp-") and seen[0].endswith(".tmp.npy")
    atomic_write(tmp_path / "data.inter", lambda path: seen.append(path.name) or path.write_text("x"))
    assert not seen[1].endswith(".inter")  # `*.inter` finds one interaction file, not two


def test_leftovers_of_finished_processes_are_removed_and_a_live_writers_kept(tmp_path):
    dead, alive = _dead_process_tag(), leftovers.process_tag()
    (tmp_path / f".last.pt.sigerec-tmp-{dead}.abc.tmp").write_text("half")
    (tmp_path / f".model.sigerec-staging-{dead}.xyz").mkdir()
    (tmp_path / f".best.pt.sigerec-tmp-{alive}.abc.tmp").write_text("being written")
    # The same process id, started at another time: an earlier process whose id was reused.
    (tmp_path / f".metrics.jsonl.sigerec-tmp-{os.getpid()}-1-{leftovers.HOST}.abc.tmp").write_text("half")
    (tmp_path / ".hidden-but-not-ours").write_text("user's")
    remove_leftovers(tmp_path)
    assert sorted(os.listdir(tmp_path)) == [f".best.pt.sigerec-tmp-{alive}.abc.tmp", ".hidden-but-not-ours"]


def test_another_machines_leftovers_go_only_once_untouched_for_a_day(tmp_path):
    """Ray nodes share a runs folder; this machine cannot ask whether another's writer is alive."""
    recent, stale = (tmp_path / f".{name}.sigerec-staging-1-1-0badc0de.abc" for name in ("a", "b"))
    recent.mkdir()
    stale.mkdir()
    day_ago = time.time() - leftovers.FOREIGN_LEFTOVER_SECONDS - 60
    os.utime(stale, (day_ago, day_ago))
    remove_leftovers(tmp_path)
    assert os.listdir(tmp_path) == [recent.name]


def test_a_folder_moved_aside_by_a_writer_killed_mid_swap_is_moved_back(tmp_path):
    """Where there is no atomic swap, the old folder is moved aside before the new one moves in."""
    aside = tmp_path / f".model.sigerec-old-{_dead_process_tag()}"
    aside.mkdir()
    (aside / "manifest.json").write_text("{}")
    remove_leftovers(tmp_path)
    assert os.listdir(tmp_path) == ["model"] and (tmp_path / "model" / "manifest.json").read_text() == "{}"


def test_write_folder_replaces_the_folder_and_carries_over_what_keep_says(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("old.inter", "notes.txt", "text_feat.npy"):
        (folder / name).write_text(name)
    write_folder(folder, lambda staging: (staging / "new.inter").write_text("new"), keep=lambda n: n != "old.inter")
    assert sorted(os.listdir(folder)) == ["new.inter", "notes.txt", "text_feat.npy"]
    assert os.listdir(tmp_path) == ["data"]  # the old folder and the staging folder are gone


def test_a_failed_build_leaves_the_old_folder_and_names_the_file_it_was_writing(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "manifest.json").write_text("old")

    def build(staging: Path) -> None:
        (staging / "user_vectors.npy").write_text("")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError) as raised:
        write_folder(folder, build)
    assert raised.value.filename == str(folder / "user_vectors.npy")
    assert os.listdir(tmp_path) == ["model"] and (folder / "manifest.json").read_text() == "old"


def test_without_an_atomic_swap_the_folder_is_still_replaced(tmp_path, monkeypatch):
    monkeypatch.setattr(folders, "exchange", lambda first, second: False)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "a").write_text("old")
    write_folder(folder, lambda staging: (staging / "a").write_text("new"))
    assert (folder / "a").read_text() == "new" and os.listdir(tmp_path) == ["model"]


def test_a_mount_point_has_its_entries_replaced_one_by_one(tmp_path, monkeypatch):
    """A volume mounted at the output folder cannot be renamed; its entries can."""
    folder = tmp_path / "volume"
    folder.mkdir()
    for name in ("a", "old-only", "kept"):
        (folder / name).write_text("old")
    (folder / "cache").mkdir()
    monkeypatch.setattr(os.path, "ismount", lambda path: Path(path) == folder)

    def build(staging: Path) -> None:
        (staging / "a").write_text("new")
        (staging / "cache").mkdir()

    write_folder(folder, build, keep=lambda name: name == "kept")
    assert sorted(os.listdir(folder)) == ["a", "cache", "kept"] and (folder / "a").read_text() == "new"
    assert (folder / "kept").read_text() == "old" and os.listdir(tmp_path) == ["volume"]


def test_a_symlinked_folder_is_replaced_where_it_lives_and_the_link_stays(tmp_path):
    (tmp_path / "disk").mkdir()
    (tmp_path / "disk" / "a").write_text("old")
    (tmp_path / "link").symlink_to(tmp_path / "disk")
    write_folder(tmp_path / "link", lambda staging: (staging / "a").write_text("new"))
    assert (tmp_path / "link").is_symlink() and (tmp_path / "disk" / "a").read_text() == "new"


def test_a_process_working_inside_the_folder_follows_it(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path / "data")
    write_folder(Path("."), lambda staging: (staging / "a").write_text("new"))
    assert Path("a").read_text() == "new"


def test_create_folder_takes_the_first_free_name_and_replaces_nothing(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("theirs")
    made = create_folder(tmp_path, ["run", "run-2"], lambda staging: (staging / "config.yaml").write_text("mine"))
    assert made == tmp_path / "run-2" and (made / "config.yaml").read_text() == "mine"
    assert (tmp_path / "run" / "config.yaml").read_text() == "theirs"
    with pytest.raises(FileExistsError):
        create_folder(tmp_path, ["run", "run-2"], lambda staging: None)
    assert sorted(os.listdir(tmp_path)) == ["run", "run-2"]


def test_the_write_step_hook_kills_the_process_at_the_chosen_step(tmp_path):
    """SIGEREC_KILL_AT_WRITE_STEP=2: killed after the new file is written, before it replaces the old."""
    (tmp_path / "a").write_text("old")
    code = "import sys; from pathlib import Path; from sigerec.safe_write import atomic_write; "
    code += "atomic_write(Path(sys.argv[1]), lambda p: p.write_text('new'))"
    environment = {**os.environ, safe_write.KILL_STEP_VARIABLE: "2"}
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a")], check=False, env=environment)
    assert result.returncode == -9
    assert (tmp_path / "a").read_text() == "old" and len(os.listdir(tmp_path)) == 2  # and a leftover
    atomic_write(tmp_path / "a", lambda p: p.write_text("newer"))
    assert os.listdir(tmp_path) == ["a"]
