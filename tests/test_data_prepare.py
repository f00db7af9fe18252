"""``hashbench prepare``: list files from fake official COCO, NUS-WIDE and ImageNet distributions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fakedata import (
    MIRFLICKR_LABELS,
    NUSWIDE_CONCEPTS,
    VOC_CLASSES,
    write_fake_coco,
    write_fake_imagenet,
    write_fake_mirflickr,
    write_fake_nuswide,
    write_fake_voc,
)

from hashbench.cli.commands import run_tool
from hashbench.data import COCO, NUSWIDE, VOC, ImageNet100, MIRFlickr
from hashbench.data.prepare import split_query_database
from hashbench.errors import UserError


def prepare(args: list[str]) -> None:
    """``hashbench prepare <args>`` in this process (a UserError propagates)."""
    run_tool(["prepare", *args])


def _read(path: Path) -> dict[str, np.ndarray]:
    """A list file as ``{image path: labels}``."""
    rows = [line.split() for line in path.read_text().splitlines()]
    return {row[0]: np.array(row[1:], dtype=int) for row in rows}


def _lists(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    return {name: _read(folder / f"{name}.txt") for name in ("train", "test", "database", "val")}


def _check_protocol(
    lists: dict[str, dict[str, np.ndarray]],
    sizes: tuple[int, int, int, int],
    num_classes: int,
    train_in_database: bool = True,
) -> None:
    """Query and database disjoint, train drawn from the database (or beside it), validation queries
    database images that are neither training images nor queries; sizes and label counts as asked."""
    train, query, database, val = lists["train"], lists["test"], lists["database"], lists["val"]
    assert (len(train), len(query), len(database), len(val)) == sizes
    assert not query.keys() & database.keys()
    assert (train.keys() <= database.keys()) if train_in_database else not (train.keys() & database.keys())
    assert val.keys() <= database.keys() and not val.keys() & (train.keys() | query.keys())
    for entries in lists.values():
        assert all(len(labels) == num_classes and labels.sum() >= 1 for labels in entries.values())


def test_split_query_database_is_seeded_and_disjoint() -> None:
    first = split_query_database(50, 10, 20, seed=0)
    assert all(np.array_equal(first[k], split_query_database(50, 10, 20, seed=0)[k]) for k in first)
    assert not np.array_equal(first["query"], split_query_database(50, 10, 20, seed=1)["query"])
    assert sorted([*first["query"], *first["database"]]) == list(range(50))
    assert np.isin(first["train"], first["database"]).all() and len(set(first["train"])) == 20
    with pytest.raises(UserError, match="fewer than --num_query 40 \\+ --num_train"):
        split_query_database(50, 40, 20, seed=0)


def test_prepare_coco(tmp_path: Path) -> None:
    root = write_fake_coco(tmp_path / "coco", images=(40, 30), without_category=3)
    prepare(["coco", "--root", str(root), "--num_query", "10", "--num_train", "20", "--seed", "5"])
    lists = _lists(root)
    _check_protocol(lists, (20, 10, 64 - 10, 10), 80)  # 70 images, 6 without a category
    everything = {**lists["test"], **lists["database"]}
    assert {path.split("/")[0] for path in everything} == {"train2014", "val2014"}
    assert all((root / path).is_file() for path in everything)
    annotations = json.loads((root / "annotations" / "instances_val2014.json").read_text())
    first_tagged = next(a for a in annotations["annotations"])
    image = next(i for i in annotations["images"] if i["id"] == first_tagged["image_id"])
    ids = sorted(c["id"] for c in annotations["categories"])
    tagged = {a["category_id"] for a in annotations["annotations"] if a["image_id"] == image["id"]}
    assert np.flatnonzero(everything[f"val2014/{image['file_name']}"]).tolist() == sorted(
        ids.index(c) for c in tagged
    )
    manifest = json.loads((root / "prepare.json").read_text())
    assert manifest["counts"] == {
        "train": 20,
        "query": 10,
        "database": 54,
        "val_query": 10,
        "dropped_without_category": 6,
        "dropped_missing": 0,
    }
    assert manifest["options"]["seed"] == 5 and len((root / "classes.txt").read_text().splitlines()) == 80
    # Same seed → the same lists; another seed → other lists.
    again, other = tmp_path / "again", tmp_path / "other"
    prepare(
        [
            "coco",
            "--root",
            str(root),
            "--num_query",
            "10",
            "--num_train",
            "20",
            "--seed",
            "5",
            "--out",
            str(again),
        ]
    )
    prepare(["coco", "--root", str(root), "--num_query", "10", "--num_train", "20", "--out", str(other)])
    assert (again / "test.txt").read_text() == (root / "test.txt").read_text()
    assert (other / "test.txt").read_text() != (root / "test.txt").read_text()
    datamodule = COCO(str(root), image_size=32, num_workers=0)
    datamodule.setup("fit")
    assert len(datamodule.database_dataset) == 54


def test_prepare_coco_errors(tmp_path: Path) -> None:
    root = write_fake_coco(tmp_path / "coco")
    with pytest.raises(
        UserError, match=r"COCO: the annotation file .*instances_train2014.json.gz does not exist. Get"
    ):
        prepare(["coco", "--root", str(root), "--annotations", "[annotations/instances_train2014.json.gz]"])
    (root / "annotations" / "broken.json").write_text("{not json")
    with pytest.raises(UserError, match=r"cannot read .*broken.json .*corrupt"):
        prepare(["coco", "--root", str(root), "--annotations", "[annotations/broken.json]"])
    with pytest.raises(UserError, match="fewer than --num_query"):
        prepare(["coco", "--root", str(root)])  # the paper's 5,000 + 10,000 from 64 images
    prepare(["coco", "--root", str(root), "--num_query", "5", "--num_train", "5"])
    with pytest.raises(UserError, match="already exist; pass --overwrite"):
        prepare(["coco", "--root", str(root), "--num_query", "5", "--num_train", "5"])
    for path in list((root / "val2014").iterdir())[:4]:
        path.unlink()
    prepare(
        [
            "coco",
            "--root",
            str(root),
            "--num_query",
            "5",
            "--num_train",
            "5",
            "--overwrite",
            "--drop_missing",
        ]
    )
    assert json.loads((root / "prepare.json").read_text())["counts"]["dropped_missing"] >= 1
    assert all((root / path).is_file() for path in _read(root / "database.txt"))


def test_prepare_nuswide(tmp_path: Path) -> None:
    root = write_fake_nuswide(tmp_path / "nus", num_images=80, without_concept=4)
    prepare(["nuswide", "--root", str(root), "--num_query", "10", "--num_train", "20"])
    lists = _lists(root)
    _check_protocol(lists, (20, 10, 76 - 10, 10), 21)
    classes = (root / "classes.txt").read_text().split()
    assert len(classes) == 21 and classes == sorted(classes) and set(classes) <= set(NUSWIDE_CONCEPTS)
    counts = {
        c: sum(int(v) for v in (root / f"Groundtruth/AllLabels/Labels_{c}.txt").read_text().split())
        for c in NUSWIDE_CONCEPTS
    }
    assert min(counts[c] for c in classes) >= max(counts[c] for c in NUSWIDE_CONCEPTS if c not in classes)
    path, labels = next(iter(lists["test"].items()))
    assert path.startswith("Flickr/") and "\\" not in path and (root / path).is_file()
    position = (
        (root / "ImageList/Imagelist.txt")
        .read_text()
        .split()
        .index(path.removeprefix("Flickr/").replace("/", "\\"))
    )
    for column, concept in enumerate(classes):
        concept_labels = (root / f"Groundtruth/AllLabels/Labels_{concept}.txt").read_text().split()
        assert labels[column] == int(concept_labels[position])
    datamodule = NUSWIDE(str(root), image_size=32, num_workers=0)
    datamodule.setup("fit")
    assert len(datamodule.train_dataset) == 20


def test_prepare_nuswide_rejects_broken_label_files(tmp_path: Path) -> None:
    root = write_fake_nuswide(tmp_path / "nus")
    label_file = root / "Groundtruth/AllLabels/Labels_sky.txt"
    label_file.write_text(label_file.read_text() + "1\n")
    with pytest.raises(
        UserError, match=r"Labels_sky.txt must hold one 0/1 per image .* \(80 lines\), but has 81"
    ):
        prepare(["nuswide", "--root", str(root), "--num_query", "10", "--num_train", "20"])
    with pytest.raises(UserError, match=r"no Labels_<concept>\.txt files"):
        prepare(["nuswide", "--root", str(root), "--labels_dir", "Groundtruth"])


def test_prepare_imagenet100(tmp_path: Path) -> None:
    root = write_fake_imagenet(tmp_path / "imagenet", num_classes=100, train_per_class=4, val_per_class=2)
    classes = root / "imagenet100_classes.txt"
    prepare(
        [
            "imagenet100",
            "--root",
            str(root),
            "--classes",
            str(classes),
            "--train_per_class",
            "2",
            "--query_per_class",
            "2",
            "--val_per_class",
            "1",
        ]
    )
    lists = _lists(root)
    _check_protocol(lists, (200, 200, 400, 100), 100)
    wnids = classes.read_text().split()
    assert all(path.startswith("val/") for path in lists["test"]) and all(
        p.startswith("train/") for p in lists["database"]
    )
    for entries in lists.values():
        for path, labels in entries.items():
            assert labels.sum() == 1 and wnids[int(labels.argmax())] == path.split("/")[1]
    per_class = np.sum([labels for labels in lists["train"].values()], axis=0)
    assert per_class.tolist() == [2] * 100
    datamodule = ImageNet100(str(root), image_size=32, num_workers=0)
    datamodule.setup("fit")
    assert (len(datamodule.query_dataset), datamodule.multi_label, datamodule.top_k) == (200, False, 1000)
    with pytest.raises(UserError, match="has 4 images, fewer than 130"):
        prepare(["imagenet100", "--root", str(root), "--classes", str(classes), "--out", str(tmp_path / "o")])
    (root / "val" / wnids[7]).rename(root / "val" / "elsewhere")
    with pytest.raises(
        UserError, match=rf"class folder .*val/{wnids[7]} does not exist.*one folder per class"
    ):
        prepare(
            [
                "imagenet100",
                "--root",
                str(root),
                "--classes",
                str(classes),
                "--out",
                str(tmp_path / "o"),
                "--train_per_class",
                "3",
                "--query_per_class",
                "2",
            ]
        )


def test_prepare_help_and_cli_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        prepare(["--help"])
    assert (
        exit_info.value.code == 0
        and "{cifar10,coco,nuswide,imagenet100,mirflickr,voc}" in capsys.readouterr().out
    )
    for dataset in ("cifar10", "coco", "nuswide", "imagenet100", "mirflickr", "voc"):
        with pytest.raises(SystemExit):
            prepare([dataset, "--help"])
        assert "--seed" in capsys.readouterr().out
    from hashbench.cli import main as cli_main

    with pytest.raises(SystemExit) as exit_info:  # through the `hashbench` entry point: one paragraph, exit 2
        cli_main(["prepare", "coco", "--root", str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("hashbench: error: COCO: the data root") and "cocodataset.org" in err
    assert "Traceback" not in err


def test_prepare_mirflickr(tmp_path: Path) -> None:
    root = write_fake_mirflickr(tmp_path / "mir", num_images=60, unlabelled=3)
    prepare(["mirflickr", "--root", str(root), "--num_images", "60", "--num_query", "8", "--num_train", "20",
             "--num_val", "5"])  # fmt: skip
    lists = _lists(root)
    _check_protocol(lists, (20, 8, 57 - 8, 5), 24)
    assert (root / "classes.txt").read_text().split() == MIRFLICKR_LABELS
    annotations = root / "mirflickr25k_annotations_v080"
    for path, labels in {**lists["test"], **lists["database"]}.items():
        number = int(path.removeprefix("mirflickr/im").removesuffix(".jpg"))
        expected = [
            str(number) in (annotations / f"{name}.txt").read_text().split() for name in MIRFLICKR_LABELS
        ]
        assert labels.tolist() == [int(e) for e in expected] and (root / path).is_file()
    datamodule = MIRFlickr(str(root), image_size=32, num_workers=0)
    datamodule.setup("fit")
    assert (len(datamodule.val_query_dataset), datamodule.num_classes, datamodule.top_k) == (5, 24, None)
    (annotations / "sky.txt").unlink()
    with pytest.raises(UserError, match=r"1 of the 24 label files are missing .*\(sky\).*mirdownload"):
        prepare(["mirflickr", "--root", str(root), "--out", str(tmp_path / "o")])


def test_prepare_voc(tmp_path: Path) -> None:
    root = write_fake_voc(tmp_path / "voc", num_images=60, unlabelled=3)
    base = ["voc", "--root", str(root), "--num_query", "8", "--num_train", "20", "--num_val", "5"]
    prepare(base)
    lists = _lists(root)
    _check_protocol(lists, (20, 8, 57 - 28, 5), 20, train_in_database=False)
    main = root / "VOCdevkit/VOC2012/ImageSets/Main"
    path, labels = next(iter(lists["database"].items()))
    image = Path(path).stem
    values = [dict(line.split() for line in (main / f"{c}_trainval.txt").read_text().splitlines())[image]
              for c in VOC_CLASSES]  # fmt: skip
    assert labels.tolist() == [int(v == "1") for v in values]  # difficult (0) counts as absent
    prepare([*base, "--difficult", "positive", "--out", str(tmp_path / "difficult")])
    assert len(_read(tmp_path / "difficult" / "database.txt")) == 60 - 28  # the 3 "difficult only" are kept
    datamodule = VOC(str(root), image_size=32, num_workers=0)
    datamodule.setup("fit")
    assert (len(datamodule.database_dataset), datamodule.num_classes) == (29, 20)
    with pytest.raises(UserError, match=r"VOC: .*aeroplane_val.txt does not exist.*VOCtrainval"):
        prepare([*base, "--image_set", "val", "--out", str(tmp_path / "o")])


def test_prepare_nuswide_all_81_concepts(tmp_path: Path) -> None:
    root = write_fake_nuswide(tmp_path / "nus", num_images=80, without_concept=4)
    prepare(
        ["nuswide", "--root", str(root), "--num_concepts", "81", "--num_query", "10", "--num_train", "20"]
    )
    assert (root / "classes.txt").read_text().split() == list(NUSWIDE_CONCEPTS)
    _check_protocol(_lists(root), (20, 10, 76 - 10, 10), 81)
    datamodule = NUSWIDE(str(root), num_concepts=81, image_size=32, num_workers=0)
    datamodule.setup("fit")
    assert datamodule.num_classes == 81 and len(datamodule.val_query_dataset) == 10
    with pytest.raises(UserError, match=r"every line of .* has 81 labels, but NUS-WIDE has 21"):
        NUSWIDE(str(root)).setup("fit")
