"""Backbones, the hash head, the digits data and the split builder."""

from __future__ import annotations

import urllib.error

import numpy as np
import pytest
import torch

from hashbench.backbones import PretrainedWeightsUnavailable, SmallCNN, TorchvisionBackbone
from hashbench.data import Digits
from hashbench.data.splits import split_per_class
from hashbench.heads import HashHead


@pytest.mark.parametrize("size", [8, 32])
def test_small_cnn_suits_small_images(size: int) -> None:
    backbone = SmallCNN(in_channels=3, width=8)
    assert backbone(torch.randn(2, 3, size, size)).shape == (2, backbone.out_features)


@pytest.mark.parametrize(("name", "features"), [("alexnet", 4096), ("vgg11", 4096), ("resnet18", 512)])
def test_torchvision_backbone_drops_the_classifier(name: str, features: int) -> None:
    backbone = TorchvisionBackbone(name, weights=None)
    assert backbone.out_features == features
    assert backbone(
        torch.randn(1, 3, 64, 64) if name != "alexnet" else torch.randn(1, 3, 224, 224)
    ).shape == (
        1,
        features,
    )


def test_pretrained_weights_offline_fail_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # empty cache

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    with pytest.raises(PretrainedWeightsUnavailable, match=r"weights null"):
        TorchvisionBackbone("resnet18", weights="DEFAULT")


def test_unknown_model_and_weights_are_named() -> None:
    with pytest.raises(ValueError, match="unknown torchvision model 'resnet7'"):
        TorchvisionBackbone("resnet7")
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        TorchvisionBackbone("resnet18", weights="IMAGENET_BOGUS")


@pytest.mark.parametrize("activation", ["tanh", "identity"])
def test_hash_head_outputs_raw_and_activated(activation: str) -> None:
    head = HashHead(bits=12, batch_norm=True, activation=activation)
    head.build(20)
    u, h = head(torch.randn(5, 20))
    assert u.shape == h.shape == (5, 12)
    torch.testing.assert_close(h, torch.tanh(u) if activation == "tanh" else u)


def test_hash_head_rejects_bits_below_one() -> None:
    with pytest.raises(ValueError, match="bits must be >= 1"):
        HashHead(bits=0)


def test_split_per_class_is_seeded_disjoint_and_complete() -> None:
    class_ids = np.repeat(np.arange(4), 30)
    a = split_per_class(class_ids, 5, 10, seed=3)
    b = split_per_class(class_ids, 5, 10, seed=3)
    c = split_per_class(class_ids, 5, 10, seed=4)
    assert all(
        np.array_equal(x, y)
        for x, y in zip((a.query, a.train, a.rest), (b.query, b.train, b.rest), strict=True)
    )
    assert not np.array_equal(a.query, c.query)
    assert (len(a.query), len(a.train), len(a.rest)) == (20, 40, 60)
    together = np.concatenate([a.query, a.train, a.rest])
    assert np.array_equal(np.sort(together), np.arange(120))
    assert np.array_equal(np.bincount(class_ids[a.query]), [5] * 4)


def test_split_per_class_rejects_too_many() -> None:
    with pytest.raises(ValueError, match="lower them"):
        split_per_class(np.repeat(np.arange(2), 5), 3, 3, seed=0)


@pytest.mark.parametrize("with_train", [False, True])
def test_digits_splits(with_train: bool) -> None:
    data = Digits(query_per_class=10, train_per_class=50, database_includes_train=with_train)
    data.setup("fit")
    assert len(data.query_dataset) == 100 and len(data.train_dataset) == 500
    assert len(data.database_dataset) == 1797 - 100 - (0 if with_train else 500)
    image, labels, index = data.query_dataset[3]
    assert image.shape == (1, 8, 8) and labels.shape == (10,) and labels.sum() == 1 and index == 3
    assert data.top_k is None and not data.multi_label
    query, database = data.test_dataloader()
    assert len(query.dataset) == 100 and len(database.dataset) == len(data.database_dataset)
