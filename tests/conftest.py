"""Shared fixtures: the real data folder beside the repository and tiny hand-made datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real Amazon, TikTok and MovieLens files; present in CI)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not present")
    return SHARED_DATA


def write_inter(folder: Path, rows: list[tuple], name: str = "tiny", header: str = "userID\titemID\tx_label") -> Path:
    """Write ``<folder>/<name>.inter`` from rows of (user, item, label)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.inter"
    lines = [header] + ["\t".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_split_of_training_items(folder: Path, train_items: dict[int, range]) -> Path:
    """A dataset folder whose users have the given training items, each with one valid and one
    test item (100 and 101) that no user trains on; returns the folder."""
    rows = [(u, i, 0) for u, items in train_items.items() for i in items]
    write_inter(folder, rows + [(u, 100, 1) for u in train_items] + [(u, 101, 2) for u in train_items])
    return folder


@pytest.fixture
def tiny_dataset_dir(tmp_path: Path) -> Path:
    """4 users x 6 items with every user in train, valid and test."""
    rows = []
    for user in range(4):
        for offset in range(4):
            rows.append((user, (user + offset) % 6, 0))
        rows.append((user, (user + 4) % 6, 1))
        rows.append((user, (user + 5) % 6, 2))
    folder = tmp_path / "tiny"
    write_inter(folder, rows)
    return folder


@pytest.fixture(scope="session")
def baby_subset_dir(tmp_path_factory) -> Path:
    """The first 400 users of the built-in (real) Amazon Baby data: small, fast, real."""
    import gzip

    from sigerec.data.builtin import builtin_dataset_path

    source = builtin_dataset_path("baby") / "baby.inter.gz"
    with gzip.open(source, "rt") as handle:
        header, *lines = handle.read().splitlines()
    kept = [line for line in lines if int(line.split("\t", 1)[0]) < 400]
    folder = tmp_path_factory.mktemp("data") / "babysub"
    folder.mkdir()
    (folder / "babysub.inter").write_text("\n".join([header, *kept]) + "\n")
    return folder
