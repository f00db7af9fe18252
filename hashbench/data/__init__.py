"""Retrieval DataModules: train / query / database splits and a validation split carved from the database."""

from hashbench.data.base import RetrievalDataModule, RetrievalItem
from hashbench.data.cifar10 import CIFAR10
from hashbench.data.digits import Digits, TensorRetrievalDataset
from hashbench.data.listfile import (
    COCO,
    NUSWIDE,
    VOC,
    ImageListDataset,
    ImageNet100,
    ListFileDataModule,
    MIRFlickr,
)

__all__ = [
    "CIFAR10",
    "COCO",
    "NUSWIDE",
    "VOC",
    "Digits",
    "ImageListDataset",
    "ImageNet100",
    "ListFileDataModule",
    "MIRFlickr",
    "RetrievalDataModule",
    "RetrievalItem",
    "TensorRetrievalDataset",
]
