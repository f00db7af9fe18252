"""The validation split of every DataModule, the CIFAR-10 ``official`` protocol and the unseen-class protocol,
on the real on-disk formats (fake CIFAR pickles, list files and JPEGs)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fakedata import write_fake_cifar10, write_fake_listfile_dataset

from hashbench.data import CIFAR10, NUSWIDE, Digits, ImageNet100, RetrievalDataModule
from hashbench.data.cifar10 import cifar10_split, load_cifar10
from hashbench.errors import UserError

pytestmark = pytest.mark.filterwarnings("ignore:CIFAR-10. the batches .* are not the official release")
FAST = {"image_size": 32, "num_workers": 0}
Factory = Callable[..., RetrievalDataModule]


def _digits(tmp: Path, **kwargs: object) -> RetrievalDataModule:
    return Digits(**{"val_query_per_class": 10, **kwargs})  # type: ignore[arg-type]


def _cifar(protocol: str) -> Callable[..., RetrievalDataModule]:
    def make(tmp: Path, **kwargs: object) -> RetrievalDataModule:
        root = tmp / "cifar10"
        if not root.exists():
            write_fake_cifar10(root, per_class=12)
        options = {"query_per_class": 2, "train_per_class": 5, "val_query_per_class": 2, **FAST, **kwargs}
        return CIFAR10(str(root), protocol=protocol, **options)  # type: ignore[arg-type]

    return make


def _nuswide(tmp: Path, **kwargs: object) -> RetrievalDataModule:
    root = tmp / "nus"
    if not root.exists():
        write_fake_listfile_dataset(root, 21, True, sizes=(20, 10, 30), image_size=16)
    return NUSWIDE(str(root), **{"val_queries": 6, **FAST, **kwargs})  # type: ignore[arg-type]


def _relabel(root: Path, num_classes: int, rows: list[list[int]]) -> None:
    """Give line k of each list the positive classes ``rows[k % len(rows)]``."""
    for name in ("train", "test", "database"):
        lines = (root / f"{name}.txt").read_text().splitlines()
        rows_text = [" ".join("1" if i in row else "0" for i in range(num_classes)) for row in rows]
        (root / f"{name}.txt").write_text(
            "".join(f"{line.split()[0]} {rows_text[k % len(rows)]}\n" for k, line in enumerate(lines))
        )


def _imagenet(tmp: Path, **kwargs: object) -> RetrievalDataModule:
    root = tmp / "in"
    if not root.exists():  # 3 classes: the per-class draw needs several database images a class
        write_fake_listfile_dataset(root, 100, False, sizes=(10, 6, 60), image_size=16)
        _relabel(root, 100, [[0], [1], [2]])
    return ImageNet100(str(root), **{"val_queries": 4, **FAST, **kwargs})  # type: ignore[arg-type]


def _nuswide_mixed(tmp: Path, **kwargs: object) -> RetrievalDataModule:
    """NUS-WIDE lists whose lines cycle through seen-only, unseen-only and mixed label sets (unseen: 0–2)."""
    root = tmp / "nus_mixed"
    if not root.exists():
        write_fake_listfile_dataset(root, 21, True, sizes=(20, 10, 30), image_size=16)
        _relabel(root, 21, [[3], [0, 1], [0, 5], [2], [4, 7]])
    return NUSWIDE(str(root), **{"val_queries": 4, **FAST, **kwargs})  # type: ignore[arg-type]


DATASETS = {
    "digits": _digits,
    "cifar10-paper": _cifar("paper"),
    "cifar10-db-with-train": _cifar("paper_db_with_train"),
    "cifar10-official": _cifar("official"),
    "nuswide": _nuswide,
    "imagenet100": _imagenet,
}


def _built(factory: Factory, tmp: Path, **kwargs: object) -> dict[str, np.ndarray]:
    datamodule = factory(tmp, **kwargs)
    datamodule.setup("fit")
    assert datamodule.split is not None
    for role, positions in datamodule.split.items():
        assert len(getattr(datamodule, f"{role}_dataset")) == len(positions)
    return datamodule.split


@pytest.mark.parametrize("name", DATASETS)
def test_validation_queries_are_unseen_database_items(name: str, tmp_path: Path) -> None:
    split = _built(DATASETS[name], tmp_path)
    val = split["val_query"]
    assert len(val) and np.isin(val, split["database"]).all()
    assert not np.intersect1d(val, split["query"]).size and not np.intersect1d(val, split["train"]).size
    assert not np.intersect1d(val, split["val_database"]).size
    assert np.array_equal(np.union1d(split["val_database"], val), np.unique(split["database"]))


@pytest.mark.parametrize("name", DATASETS)
def test_validation_split_is_seeded(name: str, tmp_path: Path) -> None:
    first, again, other = (_built(DATASETS[name], tmp_path, seed=seed) for seed in (0, 0, 1))
    assert all(np.array_equal(first[role], again[role]) for role in first)
    assert not np.array_equal(first["val_query"], other["val_query"])


@pytest.mark.parametrize(("name", "size", "expected"), [("digits", 3, 30), ("cifar10-paper", 1, 10),
                         ("nuswide", 4, 4), ("imagenet100", 2, 6)])  # fmt: skip
def test_validation_size_is_configurable(name: str, size: int, expected: int, tmp_path: Path) -> None:
    option = "val_queries" if name in ("nuswide", "imagenet100") else "val_query_per_class"
    assert len(_built(DATASETS[name], tmp_path, **{option: size})["val_query"]) == expected


@pytest.mark.parametrize("name", ["digits", "cifar10-paper", "nuswide", "imagenet100"])
@pytest.mark.parametrize("size", [0, 1000])
def test_impossible_validation_sizes_are_user_errors(name: str, size: int, tmp_path: Path) -> None:
    option = "val_queries" if name in ("nuswide", "imagenet100") else "val_query_per_class"
    with pytest.raises(UserError, match=r"validation queries .* asked|validation size must be >= 1"):
        _built(DATASETS[name], tmp_path, **{option: size})


def test_test_split_is_the_published_one(tmp_path: Path) -> None:
    """Validation changes neither the test queries nor the database nor (but for ``official``) training."""
    root = write_fake_cifar10(tmp_path / "cifar10", per_class=12)
    _, labels, num_train = load_cifar10(root)
    for protocol in ("paper", "paper_db_with_train", "official"):
        split = _built(_cifar(protocol), tmp_path)
        published = cifar10_split(labels, num_train, protocol, 2, 5, seed=0)  # type: ignore[arg-type]
        assert np.array_equal(split["query"], published["query"])
        assert np.array_equal(split["database"], published["database"])
        kept_train = np.setdiff1d(published["train"], split["val_query"])
        assert np.array_equal(split["train"], kept_train if protocol == "official" else published["train"])
    nus = _nuswide(tmp_path)
    nus.setup("fit")
    database_paths = [line.split()[0] for line in (tmp_path / "nus/database.txt").read_text().splitlines()]
    assert nus.database_dataset.paths == database_paths  # type: ignore[attr-defined]


def test_cifar10_official_protocol(tmp_path: Path) -> None:
    """Queries = the official test batch, database = the official training batches; the validation
    queries are official training images taken out of training."""
    split = _built(_cifar("official"), tmp_path)
    _, labels, num_train = load_cifar10(tmp_path / "cifar10")
    assert np.array_equal(split["query"], np.arange(num_train, len(labels)))
    assert np.array_equal(split["database"], np.arange(num_train))
    assert (
        len(split["train"]) == num_train - 20 and np.bincount(labels[split["val_query"]]).tolist() == [2] * 10
    )


def test_val_list_is_read_and_checked(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = write_fake_listfile_dataset(tmp_path / "data", 21, True, sizes=(20, 10, 30), image_size=16)
    with caplog.at_level(logging.INFO):
        NUSWIDE(str(root), **FAST).setup("fit")  # type: ignore[arg-type]
    assert sum("no validation list" in record.getMessage() for record in caplog.records) == 1
    database = (root / "database.txt").read_text().splitlines()
    (root / "val.txt").write_text("\n".join(database[3:7]) + "\n")
    datamodule = NUSWIDE(str(root), **FAST)  # type: ignore[arg-type]
    datamodule.setup("fit")
    assert datamodule.val_query_dataset.paths == [line.split()[0] for line in database[3:7]]  # type: ignore[attr-defined]
    assert len(datamodule.val_database_dataset) == 26 and len(datamodule.database_dataset) == 30
    with pytest.raises(UserError, match="val_queries sets how many"):
        NUSWIDE(str(root), val_queries=3, **FAST).setup("fit")  # type: ignore[arg-type]
    for other in ("test", "train"):
        line = (root / f"{other}.txt").read_text().splitlines()[0]
        (root / "val.txt").write_text(f"{database[0]}\n{line}\n")
        with pytest.raises(UserError, match="are not database items"):
            NUSWIDE(str(root), **FAST).setup("fit")  # type: ignore[arg-type]
    # A training image that is also a database image (train ⊂ database, as NUS-WIDE's lists) is refused too.
    (root / "database.txt").write_text(
        "\n".join([*database, (root / "train.txt").read_text().splitlines()[0]])
    )
    (root / "val.txt").write_text(f"{database[0]}\n{(root / 'train.txt').read_text().splitlines()[0]}\n")
    with pytest.raises(UserError, match="1 are training images"):
        NUSWIDE(str(root), **FAST).setup("fit")  # type: ignore[arg-type]


def test_cifar10_split_file_without_val_query_is_carved(tmp_path: Path) -> None:
    root = write_fake_cifar10(tmp_path / "cifar10", per_class=12)
    drawn = _built(_cifar("paper"), tmp_path)
    file = tmp_path / "old_split.json"
    file.write_text(json.dumps({role: drawn[role].tolist() for role in ("query", "train", "database")}))
    from_file = _built(_cifar("paper"), tmp_path, split_file=str(file))
    assert np.array_equal(from_file["val_query"], drawn["val_query"])
    file.write_text(json.dumps({**json.loads(file.read_text()), "val_query": drawn["query"][:3].tolist()}))
    with pytest.raises(UserError, match="are test queries"):
        CIFAR10(str(root), split_file=str(file), **FAST).setup("fit")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "factory", [_digits, _cifar("paper"), _nuswide_mixed], ids=["digits", "cifar10", "nuswide"]
)
def test_unseen_class_protocol(factory: Factory, tmp_path: Path) -> None:
    """Training keeps images with seen labels only; every other split images with unseen labels only."""
    datamodule = factory(tmp_path, unseen_classes=[0, 1, 2])
    datamodule.setup("fit")
    for role in ("train", "query", "database", "val_query", "val_database"):
        labels = getattr(datamodule, f"{role}_dataset").labels.numpy().astype(bool)
        unseen, seen = labels[:, :3].any(axis=1), labels[:, 3:].any(axis=1)
        assert len(labels) and ((seen & ~unseen) if role == "train" else (unseen & ~seen)).all(), role
    if factory is _nuswide_mixed:  # lines cycle through 5 label sets, 2 of them unseen-only, 1 mixed
        assert len(datamodule.database_dataset) == 12 and len(datamodule.train_dataset) == 8
        default = factory(tmp_path, unseen_classes=[0, 1, 2], val_queries=None)
        default.setup("fit")  # as many validation queries as the (unseen-class) test queries
        assert len(default.val_query_dataset) == len(default.query_dataset) == 4
    drawn = factory(tmp_path, unseen_classes=0.5)
    drawn.setup("fit")
    with pytest.raises(UserError, match="leave at least one class seen"):
        factory(tmp_path, unseen_classes=list(range(datamodule.num_classes))).setup("fit")


def test_digits_demo_defaults() -> None:
    """The demo protocol: 200 test queries, 800 training images, 797 database images as before; 20
    validation queries a class from the database, ranked against the other 597."""
    datamodule = Digits()
    datamodule.setup("fit")
    sizes = [len(getattr(datamodule, f"{role}_dataset")) for role in ("query", "train", "database")]
    assert sizes == [200, 800, 797]
    assert (len(datamodule.val_query_dataset), len(datamodule.val_database_dataset)) == (200, 597)
    assert (datamodule.eval_batch_size, datamodule.num_workers) == (512, 0)
