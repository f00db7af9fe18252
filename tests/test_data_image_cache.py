"""The decoded-image cache: the images decoding gives, each decoded once, one file shared by processes."""

from __future__ import annotations

import os
import pickle
import shutil
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import torch
from fakedata import write_fake_listfile_dataset
from torchvision.transforms import v2

from hashbench.data import NUSWIDE
from hashbench.data.image_cache import ImageCache
from hashbench.data.listfile import header_size
from hashbench.data.transforms import read_rgb
from hashbench.errors import UserError

FAST = {"image_size": 32, "num_workers": 0, "batch_size": 4, "eval_batch_size": 4}


def _nuswide(root: Path, **options: object) -> NUSWIDE:
    """NUS-WIDE over the fake data, small batches, no workers unless ``options`` say otherwise."""
    return NUSWIDE(str(root), **{**FAST, **options})  # type: ignore[arg-type]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_fake_listfile_dataset(tmp_path / "data", 21, True, sizes=(8, 4, 8), val=2, image_size=48)


def _train_batches(datamodule: NUSWIDE, seed: int) -> list[torch.Tensor]:
    torch.manual_seed(seed)
    return [images for images, _, _ in datamodule.train_dataloader()]


def test_cached_images_are_the_decoded_ones_in_every_epoch(root: Path, tmp_path: Path) -> None:
    """Training: Resize, RandomCrop and flip as one v2 transform draws them with the same seed, whether the
    image is decoded and stored in that read or read from the cache. Evaluation: the uint8 path's batches."""
    cached = _nuswide(root, image_cache=str(tmp_path / "cache"))
    plain = _nuswide(root)
    for datamodule in (cached, plain):
        datamodule.setup("fit")
    whole = v2.Compose([v2.Resize(37, antialias=True), v2.RandomCrop(32), v2.RandomHorizontalFlip()])
    dataset = cached.train_dataset
    for index in range(len(dataset)):
        torch.manual_seed(index)
        expected = whole(read_rgb(dataset.root / dataset.paths[index]))
        for _ in ("decoded and stored", "read from the cache"):
            torch.manual_seed(index)
            assert torch.equal(dataset[index][0], expected)
    assert dataset.cached.cache.filled() == len(dataset)
    for _ in range(2):
        for cached_loader, plain_loader in zip(cached.val_dataloader(), plain.val_dataloader(), strict=True):
            for (got, labels, indices), (want, want_labels, want_indices) in zip(
                cached_loader, plain_loader, strict=True
            ):
                assert torch.equal(got, want) and torch.equal(labels, want_labels)
                assert torch.equal(indices, want_indices)


def test_worker_processes_fill_one_shared_file_that_the_next_setup_reuses(root: Path, tmp_path: Path) -> None:
    first = _nuswide(root, image_cache=str(tmp_path / "cache"), image_cache_splits=["train"], num_workers=2)
    first.setup("fit")
    _train_batches(first, 0)
    cache = first.train_dataset.cached.cache
    assert cache.filled() == cache.count == 8
    assert [path.name for path in (tmp_path / "cache").iterdir()] == [cache.file.name]
    again = _nuswide(root, image_cache=str(tmp_path / "cache"), image_cache_splits=["train"])
    again.setup("fit")
    assert (
        again.train_dataset.cached.cache.file == cache.file and again.train_dataset.cached.cache.filled() == 8
    )
    assert again.query_dataset.cached is None  # evaluation images are not kept
    image = root / again.train_dataset.paths[0]
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))
    renewed = _nuswide(root, image_cache=str(tmp_path / "cache"), image_cache_splits=["train"])
    renewed.setup("fit")
    assert renewed.train_dataset.cached.cache.file != cache.file
    assert renewed.train_dataset.cached.cache.filled() == 0


def test_slots_store_only_their_shape_and_survive_pickling(tmp_path: Path) -> None:
    paths = [tmp_path / "a.jpg", tmp_path / "b.jpg"]
    cache = ImageCache(tmp_path / "cache", "t", "test", paths, lambda: np.array([[2, 3], [4, 5]]))
    image = torch.arange(18, dtype=torch.uint8).view(3, 2, 3)
    cache.put(0, image)
    cache.put(1, image)  # not its (4, 5) shape: left out
    assert torch.equal(cache.get(0), image) and cache.get(1) is None and cache.filled() == 1
    assert cache.nbytes() == (6 + 20) * 3
    copy = pickle.loads(pickle.dumps(cache))
    assert torch.equal(copy.get(0), image)


def test_unreadable_images_are_skipped_and_never_stored(root: Path, tmp_path: Path) -> None:
    bad = root / (root / "test.txt").read_text().split()[0]
    bad.write_text("not an image")
    assert header_size(bad) == (0, 0)
    datamodule = _nuswide(root, bad_images="skip", image_cache=str(tmp_path / "cache"))
    datamodule.setup("test")
    for _ in range(2):
        with pytest.warns(UserWarning, match="skipped the unreadable image"):
            images, _, indices = next(iter(datamodule.test_dataloader()[0]))
        assert images.shape[0] == 3 and indices.tolist() == [1, 2, 3]


def test_cache_problems_say_what_to_change(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(UserError, match=r"pipeline is 'pil'\. Set pipeline: uint8"):
        NUSWIDE(str(root), pipeline="pil", image_cache=str(tmp_path / "cache"))
    with pytest.raises(UserError, match="image_cache_splits must list one or both of train, evaluation"):
        NUSWIDE(str(root), image_cache=str(tmp_path / "cache"), image_cache_splits=["test"])  # type: ignore[list-item]
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**6, 10**6, 1000))
    with pytest.raises(UserError, match=r"needs 0\.0 GB once filled, but .* has 0\.0 GB free.*larger disk"):
        _nuswide(root, image_cache=str(tmp_path / "cache")).setup("fit")
    monkeypatch.undo()
    (tmp_path / "not-a-folder").write_text("")
    with pytest.raises(UserError, match=r"cannot write in the folder .*not-a-folder"):
        _nuswide(root, image_cache=str(tmp_path / "not-a-folder")).setup("fit")
    datamodule = _nuswide(root, image_cache=str(tmp_path / "cache"))
    datamodule.setup("fit")
    datamodule.train_dataset.cached.cache.file.write_bytes(b"garbage")
    with pytest.raises(UserError, match=r"is not an image cache file .*delete it"):
        _nuswide(root, image_cache=str(tmp_path / "cache")).setup("fit")
