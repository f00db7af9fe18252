"""List-file datasets (NUS-WIDE, COCO, ImageNet100): parsing, checks on load, bad-data policies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from fakedata import write_fake_listfile_dataset
from PIL import Image

from hashbench.data import COCO, NUSWIDE, ImageNet100, ListFileDataModule
from hashbench.data.listfile import UnreadableImageError, read_image_list
from hashbench.data.transforms import image_transforms
from hashbench.errors import UserError

FAST = {"image_size": 32, "num_workers": 0}


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


@pytest.mark.parametrize(
    ("cls", "num_classes", "multi_label", "top_k"),
    [(NUSWIDE, 21, True, 5000), (COCO, 80, True, 5000), (ImageNet100, 100, False, 1000)],
)
def test_datamodules_read_their_lists(
    tmp_path: Path, cls: type[ListFileDataModule], num_classes: int, multi_label: bool, top_k: int
) -> None:
    root = write_fake_listfile_dataset(tmp_path / "data", num_classes, multi_label, sizes=(20, 10, 30), val=5)
    datamodule = cls(str(root), **FAST)  # type: ignore[call-arg]
    datamodule.setup("test")
    assert (
        len(datamodule.train_dataset),
        len(datamodule.query_dataset),
        len(datamodule.database_dataset),
    ) == (
        20,
        10,
        30,
    )
    assert (datamodule.num_classes, datamodule.multi_label, datamodule.top_k) == (
        num_classes,
        multi_label,
        top_k,
    )
    image, labels, index = datamodule.database_dataset[7]
    assert image.shape == (3, 32, 32) and image.dtype == torch.uint8  # normalised on the device
    assert labels.shape == (num_classes,) and labels.dtype == torch.float32 and index == 7
    expected = [int(v) for v in _lines(root / "database.txt")[7].split()[1:]]
    assert labels.tolist() == expected
    if not multi_label:
        assert (datamodule.database_dataset.labels.sum(1) == 1).all()
    images, batch_labels, _ = next(iter(datamodule.train_dataloader()))
    assert images.shape[1:] == (3, 32, 32) and batch_labels.shape[1] == num_classes
    assert cls(str(root), top_k=None).top_k is None  # type: ignore[call-arg]


def test_list_file_names_and_absolute_paths(tmp_path: Path) -> None:
    root = write_fake_listfile_dataset(tmp_path / "data", 21, True)
    lists = tmp_path / "lists"
    lists.mkdir()
    for name in ("train", "test", "database"):
        (root / f"{name}.txt").rename(lists / f"my_{name}.list")
    datamodule = NUSWIDE(
        str(root),
        train_list=str(lists / "my_train.list"),
        query_list=str(lists / "my_test.list"),
        database_list=str(lists / "my_database.list"),
        **FAST,
    )
    datamodule.setup("fit")
    assert len(datamodule.query_dataset) == 10


def test_missing_root_or_list_names_it_and_how_to_get_the_data(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"data root .*nowhere does not exist.*hashbench prepare coco --root"):
        COCO(str(tmp_path / "nowhere")).setup("fit")
    root = write_fake_listfile_dataset(tmp_path / "data", 80, True)
    (root / "test.txt").unlink()
    with pytest.raises(UserError, match=r"list file .*test.txt does not exist.*hashbench prepare coco"):
        COCO(str(root)).setup("fit")


def test_label_count_must_match_the_dataset(tmp_path: Path) -> None:
    root = write_fake_listfile_dataset(tmp_path / "data", 21, True)
    with pytest.raises(UserError, match=r"every line of .*train.txt has 21 labels, but MS-COCO has 80"):
        COCO(str(root)).setup("fit")
    lines = _lines(root / "database.txt")
    lines[4] += " 0"
    lines[8] = " ".join(lines[8].split()[:-2])
    (root / "database.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        UserError, match=r"2 lines of .*database.txt do not have 21 labels.*line 5 has 22, line 9 has 19"
    ):
        NUSWIDE(str(root)).setup("fit")


def test_labels_must_be_binary(tmp_path: Path) -> None:
    root = write_fake_listfile_dataset(tmp_path / "data", 21, True)
    lines = _lines(root / "test.txt")
    lines[2] = lines[2][:-1] + "2"
    (root / "test.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"must be 0 or 1.*lines 3"):
        read_image_list(root / "test.txt", 21, "NUS-WIDE")
    (root / "test.txt").write_text("\n\n")
    with pytest.raises(UserError, match="lists no images"):
        read_image_list(root / "test.txt", 21, "NUS-WIDE")


def test_single_label_dataset_rejects_several_labels(tmp_path: Path) -> None:
    root = write_fake_listfile_dataset(tmp_path / "data", 100, False)
    lines = _lines(root / "train.txt")
    tokens = lines[0].split()
    tokens[1:] = ["1"] * 2 + ["0"] * 98
    lines[0] = " ".join(tokens)
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"ImageNet100 is single-label.*lines 1"):
        ImageNet100(str(root)).setup("fit")


def test_missing_images_are_reported_together(tmp_path: Path) -> None:
    root = write_fake_listfile_dataset(tmp_path / "data", 21, True)
    gone = [line.split()[0] for line in _lines(root / "database.txt")[:7]]
    for path in gone:
        (root / path).unlink()
    with pytest.raises(UserError) as error:
        NUSWIDE(str(root), **FAST).setup("fit")
    message = str(error.value)
    assert "7 of 60 listed images are missing" in message and "database.txt: 7" in message
    assert all(path in message for path in sorted(gone)[:5]) and sorted(gone)[5] not in message
    assert "bad_images: skip" in message
    datamodule = NUSWIDE(str(root), bad_images="skip", **FAST)
    with pytest.warns(UserWarning, match="7 of 60 listed images are missing.*left out"):
        datamodule.setup("fit")
    assert len(datamodule.database_dataset) == 23 and len(datamodule.train_dataset) == 20
    assert datamodule.database_dataset[0][2] == 0


def _corrupt(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])  # a truncated JPEG: the header parses, decoding fails


def test_corrupt_image_names_its_file(tmp_path: Path) -> None:
    root = write_fake_listfile_dataset(tmp_path / "data", 21, True)
    bad = _lines(root / "test.txt")[1].split()[0]
    _corrupt(root / bad)
    datamodule = NUSWIDE(str(root), **FAST)
    datamodule.setup("fit")  # only its existence is checked by default
    with pytest.raises(UnreadableImageError, match=rf"cannot read image .*{bad}.*bad_images: skip"):
        datamodule.query_dataset[1]
    workers = NUSWIDE(str(root), **{**FAST, "num_workers": 1, "persistent_workers": False})
    workers.setup("fit")
    with pytest.raises(UnreadableImageError, match=rf"cannot read image .*{bad}"):  # still a UserError
        list(workers.test_dataloader()[0])
    with pytest.raises(UserError, match=rf"1 cannot be decoded \(.*{bad}"):
        NUSWIDE(str(root), verify_images=True, **FAST).setup("fit")


def test_skip_policy_leaves_unreadable_images_out_of_their_batch(tmp_path: Path) -> None:
    root = write_fake_listfile_dataset(tmp_path / "data", 21, True)
    bad = _lines(root / "test.txt")[1].split()[0]
    _corrupt(root / bad)
    Path(root / _lines(root / "test.txt")[2].split()[0]).write_text("not an image")
    datamodule = NUSWIDE(str(root), bad_images="skip", eval_batch_size=10, **FAST)
    datamodule.setup("fit")
    query_loader = datamodule.test_dataloader()[0]
    with pytest.warns(
        UserWarning, match=r"skipped the unreadable image .*; [12] skipped by this loader process"
    ):
        images, _, indices = next(iter(query_loader))
    assert images.shape[0] == 8 and indices.tolist() == [0, 3, 4, 5, 6, 7, 8, 9]
    assert datamodule.query_dataset.skipped == 2
    verified = NUSWIDE(str(root), bad_images="skip", verify_images=True, **FAST)
    with pytest.warns(UserWarning, match="2 cannot be decoded.*test.txt: 2.*left out"):
        verified.setup("fit")
    assert len(verified.query_dataset) == 8


@pytest.mark.parametrize("policy", ["drop", "keep", "error"])
def test_rows_without_a_positive_label(tmp_path: Path, policy: str) -> None:
    root = write_fake_listfile_dataset(tmp_path / "data", 80, True)
    lines = _lines(root / "test.txt")
    for i in (0, 4):
        lines[i] = lines[i].split()[0] + " 0" * 80
    (root / "test.txt").write_text("\n".join(lines) + "\n")
    datamodule = COCO(str(root), empty_labels=policy, **FAST)  # type: ignore[arg-type]
    if policy == "error":
        with pytest.raises(
            UserError, match=r"2 of 10 images in .*test.txt have no positive label.*lines 1, 5"
        ):
            datamodule.setup("fit")
        return
    with pytest.warns(UserWarning, match=rf"2 of 10 images .*can never be relevant.*empty_labels: {policy}"):
        datamodule.setup("fit")
    assert len(datamodule.query_dataset) == (8 if policy == "drop" else 10)


def test_options_are_validated(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="bad_images"):
        NUSWIDE("x", bad_images="ignore")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="top_k"):
        NUSWIDE("x", top_k=0)
    with pytest.raises(UserError, match="image_size <= resize_size"):
        NUSWIDE("x", image_size=64, resize_size=32)


def test_transforms_match_the_papers() -> None:
    train, evaluation = image_transforms()
    image = Image.new("RGB", (320, 240), (200, 100, 50))
    assert train(image).shape == evaluation(image).shape == (3, 224, 224)
    # ImageNet normalisation: a uniform colour maps to ((c / 255) - mean) / std.
    expected = (torch.tensor([200, 100, 50]) / 255 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor(
        [0.229, 0.224, 0.225]
    )
    assert torch.allclose(evaluation(image)[:, 100, 100], expected, atol=1e-2)
    _, small_eval = image_transforms(32, horizontal_flip=False)
    tiny = Image.fromarray(torch.randint(0, 255, (32, 32, 3), dtype=torch.uint8).numpy())
    assert small_eval(tiny).shape == (3, 32, 32)
    assert torch.equal(small_eval(tiny), small_eval(tiny))
    # a left-to-right ramp: flipped, its left edge is the brighter one
    ramp = Image.fromarray(
        np.repeat(np.tile(np.arange(0, 256, 8, dtype=np.uint8), (32, 1))[..., None], 3, axis=2)
    )
    no_flip, _ = image_transforms(32, resize_size=32, horizontal_flip=False)
    flip, _ = image_transforms(32, resize_size=32)
    torch.manual_seed(0)
    assert _left_brighter(no_flip, ramp) == {False} and _left_brighter(flip, ramp) == {False, True}


def _left_brighter(transform: Callable[[Image.Image], torch.Tensor], image: Image.Image) -> set[bool]:
    """Whether the left column of ``transform(image)`` is brighter than its right column, over 20 draws."""
    return {bool(out[:, :, 0].mean() > out[:, :, -1].mean()) for out in (transform(image) for _ in range(20))}
