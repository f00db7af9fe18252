"""CIFAR-10: the papers' split protocols on fake torchvision pickles, and clear errors on broken files."""

from __future__ import annotations

import json
import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from fakedata import write_fake_cifar10

from hashbench.cli.commands import run_tool
from hashbench.data import CIFAR10
from hashbench.data.cifar10 import cifar10_split, load_cifar10, read_split_file
from hashbench.errors import UserError

PER_CLASS = 12  # of the fake data: 120 images, 20 per batch file
SMALL = {
    "query_per_class": 2,
    "train_per_class": 5,
    "val_query_per_class": 1,
    "image_size": 32,
    "num_workers": 0,
}
pytestmark = pytest.mark.filterwarnings("ignore:CIFAR-10. the batches .* are not the official release")


@pytest.fixture
def cifar_root(tmp_path: Path) -> Path:
    return write_fake_cifar10(tmp_path / "cifar10", per_class=PER_CLASS)


def prepare(args: list[str]) -> None:
    """``hashbench prepare <args>`` in this process (a UserError propagates)."""
    run_tool(["prepare", *args])


def _setup(root: Path, **kwargs: object) -> CIFAR10:
    datamodule = CIFAR10(str(root), **{**SMALL, **kwargs})  # type: ignore[arg-type]
    datamodule.setup("fit")
    return datamodule


def test_fake_pickles_have_the_official_structure(cifar_root: Path) -> None:
    folder = cifar_root / "cifar-10-batches-py"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [name for name, _ in torchvision.datasets.CIFAR10.train_list + torchvision.datasets.CIFAR10.test_list]
        + ["batches.meta"]
    )
    with (folder / "data_batch_1").open("rb") as file:
        batch = pickle.load(file, encoding="latin1")
    assert batch["data"].dtype == np.uint8 and batch["data"].shape[1] == 3072
    # torchvision's own loader refuses them: it checks the MD5s of the official files. hashbench reads
    # them, checking their structure, and says that they are not the official files.
    with pytest.raises(RuntimeError, match="corrupted"):
        torchvision.datasets.CIFAR10(str(cifar_root), train=True, download=False)
    with pytest.warns(UserWarning, match="not the official release.*not comparable"):
        _, _, num_train = load_cifar10(cifar_root)
    assert num_train == 10 * PER_CLASS - 20  # all but the test batch


@pytest.mark.parametrize(
    ("protocol", "database"), [("paper", 10 * (PER_CLASS - 7)), ("paper_db_with_train", 10 * 10)]
)
def test_split_sizes_disjointness_and_labels(cifar_root: Path, protocol: str, database: int) -> None:
    datamodule = _setup(cifar_root, protocol=protocol)
    assert (len(datamodule.train_dataset), len(datamodule.query_dataset)) == (50, 20)
    assert len(datamodule.database_dataset) == database
    split = datamodule.split
    assert split is not None
    assert not np.intersect1d(split["query"], split["train"]).size
    assert not np.intersect1d(split["query"], split["database"]).size
    if protocol == "paper":
        assert not np.intersect1d(split["train"], split["database"]).size
        assert len(split["query"]) + len(split["train"]) + len(split["database"]) == 10 * PER_CLASS
    else:
        assert np.isin(split["train"], split["database"]).all()
    image, labels, index = datamodule.query_dataset[3]
    assert image.shape == (3, 32, 32) and image.dtype == torch.uint8  # resized and normalised on the device
    assert labels.shape == (10,) and labels.dtype == torch.float32 and labels.sum() == 1
    assert index == 3
    query_labels = datamodule.query_dataset.labels.argmax(1)
    assert torch.bincount(query_labels, minlength=10).tolist() == [2] * 10
    assert (datamodule.num_classes, datamodule.multi_label, datamodule.top_k) == (10, False, None)


def test_split_is_seeded(cifar_root: Path) -> None:
    _, labels, num_train = load_cifar10(cifar_root)
    first = cifar10_split(labels, num_train, "paper", 2, 5, seed=0)
    again = cifar10_split(labels, num_train, "paper", 2, 5, seed=0)
    other = cifar10_split(labels, num_train, "paper", 2, 5, seed=1)
    assert all(np.array_equal(first[role], again[role]) for role in first)
    assert not np.array_equal(first["query"], other["query"])


def test_setup_builds_every_split_for_any_stage(cifar_root: Path) -> None:
    datamodule = CIFAR10(str(cifar_root), **SMALL)  # type: ignore[arg-type]
    datamodule.setup("test")
    assert len(datamodule.train_dataset) == 50 and len(datamodule.database_dataset) == 50


def test_paper_defaults_need_enough_images(cifar_root: Path) -> None:
    with pytest.raises(UserError, match="fewer than query_per_class"):
        CIFAR10(str(cifar_root)).setup("fit")


def test_loader_batches_and_transforms(cifar_root: Path) -> None:
    datamodule = _setup(cifar_root, image_size=48, batch_size=8)
    images, labels, indices = next(iter(datamodule.train_dataloader()))
    assert images.shape == (8, 3, 32, 32) and labels.shape == (8, 10) and indices.shape == (8,)
    images, _, _ = datamodule.on_after_batch_transfer((images, labels, indices), 0)
    assert images.shape == (8, 3, 48, 48) and images.dtype == torch.float32
    query, database = datamodule.test_dataloader()
    assert len(query.dataset) == 20 and len(database.dataset) == 50
    val_query, val_database = datamodule.val_dataloader()
    assert len(val_query.dataset) == 10 and len(val_database.dataset) == 40


def test_missing_root_names_it_and_how_to_get_the_data(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(UserError, match="does not exist") as error:
        CIFAR10(str(missing)).setup("fit")
    assert str(missing) in str(error.value)
    assert "hashbench prepare cifar10" in str(error.value) and "download" in str(error.value)


def test_missing_batch_file_is_named(cifar_root: Path) -> None:
    (cifar_root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(UserError, match="data_batch_3 not found"):
        CIFAR10(str(cifar_root)).setup("fit")


def test_corrupt_or_foreign_pickle_is_named(cifar_root: Path) -> None:
    batch = cifar_root / "cifar-10-batches-py" / "data_batch_2"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(UserError, match=r"cannot read .*data_batch_2.*corrupt"):
        load_cifar10(cifar_root)
    with batch.open("wb") as file:
        pickle.dump({"data": np.zeros((4, 10), dtype=np.uint8), "labels": [0] * 4}, file)
    with pytest.raises(UserError, match=r"data_batch_2 is not a CIFAR-10 batch"):
        load_cifar10(cifar_root)
    with batch.open("wb") as file:
        pickle.dump({"data": np.zeros((4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 12]}, file)
    with pytest.raises(UserError, match="labels outside"):
        load_cifar10(cifar_root)


def test_download_offline_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", offline)
    with pytest.raises(UserError, match=r"downloading into .* failed .*cifar-10-python.tar.gz"):
        CIFAR10(str(tmp_path / "cifar10"), download=True).prepare_data()


def test_prepare_writes_the_split_the_datamodule_draws(cifar_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "split.json"
    prepare(
        [
            "cifar10",
            "--root",
            str(cifar_root),
            "--query_per_class",
            "2",
            "--train_per_class",
            "5",
            "--val_query_per_class",
            "1",
            "--seed",
            "3",
            "--out",
            str(out),
        ]
    )
    content = json.loads(out.read_text())
    assert (content["seed"], content["protocol"], len(content["query"])) == (3, "paper", 20)
    datamodule = _setup(cifar_root, seed=3)
    assert datamodule.split is not None
    for role in ("query", "train", "database", "val_query"):
        assert content[role] == datamodule.split[role].tolist()
    from_file = _setup(cifar_root, seed=99, split_file=str(out))
    assert from_file.split is not None
    assert from_file.split["query"].tolist() == content["query"]
    with pytest.raises(UserError, match="already exist"):
        prepare(
            [
                "cifar10",
                "--root",
                str(cifar_root),
                "--query_per_class",
                "2",
                "--train_per_class",
                "5",
                "--out",
                str(out),
            ]
        )


def test_split_file_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"query": [0, 1], "train": [1, 2], "database": [3]}))
    with pytest.raises(UserError, match="queries must not be"):
        read_split_file(path, 10)
    path.write_text(json.dumps({"query": [0, 11], "train": [2], "database": [3]}))
    with pytest.raises(UserError, match=r"positions in \[0, 10\)"):
        read_split_file(path, 10)
    with pytest.raises(UserError, match="cannot read the split file"):
        read_split_file(tmp_path / "absent.json", 10)
