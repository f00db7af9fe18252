"""CIFAR-10 in the hashing papers' protocols, read from torchvision's ``cifar-10-batches-py`` pickles.

torchvision's ``CIFAR10`` dataset refuses any file whose MD5 differs from the official release, so it
cannot read a test's fake pickles. hashbench therefore uses torchvision only to download
(``download=True``, which checks the MD5s of what it fetched) and reads the pickles itself, checking
their structure instead; files that differ from the official release load with a warning.
"""

from __future__ import annotations

import json
import pickle
import urllib.error
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.datasets.utils import check_integrity
from torchvision.transforms import v2

from hashbench.data.base import EvalRole, RetrievalDataModule, RetrievalItem
from hashbench.data.device import UpsampleBatch
from hashbench.data.protocols import PROTOCOLS, Protocol
from hashbench.data.splits import finish_split, split_per_class
from hashbench.errors import UserError

FOLDER = "cifar-10-batches-py"
BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
"""Pooled order: official training batches 1–5 (positions 0–49,999), then the test batch (50,000–59,999)."""
NUM_CLASSES = 10
SPLIT_ROLES = ("query", "train", "database")
"""The roles a split file must hold; ``val_query`` is optional (carved at setup when absent)."""


def _how_to_get(root: Path) -> str:
    return (
        f"Get it with `hashbench prepare cifar10 --root {root} --download`, or set `download: true` in "
        f"the data's init_args, or download {torchvision.datasets.CIFAR10.url} and extract it into {root}."
    )


def load_cifar10(root: str | Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Read and pool the six CIFAR-10 batches under ``root/cifar-10-batches-py``.

    Returns:
        Images ``(N, 32, 32, 3)`` uint8 (HWC, RGB), labels ``(N,)`` int64 in ``[0, 10)``, in the
        order of :data:`BATCHES` (N = 60,000 for the official files), and the number of official
        training images (the first 50,000; the test batch follows).

    Raises:
        UserError: a file is missing, unreadable, or not a CIFAR-10 batch.
    """
    root = Path(root).expanduser()
    folder = root / FOLDER
    if not root.is_dir():
        raise UserError(f"CIFAR-10: the data root {root} does not exist. {_how_to_get(root)}")
    missing = [name for name in BATCHES if not (folder / name).is_file()]
    if missing:
        raise UserError(f"CIFAR-10: {', '.join(missing)} not found in {folder}. {_how_to_get(root)}")
    images, labels = [], []
    for name in BATCHES:
        data, targets = _read_batch(folder / name)
        images.append(data)
        labels.append(targets)
    official = all(
        check_integrity(str(folder / name), md5)
        for name, md5 in torchvision.datasets.CIFAR10.train_list + torchvision.datasets.CIFAR10.test_list
    )
    if not official:
        rank_zero_warn(
            f"CIFAR-10: the batches in {folder} are not the official release (their MD5s differ from "
            "torchvision's): fine for tests, but results are not comparable with published numbers."
        )
    pooled = np.concatenate(images).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return pooled, np.concatenate(labels), len(pooled) - len(labels[-1])


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch: ``data`` ``(n, 3072)`` uint8 (channel-major 32×32 RGB) and ``labels`` ``(n,)``."""
    try:
        with path.open("rb") as file:
            entry = pickle.load(file, encoding="latin1")
    except (
        OSError,
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        ImportError,
    ) as error:
        raise UserError(
            f"CIFAR-10: cannot read {path} ({type(error).__name__}: {error}); the file is corrupt. "
            f"Delete {path.parent} and download again."
        ) from None
    data = entry.get("data") if isinstance(entry, dict) else None
    targets = np.asarray(entry.get("labels", []) if isinstance(entry, dict) else [])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise UserError(f"CIFAR-10: {path} is not a CIFAR-10 batch (expected 'data': uint8 array (n, 3072)).")
    if targets.shape != (len(data),) or not np.issubdtype(targets.dtype, np.integer):
        raise UserError(f"CIFAR-10: {path} has {len(data)} images but 'labels' is not {len(data)} integers.")
    if len(targets) and (targets.min() < 0 or targets.max() >= NUM_CLASSES):
        raise UserError(f"CIFAR-10: {path} has labels outside 0–9.")
    return data, targets.astype(np.int64)


def cifar10_split(
    labels: np.ndarray,
    num_train: int,
    protocol: Protocol,
    query_per_class: int,
    train_per_class: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Seeded query / train / database positions into the pooled dataset, each sorted ascending.

    ``paper``: per class ``query_per_class`` queries and ``train_per_class`` training images drawn from
    the pooled 60,000; the database is every item that is neither (54,000).
    ``paper_db_with_train``: the same draw; the database is every item but the queries (59,000).
    ``official``: the official split, nothing drawn: the ``num_train`` official training images are the
    training set and the database (50,000), the official test images are the queries (10,000).
    """
    if protocol == "official":
        official_train = np.arange(num_train)
        return {
            "query": np.arange(num_train, len(labels)),
            "train": official_train,
            "database": official_train,
        }
    try:
        split = split_per_class(labels, query_per_class, train_per_class, seed)
    except ValueError as error:
        raise UserError(f"CIFAR-10: {error}") from None
    database = (
        np.sort(np.concatenate([split.rest, split.train]))
        if protocol == "paper_db_with_train"
        else split.rest
    )
    return {"query": split.query, "train": split.train, "database": database}


def cifar10_splits(
    labels: np.ndarray,
    num_train: int,
    protocol: Protocol,
    query_per_class: int,
    train_per_class: int,
    val_query_per_class: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """:func:`cifar10_split` plus the validation split (the five roles of
    :func:`~hashbench.data.splits.finish_split`); in the ``official`` protocol the validation queries
    are carved from the official training images and leave the training set."""
    published = cifar10_split(labels, num_train, protocol, query_per_class, train_per_class, seed)
    return finish_split(
        np.eye(NUM_CLASSES, dtype=np.uint8)[labels],
        published,
        val_size=val_query_per_class,
        per_class=True,
        seed=seed,
        dataset="CIFAR-10",
        carve_from_train=protocol == "official",
    )


def write_split_file(path: str | Path, split: dict[str, np.ndarray], **metadata: Any) -> Path:
    """Write a split as JSON: ``metadata`` plus the ``query``, ``train``, ``database`` and ``val_query``
    positions (the validation database is the database without the validation queries)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {
        "dataset": "cifar10",
        **metadata,
        "positions": "into the pooled 60,000: data_batch_1..5 (0-49,999), then test_batch (50,000-59,999)",
        **{role: split[role].tolist() for role in (*SPLIT_ROLES, "val_query")},
    }
    path.write_text(json.dumps(content) + "\n")
    return path


def read_split_file(path: str | Path, num_items: int) -> tuple[dict[str, np.ndarray], str | None]:
    """Read a split written by :func:`write_split_file` and check it against ``num_items`` pooled items.

    Returns:
        The positions by role (``val_query`` only if the file has it; files written before validation
        splits existed do not) and the file's ``protocol`` (``None`` if it names none).

    Raises:
        UserError: the file is missing or malformed, a position is out of range or repeated, or a
            query is also a training or database item.
    """
    path = Path(path).expanduser()
    try:
        content = json.loads(path.read_text())
        roles = [*SPLIT_ROLES, *(["val_query"] if "val_query" in content else [])]
        split = {role: np.asarray(content[role], dtype=np.int64) for role in roles}
        protocol = content.get("protocol")
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise UserError(
            f"CIFAR-10: cannot read the split file {path} ({type(error).__name__}: {error}); write one with "
            "`hashbench prepare cifar10`."
        ) from None
    for role, positions in split.items():
        if positions.ndim != 1 or (len(positions) and (positions.min() < 0 or positions.max() >= num_items)):
            raise UserError(f"CIFAR-10: {path}: '{role}' must list positions in [0, {num_items}).")
        if len(np.unique(positions)) != len(positions):
            raise UserError(f"CIFAR-10: {path}: '{role}' repeats positions.")
    if np.intersect1d(split["query"], np.union1d(split["train"], split["database"])).size:
        raise UserError(f"CIFAR-10: {path}: queries must not be training or database items.")
    return {role: np.sort(positions) for role, positions in split.items()}, protocol


def download_cifar10(root: str | Path) -> None:
    """Download and extract the official CIFAR-10 python batches into ``root`` unless they are there.

    Raises:
        UserError: the download failed (e.g. no internet access).
    """
    root = Path(root).expanduser()
    if all((root / FOLDER / name).is_file() for name in BATCHES):
        return
    try:
        torchvision.datasets.CIFAR10(str(root), train=True, download=True)
    except (urllib.error.URLError, OSError, RuntimeError) as error:
        raise UserError(
            f"CIFAR-10: downloading into {root} failed ({type(error).__name__}: {error}). On a machine with "
            f"internet access, download {torchvision.datasets.CIFAR10.url} and extract it into {root}."
        ) from None


class ArrayImageDataset(Dataset):
    """Images held in memory, handed over as they are: uint8 ``(3, H, W)`` tensors (the DataModule's
    :attr:`~hashbench.data.base.RetrievalDataModule.batch_transform` resizes, crops and normalises the
    batch on the device).

    Args:
        images: ``(N, H, W, 3)`` uint8 RGB.
        labels: ``(N, num_classes)`` float32 multi-hot.
    """

    def __init__(self, images: np.ndarray, labels: Tensor) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} label rows")
        self.images = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
        self.labels = labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> RetrievalItem:
        return self.images[index], self.labels[index], index


class CIFAR10(RetrievalDataModule):
    """CIFAR-10 (10 classes, single-label) in one of three protocols.

    * ``paper``: pool the official train and test batches (60,000); per class, seeded,
      ``query_per_class`` queries and ``train_per_class`` training images; the database is the
      remaining 54,000 (training images excluded).
    * ``paper_db_with_train``: the same draw; the database is all but the queries (59,000).
    * ``official``: the official split, nothing drawn (the per-class counts do not apply): the 50,000
      official training images are the training set and the database, the 10,000 test images the queries.

    Validation: ``val_query_per_class`` images a class drawn (with ``seed``) from the database pool,
    i.e. database images that are neither test queries nor training images, ranked against the
    database without them; they stay ordinary database items for the test. In ``official`` the database
    is the training set, so the validation queries are official training images that leave the training
    set (49,000 training images with the default 100 a class). mAP runs over the whole database.

    Under a Trainer the split is written to ``<default_root_dir>/cifar10_split.json`` (the run
    folder with ``hashbench fit``).

    Args:
        root: folder that holds (or will hold) ``cifar-10-batches-py``.
        protocol: ``paper``, ``paper_db_with_train`` or ``official``.
        download: download the official files into ``root`` if they are missing (needs internet).
        query_per_class: test queries per class (``paper*`` protocols).
        train_per_class: training images per class (``paper*`` protocols).
        val_query_per_class: validation queries per class, from the database pool.
        split_file: a split JSON (as ``hashbench prepare cifar10`` writes) to use instead of drawing one
            from ``seed``, protocol and per-class counts; without ``val_query`` (older files) the
            validation queries are drawn at setup.
        image_size: side of the square input in pixels (224 for ImageNet backbones, 32 = native). The
            loaders send the 32 px uint8 images; on the device (:meth:`on_after_batch_transfer`, by
            :class:`~hashbench.data.device.UpsampleBatch`) they are normalised, resized to
            ``resize_size`` (bilinear), then random-cropped and flipped (training) or centre-cropped.
        resize_size: shorter side before cropping; ``None`` = ``image_size · 256/224``.
        horizontal_flip: random horizontal flips of training images.
        **kwargs: loader options and ``seed`` / ``unseen_classes`` of :class:`RetrievalDataModule`.
    """

    num_classes = NUM_CLASSES
    multi_label = False
    top_k = None
    dataset_name = "CIFAR-10"

    def __init__(
        self,
        root: str = "data/cifar10",
        protocol: Protocol = "paper",
        download: bool = False,
        query_per_class: int = 100,
        train_per_class: int = 500,
        val_query_per_class: int = 100,
        split_file: str | None = None,
        image_size: int = 224,
        resize_size: int | None = None,
        horizontal_flip: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if protocol not in PROTOCOLS:
            raise UserError(f"CIFAR-10: protocol must be one of {', '.join(PROTOCOLS)}; got {protocol!r}")
        self.root = root
        self.protocol = protocol
        self.download = download
        self.query_per_class = query_per_class
        self.train_per_class = train_per_class
        self.val_query_per_class = val_query_per_class
        self.split_file = split_file
        self.batch_transform = UpsampleBatch(image_size, resize_size, horizontal_flip)
        # an image from outside the dataset becomes a 32×32 uint8 CIFAR image, then goes the same way
        self.eval_transform = v2.Compose([v2.PILToTensor(), v2.Resize((32, 32), antialias=True)])

    def prepare_data(self) -> None:
        if self.download:
            download_cifar10(self.root)

    def setup(self, stage: str | None = None) -> None:
        if self.split is None:
            self.prepare_data()
            images, labels, num_train = load_cifar10(self.root)
            protocol: str | None = self.protocol
            if self.split_file is None:
                published = cifar10_split(
                    labels, num_train, self.protocol, self.query_per_class, self.train_per_class, self.seed
                )
            else:
                published, protocol = read_split_file(self.split_file, len(labels))
                if "val_query" not in published:
                    rank_zero_info(
                        f"CIFAR-10: {self.split_file} has no validation queries (val_query); drawing "
                        f"{self.val_query_per_class} a class from its database pool with seed {self.seed}."
                    )
            one_hot = np.eye(NUM_CLASSES, dtype=np.uint8)[labels]
            split = self.final_split(
                one_hot,
                published,
                self.val_query_per_class,
                val_query=published.get("val_query"),
                carve_from_train=(protocol or self.protocol) == "official",
            )
            float_labels = torch.as_tensor(one_hot, dtype=torch.float32)

            def subset(positions: np.ndarray, train: bool) -> ArrayImageDataset:
                return ArrayImageDataset(images[positions], float_labels[torch.as_tensor(positions)])

            self.set_datasets(subset, split)
        trainer = self.trainer
        if trainer is not None and trainer.is_global_zero and self.split is not None:
            write_split_file(
                Path(trainer.default_root_dir) / "cifar10_split.json", self.split, **self._provenance()
            )

    def picture(self, role: EvalRole, position: int) -> Image.Image:
        """The 32×32 RGB image as stored."""
        dataset = self.query_dataset if role == "query" else self.database_dataset
        assert isinstance(dataset, ArrayImageDataset)
        return Image.fromarray(dataset.images[position].permute(1, 2, 0).numpy())

    def _provenance(self) -> dict[str, Any]:
        """Where the split came from: the split file, or the seed, protocol and per-class counts."""
        unseen = {} if self.unseen_classes is None else {"unseen_classes": self.unseen_classes}
        if self.split_file is not None:
            return {"split_file": str(self.split_file), **unseen}
        return {
            "protocol": self.protocol,
            "seed": self.seed,
            "query_per_class": self.query_per_class,
            "train_per_class": self.train_per_class,
            "val_query_per_class": self.val_query_per_class,
            **unseen,
        }
