"""The retrieval DataModule contract: five splits, label count, multi-label flag and K for mAP@K."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from lightning import LightningDataModule
from lightning.pytorch.utilities import rank_zero_info
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from hashbench.data.splits import ROLES, draw_unseen_classes, finish_split, restrict_to_unseen

RetrievalItem = tuple[Tensor, Tensor, int]
"""One sample: image ``(C, H, W)`` (float, or uint8 that :attr:`RetrievalDataModule.batch_transform` turns
into float on the device), multi-hot labels ``(num_classes,)`` float32, index in its split."""
EvalRole = Literal["query", "database"]


class RetrievalDataModule(LightningDataModule):
    """Base class for retrieval datasets.

    After :meth:`setup` a subclass has set ``train_dataset``, ``query_dataset`` (test queries),
    ``database_dataset`` (the test database, as published), ``val_query_dataset`` and
    ``val_database_dataset`` (each yielding :data:`RetrievalItem`), ``num_classes``, ``multi_label``
    and ``top_k`` (K of mAP@K; ``None`` = the whole database).

    Validation runs two dataloaders, validation queries (index 0) and validation database (index 1);
    test and predict run test queries (0) and database (1). Validation queries are database images that
    are neither test queries nor training images; the validation database is the database without them.

    Args:
        batch_size: training batch size.
        eval_batch_size: batch size for query and database passes (``None``: the subclass's default,
            else ``batch_size``).
        num_workers: loader processes; ``None`` picks the subclass's default.
        pin_memory: pin host memory; ``None`` = when CUDA is available.
        persistent_workers: keep workers alive between epochs (only with ``num_workers > 0``).
        seed: seed of the split and of anything random in the data.
        unseen_classes: the unseen-class protocol (Sablayrolles et al., 2017): class indices (or a
            fraction of the classes, drawn with ``seed``) kept out of training. Training keeps the
            images whose labels are all seen classes; queries, database and validation keep the images
            whose labels are all unseen; images with both are dropped. ``None``: off.
    """

    num_classes: int
    multi_label: bool
    top_k: int | None
    dataset_name: str = "retrieval dataset"
    """Name used in messages."""
    train_dataset: Dataset
    query_dataset: Dataset
    database_dataset: Dataset
    val_query_dataset: Dataset
    val_database_dataset: Dataset
    split: dict[str, np.ndarray] | None = None
    """After :meth:`setup`: positions of each split into the pooled dataset (the subclass's pool)."""

    default_num_workers: int = min(8, os.cpu_count() or 1)
    default_eval_batch_size: int | None = None
    """Query/database batch size when ``eval_batch_size`` is ``None`` (``None``: ``batch_size``)."""
    collate_fn: Callable[[list[Any]], Any] | None = None
    """Batch collation (``None``: PyTorch's default)."""
    eval_transform: Callable[[Any], Tensor] | None = None
    """PIL image in :attr:`image_mode` → model input ``(C, H, W)`` float, as the query and database items
    are made (unset for a dataset that cannot take images from outside)."""
    image_mode: str = "RGB"
    """PIL mode of the images :attr:`eval_transform` takes."""
    batch_transform: Callable[[Any, bool], Tensor] | None = None
    """Run on each batch's images once on the device (``images, training`` → float ``(B, C, H, W)``), by
    :meth:`on_after_batch_transfer`; ``None``: the images arrive ready."""

    def __init__(
        self,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int | None = None,
        pin_memory: bool | None = None,
        persistent_workers: bool = True,
        seed: int = 0,
        unseen_classes: list[int] | float | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or self.default_eval_batch_size or batch_size
        self.num_workers = self.default_num_workers if num_workers is None else num_workers
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.persistent_workers = persistent_workers and self.num_workers > 0
        self.seed = seed
        self.unseen_classes = unseen_classes

    def final_split(
        self,
        labels: np.ndarray,
        split: dict[str, np.ndarray],
        val_size: int,
        val_query: np.ndarray | None = None,
        carve_from_train: bool = False,
    ) -> dict[str, np.ndarray]:
        """The five splits from a published one: unseen-class restriction (if on), then validation.

        Args:
            labels: ``(N, C)`` 0/1 labels of the pooled dataset.
            split: ``train``, ``query``, ``database`` positions into the pooled dataset.
            val_size: validation queries per class (single-label) or in total (multi-label).
            val_query: validation queries read from disk instead of drawn (checked).
            carve_from_train: the database is the training set: draw validation queries from it and take
                them out of training.

        Returns:
            Positions for each of :data:`~hashbench.data.splits.ROLES`, sorted ascending.
        """
        name = self.dataset_name
        if self.unseen_classes is not None:
            unseen = draw_unseen_classes(self.unseen_classes, labels.shape[1], self.seed)
            given = {} if val_query is None else {"val_query": val_query}
            split = restrict_to_unseen(labels, {**split, **given}, unseen)
            val_query = split.pop("val_query", None)
            rank_zero_info(
                f"{name}: unseen-class protocol, unseen classes {unseen.tolist()}: "
                + ", ".join(f"{len(split[role])} {role}" for role in ("train", "query", "database"))
            )
        return finish_split(
            labels,
            split,
            val_size=val_size,
            per_class=not self.multi_label,
            seed=self.seed,
            dataset=name,
            val_query=val_query,
            carve_from_train=carve_from_train,
        )

    def set_datasets(self, make: Callable[[np.ndarray, bool], Dataset], split: dict[str, np.ndarray]) -> None:
        """Set the five ``*_dataset`` attributes (``make(positions, train)`` builds one) and ``split``, the
        positions of each role into the pooled dataset."""
        for role in ROLES:
            setattr(self, f"{role}_dataset", make(split[role], role == "train"))
        self.split = split

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Apply :attr:`batch_transform` to the images of an ``(images, labels, indices)`` batch on the
        device: training (random crops and flips) while the trainer trains, evaluation otherwise."""
        images, labels, indices = batch
        training = self.trainer is not None and self.trainer.training
        return self.model_input(images, training), labels, indices

    def model_input(self, images: Tensor, training: bool = False) -> Tensor:
        """A batch of dataset images ``(B, C, H, W)`` (as the datasets yield them, moved to the device)
        → the model's float input: :attr:`batch_transform` when there is one. Code that reads the datasets
        without a Trainer (diagnostics, retrieval) calls this, as the Trainer's hook does."""
        return images if self.batch_transform is None else self.batch_transform(images, training)

    def eval_loader(self, dataset: Dataset) -> DataLoader:
        """An evaluation loader over ``dataset`` (in order, drawing nothing from the global generator)."""
        return self._loader(dataset, train=False)

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
            # evaluation draws its workers' seeds from its own generator, never from the global one: it
            # must not move the training's randomness (how often one validates changes nothing)
            generator=None if train else torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_dataset, train=True)

    def val_dataloader(self) -> list[DataLoader]:
        """Validation queries (index 0) against the validation database (index 1)."""
        return [
            self._loader(self.val_query_dataset, train=False),
            self._loader(self.val_database_dataset, train=False),
        ]

    def test_dataloader(self) -> list[DataLoader]:
        """Test queries (index 0) against the database (index 1)."""
        return [
            self._loader(self.query_dataset, train=False),
            self._loader(self.database_dataset, train=False),
        ]

    def predict_dataloader(self) -> list[DataLoader]:
        """Test queries (index 0) and database (index 1)."""
        return self.test_dataloader()

    # ------------------------------------------------- images from outside the splits (retrieval)
    def image_transform(self) -> Callable[[Image.Image], Tensor]:
        """A PIL image of any mode → the model's input, made as the query and database items are."""
        transform, mode = getattr(self, "eval_transform", None), self.image_mode
        if transform is None:
            raise NotImplementedError(f"{type(self).__name__} has no evaluation transform for images")

        def model_input(image: Image.Image) -> Tensor:
            item = transform(image.convert(mode))
            if self.batch_transform is None:
                return item
            return self.batch_transform(item.unsqueeze(0), False)[0]

        return model_input

    def item_id(self, role: EvalRole, position: int) -> str:
        """A name for item ``position`` of the query or database split (after :meth:`setup`)."""
        return f"{role}/{position}"

    def picture(self, role: EvalRole, position: int) -> Image.Image:
        """Item ``position`` of the query or database split as a picture to look at (after :meth:`setup`)."""
        raise NotImplementedError(f"{type(self).__name__} cannot show its items as pictures")
