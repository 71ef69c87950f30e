"""A full disk, a failing disk or missing permissions: one message that names the file and what to
do, exit code 1, no traceback, and every earlier output as it was.

The disk fills up in the test's process: ``os.fsync``, which every writer calls on each new file
before it replaces an old one (``sigerec.safe_write``), raises ENOSPC as a full disk does there.
Two tests make a real write fail instead, in a process whose file size limit is too small.
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sigerec.cli.main import app
from sigerec.safe_write import ASIDE_MARK, STAGING_MARK, TEMPORARY_MARK


def invoke(*args):
    return CliRunner().invoke(app, [str(arg) for arg in args])


def succeed(*args) -> None:
    result = invoke(*args)
    assert result.exit_code == 0, result.output


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` but the encoders' batch cache (what a rerun continues from)."""
    paths = [p for p in sorted(folder.rglob("*")) if p.is_file() and ".sigerec-cache" not in p.parts]
    return {str(p.relative_to(folder)): p.read_bytes() for p in paths}


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if any(mark in p.name for mark in (TEMPORARY_MARK, STAGING_MARK, ASIDE_MARK))]


def fail_writes(monkeypatch, code: int = errno.ENOSPC, name: str = "", after: int = 0) -> None:
    """Flushing a written file whose path holds ``name`` fails with ``code``, after ``after`` such
    files were flushed."""
    flush, flushed = os.fsync, []

    def fsync(handle):
        path = os.readlink(f"/proc/self/fd/{handle}")
        if not os.path.isdir(path) and name in path:
            flushed.append(path)
            if len(flushed) > after:
                raise OSError(code, os.strerror(code))
        flush(handle)

    monkeypatch.setattr(os, "fsync", fsync)


def assert_write_error(result, *fragments: str) -> None:
    """Exit code 1 and one ``error:`` message holding every fragment, no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.output.count("error:") == 1 and "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output


def _interactions(path: Path, users: int, seed: int) -> Path:
    path.write_text("user,item\n" + "".join(f"u{u},i{(u * seed + k) % 9}\n" for u in range(users) for k in range(5)))
    return path


SYNTH = ["data", "synth", "--users", "40", "--items", "30", "--interactions", "400", "--modalities", "text:4"]


@pytest.mark.parametrize(
    ("writer", "folder_name"),
    [("import", "shop"), ("synth", "synth-x"), ("encode", "dataset"), ("export", "model")],
)
def test_a_full_disk_names_the_file_and_leaves_the_earlier_output(
    writer, folder_name, tiny_dataset_dir, tmp_path, monkeypatch
):
    out = tmp_path / folder_name
    if writer == "import":
        succeed(
            "data",
            "import",
            _interactions(tmp_path / "old.csv", 10, 1),
            "--user-col",
            "user",
            "--item-col",
            "item",
            "--out",
            out,
        )
        command = ["data", "import", _interactions(tmp_path / "new.csv", 12, 2), "--user-col", "user"]
        command += ["--item-col", "item", "--force", "--out", out]
    elif writer == "synth":
        succeed(*SYNTH, "--seed", "1", "--out", out)
        command = [*SYNTH, "--seed", "2", "--force", "--out", out]
    elif writer == "encode":
        shutil.copytree(tiny_dataset_dir, out)
        (tmp_path / "items.tsv").write_text("item\tgenres\n0\ta b\n1\tb\n")
        command = ["encode", "categories", tmp_path / "items.tsv", "--data", out, "--id-col", "item"]
        command += ["--category-col", "genres", "-q"]
        succeed(*command)
        (tmp_path / "items.tsv").write_text("item\tgenres\n0\ta\n2\tb c\n")
    else:
        train = ["train", "--data", tiny_dataset_dir, "--model", "bpr", "--epochs", "1", "-q", "--out"]
        succeed(*train, tmp_path / "runs-1", "--seed", "1")
        succeed(*train, tmp_path / "runs-2", "--seed", "2")
        (run_1,), (run_2,) = (list((tmp_path / f"runs-{seed}").iterdir()) for seed in (1, 2))
        succeed("export", run_1, "--out", out)
        command = ["export", run_2, "--force", "--out", out]
    before = files(out)
    fail_writes(monkeypatch)
    assert_write_error(invoke(*command), f"{out}{os.sep}", "disk is full", "Free space", "run the same command again")
    assert files(out) == before and not leftovers(tmp_path)
    monkeypatch.undo()
    succeed(*command)  # with space again, the same command does the job
    assert files(out) != before


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        (errno.EIO, "input/output error"),
        (errno.EACCES, "permission denied"),
        (errno.EROFS, "read-only"),
        (errno.EDQUOT, "quota"),
    ],
)
def test_each_kind_of_write_error_says_what_to_do(code, advice, tmp_path, monkeypatch):
    out = tmp_path / "shop"
    fail_writes(monkeypatch, code)
    result = invoke(
        "data",
        "import",
        _interactions(tmp_path / "a.csv", 10, 1),
        "--user-col",
        "user",
        "--item-col",
        "item",
        "--out",
        out,
    )
    assert_write_error(result, str(out), advice)
    assert not out.exists() and not leftovers(tmp_path)


def test_a_disk_full_in_the_middle_of_training_is_finished_by_resume(tiny_dataset_dir, tmp_path, monkeypatch):
    train = ["train", "--data", tiny_dataset_dir, "--model", "bpr", "--epochs", "3", "-q", "--out"]
    succeed(*train, tmp_path / "whole")
    fail_writes(monkeypatch, name="last.pt", after=1)  # epoch 0 is saved, epoch 1 is not
    assert_write_error(invoke(*train, tmp_path / "cut"), "last.pt", "disk is full", "train --resume")
    monkeypatch.undo()
    (cut,), (whole,) = list((tmp_path / "cut").iterdir()), list((tmp_path / "whole").iterdir())
    assert (cut / "checkpoints" / "last.pt").is_file() and not (cut / "summary.json").exists()
    succeed("train", "--resume", cut, "-q")
    assert (cut / "test_per_user.csv").read_bytes() == (whole / "test_per_user.csv").read_bytes()
    assert not leftovers(tmp_path)


def test_a_disk_full_in_the_middle_of_a_search_reruns_the_trial(tiny_dataset_dir, tmp_path, monkeypatch):
    space = tmp_path / "space.yaml"
    space.write_text("n_layers: {choices: [1, 2], source: test}\n")
    tune = ["tune", "--data", tiny_dataset_dir, "--model", "lightgcn", "--space", space, "--trials", "2"]
    tune += ["--set", "epochs=2", "--out", tmp_path / "study"]
    fail_writes(monkeypatch, name="last.pt", after=3)  # in the second trial
    assert_write_error(invoke(*tune), "disk is full")
    monkeypatch.undo()
    result = invoke(*tune)
    assert result.exit_code == 0, result.output
    assert "1 interrupted one(s) to rerun" in result.output
    assert (tmp_path / "study" / "best.yaml").is_file() and not leftovers(tmp_path)


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (1500, 1500))


def _under_file_size_limit(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "sigerec.cli.main", *map(str, args)]
    return subprocess.run(command, check=False, preexec_fn=_limit_file_size, capture_output=True, text=True)


def test_a_real_write_error_in_a_real_process_names_the_file(tmp_path):
    """No mock: the process may not write files over 1,500 bytes (``ulimit -f``), so the
    interaction file's write fails with EFBIG."""
    out = tmp_path / "synth-x"
    succeed(*SYNTH, "--seed", "1", "--out", out)
    before = files(out)
    result = _under_file_size_limit(*SYNTH, "--seed", "2", "--force", "--out", out)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"{out / 'synth-x.inter'}: cannot write" in result.stderr and "ulimit -f" in result.stderr
    assert files(out) == before and not leftovers(tmp_path)


def test_a_checkpoint_too_large_to_write_names_it_and_the_run_resumes(tiny_dataset_dir, tmp_path):
    """torch.save says only "unexpected pos" when the disk is full or the file too large; the
    message still names the checkpoint and what to do."""
    result = _under_file_size_limit(
        "train", "--data", tiny_dataset_dir, "--model", "lightgcn", "--epochs", "2", "-q", "--out", tmp_path
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "best.pt: cannot write" in result.stderr and "ulimit -f" in result.stderr
    (run,) = (path for path in tmp_path.iterdir() if path.is_dir() and path.name.startswith("lightgcn"))
    succeed("train", "--resume", run, "-q")
    assert (run / "summary.json").is_file() and not leftovers(tmp_path)
