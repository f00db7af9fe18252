"""Retrieval DataModules: train / query / database splits and a validation split carved from the database.

The classes load on first use (``hashbench.data.Digits``), so the light modules of this package
(:mod:`hashbench.data.prepare`, :mod:`hashbench.data.protocols`) import without torch or Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_MODULES = {
    "RetrievalDataModule": "base",
    "RetrievalItem": "base",
    "CIFAR10": "cifar10",
    "Digits": "digits",
    "TensorRetrievalDataset": "digits",
    "COCO": "listfile",
    "NUSWIDE": "listfile",
    "VOC": "listfile",
    "ImageListDataset": "listfile",
    "ImageNet100": "listfile",
    "ListFileDataModule": "listfile",
    "MIRFlickr": "listfile",
}

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


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module 'hashbench.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"hashbench.data.{_MODULES[name]}"), name)
