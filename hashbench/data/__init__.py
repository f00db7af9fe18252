"""Retrieval DataModules: train / query / database splits."""

from hashbench.data.base import RetrievalDataModule, RetrievalItem
from hashbench.data.cifar10 import CIFAR10
from hashbench.data.digits import Digits, TensorRetrievalDataset
from hashbench.data.listfile import COCO, NUSWIDE, ImageListDataset, ImageNet100, ListFileDataModule

__all__ = [
    "CIFAR10",
    "COCO",
    "NUSWIDE",
    "Digits",
    "ImageListDataset",
    "ImageNet100",
    "ListFileDataModule",
    "RetrievalDataModule",
    "RetrievalItem",
    "TensorRetrievalDataset",
]
