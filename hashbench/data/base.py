"""The retrieval DataModule contract: three splits, label count, multi-label flag and K for mAP@K."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Literal

import torch
from lightning import LightningDataModule
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

RetrievalItem = tuple[Tensor, Tensor, int]
"""One sample: image ``(C, H, W)`` float, multi-hot labels ``(num_classes,)`` float32, index in its split."""
EvalRole = Literal["query", "database"]


class RetrievalDataModule(LightningDataModule):
    """Base class for retrieval datasets.

    After :meth:`setup` a subclass has set ``train_dataset``, ``query_dataset`` and
    ``database_dataset`` (each yielding :data:`RetrievalItem`), ``num_classes``, ``multi_label``
    and ``top_k`` (K of mAP@K; ``None`` = the whole database).

    Validation, test and predict run two dataloaders, query (index 0) and database (index 1).

    Args:
        batch_size: training batch size.
        eval_batch_size: batch size for query and database passes (default: ``batch_size``).
        num_workers: loader processes; ``None`` picks the subclass's default.
        pin_memory: pin host memory; ``None`` = when CUDA is available.
        persistent_workers: keep workers alive between epochs (only with ``num_workers > 0``).
        seed: seed of the split and of anything random in the data.
    """

    num_classes: int
    multi_label: bool
    top_k: int | None
    train_dataset: Dataset
    query_dataset: Dataset
    database_dataset: Dataset

    default_num_workers: int = min(8, os.cpu_count() or 1)
    collate_fn: Callable[[list[Any]], Any] | None = None
    """Batch collation (``None``: PyTorch's default)."""
    eval_transform: Callable[[Image.Image], Tensor]
    """PIL image in :attr:`image_mode` → model input ``(C, H, W)`` float, as the query and database items
    are made (unset for a dataset that cannot take images from outside)."""
    image_mode: str = "RGB"
    """PIL mode of the images :attr:`eval_transform` takes."""

    def __init__(
        self,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int | None = None,
        pin_memory: bool | None = None,
        persistent_workers: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = self.default_num_workers if num_workers is None else num_workers
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.persistent_workers = persistent_workers and self.num_workers > 0
        self.seed = seed

    def _loader(self, dataset: Dataset, train: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            drop_last=train and len(dataset) > self.batch_size,  # type: ignore[arg-type]
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            collate_fn=self.collate_fn,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_dataset, train=True)

    def _retrieval_loaders(self) -> list[DataLoader]:
        return [
            self._loader(self.query_dataset, train=False),
            self._loader(self.database_dataset, train=False),
        ]

    def val_dataloader(self) -> list[DataLoader]:
        return self._retrieval_loaders()

    def test_dataloader(self) -> list[DataLoader]:
        return self._retrieval_loaders()

    def predict_dataloader(self) -> list[DataLoader]:
        return self._retrieval_loaders()

    # ------------------------------------------------- images from outside the splits (retrieval)
    def image_transform(self) -> Callable[[Image.Image], Tensor]:
        """A PIL image of any mode → the model's input, made as the query and database items are."""
        transform, mode = getattr(self, "eval_transform", None), self.image_mode
        if transform is None:
            raise NotImplementedError(f"{type(self).__name__} has no evaluation transform for images")
        return lambda image: transform(image.convert(mode))

    def item_id(self, role: EvalRole, position: int) -> str:
        """A name for item ``position`` of the query or database split (after :meth:`setup`)."""
        return f"{role}/{position}"

    def picture(self, role: EvalRole, position: int) -> Image.Image:
        """Item ``position`` of the query or database split as a picture to look at (after :meth:`setup`)."""
        raise NotImplementedError(f"{type(self).__name__} cannot show its items as pictures")
