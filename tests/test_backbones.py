"""Backbones beyond ``.fc``/``.classifier`` heads: torchvision's graph cut, timm models and raw pixels."""

from __future__ import annotations

import sys

import pytest
import torch
import torchvision

from hashbench.backbones import Flatten, PretrainedWeightsUnavailable, TimmBackbone, TorchvisionBackbone
from hashbench.errors import UserError


@pytest.mark.parametrize(
    ("name", "features", "size"),
    [("vit_b_16", 768, 224), ("swin_t", 768, 64), ("efficientnet_b0", 1280, 32), ("convnext_tiny", 768, 32)],
)
def test_torchvision_backbone_cuts_any_classifier(name: str, features: int, size: int) -> None:
    backbone = TorchvisionBackbone(name, weights=None).eval()
    assert backbone.out_features == features
    with torch.no_grad():
        assert backbone(torch.randn(1, 3, size, size)).shape == (1, features)


def test_torchvision_backbone_is_the_model_up_to_its_last_linear() -> None:
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    torch.manual_seed(0)
    backbone = TorchvisionBackbone("resnet18", weights=None).eval()
    model.fc = torch.nn.Identity()
    images = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(backbone(images), model(images))


def test_timm_backbone_drops_its_classifier() -> None:
    backbone = TimmBackbone("resnet10t", pretrained=False)
    assert backbone.out_features == 512
    assert backbone(torch.randn(2, 3, 32, 32)).shape == (2, 512)


def test_timm_pretrained_weights_offline_fail_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub.errors import LocalEntryNotFoundError
    from timm.models import _hub

    def refuse(*args: object, **kwargs: object) -> None:
        raise LocalEntryNotFoundError("offline and not in the cache")

    monkeypatch.setattr(_hub, "hf_hub_download", refuse)
    with pytest.raises(PretrainedWeightsUnavailable, match=r"timm/resnet10t.*pretrained false"):
        TimmBackbone("resnet10t", pretrained=True)


def test_timm_unknown_model_is_named() -> None:
    with pytest.raises(UserError, match="unknown timm model 'resnet7t'"):
        TimmBackbone("resnet7t")


def test_flatten_maps_pixels_to_features() -> None:
    images = torch.arange(2 * 64, dtype=torch.float32).reshape(2, 1, 8, 8)
    torch.testing.assert_close(Flatten(64)(images), images.reshape(2, 64))
    with pytest.raises(UserError, match="in_features to 64"):
        Flatten(48)(images)


def test_timm_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm raises ImportError
    with pytest.raises(UserError, match="pip install timm"):
        TimmBackbone("resnet10t")
