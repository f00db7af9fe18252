"""Feature extractors: torchvision models by name, and a small CNN for CPU runs and tests."""

from __future__ import annotations

import urllib.error

import torch
import torchvision
from torch import Tensor, nn

from hashbench.errors import UserError


class PretrainedWeightsUnavailable(UserError):
    """Pretrained weights were asked for but could not be downloaded or found in the cache."""


class Backbone(nn.Module):
    """Maps images ``(N, C, H, W)`` to features ``(N, out_features)``."""

    out_features: int

    def forward(self, images: Tensor) -> Tensor:
        return self.features(images)


def _load_torchvision_model(name: str, weights: str | None) -> nn.Module:
    available = torchvision.models.list_models(module=torchvision.models)
    if name not in available:
        raise ValueError(f"unknown torchvision model {name!r}; choose one of: {', '.join(sorted(available))}")
    if weights is not None:
        try:
            weights_enum = torchvision.models.get_model_weights(name)
            resolved = weights_enum[weights] if weights != "DEFAULT" else weights_enum.DEFAULT
        except KeyError:
            choices = ", ".join(["DEFAULT", *weights_enum.__members__])
            raise ValueError(f"unknown weights {weights!r} for {name}; choose one of: {choices}") from None
        try:
            return torchvision.models.get_model(name, weights=resolved)
        except (urllib.error.URLError, OSError, RuntimeError) as error:
            cache = torch.hub.get_dir() + "/checkpoints"
            raise PretrainedWeightsUnavailable(
                f"cannot load pretrained weights {resolved} for {name}: {error}. "
                f"Download {resolved.url} into {cache}/ on a machine with internet access, "
                f"or train from scratch with `--model.backbone.weights null`."
            ) from None
    return torchvision.models.get_model(name, weights=None)


class TorchvisionBackbone(Backbone):
    """A torchvision classification model with its last classification layer removed.

    AlexNet and VGG keep the classifier up to fc7 (4096 features, as the hashing papers do);
    ResNets end at the global pool (512 or 2048 features). Inputs are ImageNet-normalised
    images, usually 224×224.

    Args:
        name: torchvision model name, e.g. ``alexnet``, ``vgg11``, ``vgg16``, ``resnet18``, ``resnet50``.
        weights: ``None`` for random initialisation, ``"DEFAULT"`` or a weights name such as
            ``"IMAGENET1K_V1"`` for pretrained weights (downloaded once into the torch hub cache).
    """

    def __init__(self, name: str = "vgg11", weights: str | None = None) -> None:
        super().__init__()
        model = _load_torchvision_model(name, weights)
        self.name = name
        if isinstance(getattr(model, "fc", None), nn.Linear):  # ResNet, RegNet, ...
            self.out_features = model.fc.in_features
            model.fc = nn.Identity()
        elif isinstance(getattr(model, "classifier", None), nn.Sequential):  # AlexNet, VGG, ...
            last = model.classifier[-1]
            if not isinstance(last, nn.Linear):
                raise ValueError(f"{name}: expected the classifier to end in a Linear layer, got {last}")
            self.out_features = last.in_features
            model.classifier = model.classifier[:-1]
        else:
            raise ValueError(f"{name}: cannot find its classification layer (no .fc or .classifier)")
        self.features = model


class SmallCNN(Backbone):
    """Three conv blocks and a global average pool: fast on CPU, suits 8×8 and 32×32 images.

    Args:
        in_channels: image channels (1 for digits, 3 for CIFAR-10).
        width: channels of the first block; later blocks use 2× and 4×.
        dropout: dropout before the output features.
    """

    def __init__(self, in_channels: int = 3, width: int = 32, dropout: float = 0.0) -> None:
        super().__init__()
        if in_channels < 1 or width < 1:
            raise ValueError(f"in_channels and width must be >= 1, got {in_channels} and {width}")

        def block(cin: int, cout: int, pool: bool) -> list[nn.Module]:
            layers: list[nn.Module] = [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
            return [*layers, nn.MaxPool2d(2, ceil_mode=True)] if pool else layers

        self.out_features = 4 * width
        self.features = nn.Sequential(
            *block(in_channels, width, pool=True),
            *block(width, 2 * width, pool=True),
            *block(2 * width, 4 * width, pool=False),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
        )
