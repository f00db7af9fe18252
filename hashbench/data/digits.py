"""scikit-learn's handwritten digits: 1,797 real 8×8 images that ship inside the package."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from PIL import Image
from sklearn.datasets import load_digits
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as F

from hashbench.data.base import EvalRole, RetrievalDataModule, RetrievalItem
from hashbench.data.splits import split_per_class

SIDE = 8
"""Digits are 8×8 pixels."""


@functools.cache
def digit_pixels() -> tuple[Tensor, np.ndarray]:
    """The 1,797 digits as ``(N, 1, 8, 8)`` float in [0, 1] (0–16 scale ÷ 16), and their classes."""
    digits = load_digits()
    return torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0, digits.target


@functools.cache
def pixel_stats() -> tuple[float, float]:
    """Mean and standard deviation of every pixel of every digit, on the [0, 1] scale."""
    pixels, _ = digit_pixels()
    return float(pixels.mean()), float(pixels.std())


class DigitsTransform:
    """A grayscale PIL image → ``(1, 8, 8)`` float as the Digits items: resized to 8×8 (area average),
    0–255 mapped to [0, 1] (the data's 0–16 scale ÷ 16), standardised with the pixel mean and std.
    Digits are bright strokes on a dark background."""

    def __call__(self, image: Image.Image) -> Tensor:
        small = image.convert("L").resize((SIDE, SIDE), Image.Resampling.BOX)
        mean, std = pixel_stats()
        return (F.pil_to_tensor(small).float() / 255.0 - mean) / std


class TensorRetrievalDataset(Dataset):
    """Images and multi-hot labels held in memory.

    Args:
        images: ``(N, C, H, W)`` float.
        labels: ``(N, num_classes)`` float 0/1.
    """

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} label rows")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> RetrievalItem:
        return self.images[index], self.labels[index], index


class Digits(RetrievalDataModule):
    """The embedded default dataset: 10 classes, single-label, 1×8×8 images scaled to [0, 1] and standardised.

    Split per class, seeded: ``query_per_class`` queries, ``train_per_class`` training images, and
    the database holds every image that is not a query — with the training images only when
    ``database_includes_train`` (default: no, as in the CIFAR-10 paper protocol). Validation:
    ``val_query_per_class`` images a class carved from the database pool (database minus training
    images), ranked against the database without them. mAP runs over the whole database.

    Args:
        query_per_class: test queries per class (10 classes).
        train_per_class: training images per class.
        val_query_per_class: validation queries per class, from the database pool.
        database_includes_train: put the training images in the database too.
        **kwargs: loader options and ``seed`` / ``unseen_classes`` of :class:`RetrievalDataModule`
            (here ``eval_batch_size`` defaults to 512 and ``num_workers`` to 0).
    """

    num_classes = 10
    multi_label = False
    top_k = None
    dataset_name = "digits"
    default_num_workers = 0  # in memory: worker processes only add overhead
    default_eval_batch_size = 512
    image_mode = "L"
    eval_transform = DigitsTransform()

    def __init__(
        self,
        query_per_class: int = 20,
        train_per_class: int = 80,
        val_query_per_class: int = 20,
        database_includes_train: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.query_per_class = query_per_class
        self.train_per_class = train_per_class
        self.val_query_per_class = val_query_per_class
        self.database_includes_train = database_includes_train

    def setup(self, stage: str | None = None) -> None:
        pixels, target = digit_pixels()
        mean, std = pixel_stats()
        images = (pixels - mean) / std
        labels = torch.nn.functional.one_hot(torch.as_tensor(target), self.num_classes).float()
        published = split_per_class(target, self.query_per_class, self.train_per_class, self.seed)
        database = (
            np.union1d(published.rest, published.train) if self.database_includes_train else published.rest
        )
        split = self.final_split(
            labels.numpy(),
            {"train": published.train, "query": published.query, "database": database},
            self.val_query_per_class,
        )

        def subset(positions: np.ndarray, train: bool) -> TensorRetrievalDataset:
            index = torch.as_tensor(positions)
            return TensorRetrievalDataset(images[index], labels[index])

        self.set_datasets(subset, split)

    def picture(self, role: EvalRole, position: int) -> Image.Image:
        """The digit as an 8×8 grayscale image, 0–255."""
        dataset = self.query_dataset if role == "query" else self.database_dataset
        assert isinstance(dataset, TensorRetrievalDataset)
        mean, std = pixel_stats()
        pixels = (dataset.images[position, 0] * std + mean).clamp(0, 1) * 255
        return Image.fromarray(pixels.round().to(torch.uint8).numpy())
