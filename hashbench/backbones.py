"""Feature extractors: torchvision and timm models by name, a small CNN for CPU runs and tests, and raw
pixels."""

from __future__ import annotations

import urllib.error

import torch
import torchvision
from torch import Tensor, nn
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

from hashbench.errors import UserError


class PretrainedWeightsUnavailable(UserError):
    """Pretrained weights were asked for but could not be downloaded or found in the cache."""


class Backbone(nn.Module):
    """Maps images ``(N, C, H, W)`` to features ``(N, out_features)``."""

    out_features: int
    features: nn.Module

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


def _classifier_input_node(model: nn.Module, name: str) -> tuple[str, str, int]:
    """The graph nodes (training, evaluation) that feed ``model``'s final classification Linear, and
    that Linear's ``in_features``."""
    linears = [(path, module) for path, module in model.named_modules() if isinstance(module, nn.Linear)]
    train_nodes, eval_nodes = get_graph_node_names(model)
    if not linears or eval_nodes[-1] != linears[-1][0] or train_nodes[-1] != linears[-1][0]:
        raise ValueError(f"{name}: its output is not a final classification Linear layer; cannot strip it")
    return train_nodes[-2], eval_nodes[-2], linears[-1][1].in_features


class TorchvisionBackbone(Backbone):
    """Any torchvision classification model, cut at the input of its final classification Linear.

    The cut is found in the model's traced graph (``torchvision.models.feature_extraction``): AlexNet and
    VGG keep the classifier up to fc7 (4096 features, as the hashing papers do); ResNets, Swin and
    EfficientNet end at the global pool; ViT at the class token after the final LayerNorm; ConvNeXt at the
    flattened normalised pool. Inputs are ImageNet-normalised images, usually 224×224 (ViT needs exactly
    its ``image_size``).

    Args:
        name: torchvision model name, e.g. ``alexnet``, ``vgg16``, ``resnet50``, ``vit_b_16``, ``swin_t``,
            ``convnext_tiny``, ``efficientnet_b0``.
        weights: ``None`` for random initialisation, ``"DEFAULT"`` or a weights name such as
            ``"IMAGENET1K_V1"`` for pretrained weights (downloaded once into the torch hub cache).
    """

    def __init__(self, name: str = "vgg11", weights: str | None = None) -> None:
        super().__init__()
        model = _load_torchvision_model(name, weights)
        self.name = name
        train_node, eval_node, self.out_features = _classifier_input_node(model, name)
        self.features = create_feature_extractor(
            model, train_return_nodes={train_node: "features"}, eval_return_nodes={eval_node: "features"}
        )

    def forward(self, images: Tensor) -> Tensor:
        return self.features(images)["features"]


class TimmBackbone(Backbone):
    """Any ``timm`` model by name, without its classifier (``num_classes=0``): ``out_features`` is its
    ``num_features``. An optional extra: needs ``pip install timm``.

    Args:
        name: timm model name, e.g. ``resnet50``, ``vit_small_patch16_224``, ``convnext_tiny``.
        pretrained: load the pretrained weights (downloaded once from the Hugging Face hub into its cache).
    """

    def __init__(self, name: str = "resnet50", pretrained: bool = False) -> None:
        super().__init__()
        try:
            import timm
        except ImportError:
            raise UserError(f"TimmBackbone({name!r}) needs the timm package: pip install timm") from None
        if not timm.is_model(name):
            close = ", ".join(timm.list_models(f"*{name}*")[:10]) or "none"
            raise UserError(f"unknown timm model {name!r}; similar names: {close} (see timm.list_models())")
        self.name = name
        try:
            model = timm.create_model(name, pretrained=pretrained, num_classes=0)
        except OSError as error:  # the hub's and urllib's errors (offline, missing file) are OSErrors
            config = timm.models.get_pretrained_cfg(name)
            source = (
                f"the Hugging Face repository {config.hf_hub_id}"
                if config is not None and config.hf_hub_id
                else (config.url if config is not None else "its weights")
            )
            raise PretrainedWeightsUnavailable(
                f"cannot load pretrained timm weights for {name}: {error}. Fetch {source} into the Hugging "
                "Face cache (HF_HOME) on a machine with internet access, or train from scratch with "
                "`--model.backbone.pretrained false`."
            ) from None
        num_features = model.num_features
        if not isinstance(num_features, int):
            raise ValueError(f"timm model {name!r} has no integer num_features; cannot use it as a backbone")
        self.out_features = num_features
        self.features = model


class Flatten(Backbone):
    """Raw pixels as features: ``(N, C, H, W)`` → ``(N, C·H·W)``, no parameters (the classic input of
    the shallow baselines).

    Args:
        in_features: C·H·W of the images (64 for 8×8 digits).
    """

    def __init__(self, in_features: int = 64) -> None:
        super().__init__()
        if in_features < 1:
            raise ValueError(f"in_features (C·H·W) must be >= 1, got {in_features}")
        self.out_features = in_features
        self.features = nn.Flatten()

    def forward(self, images: Tensor) -> Tensor:
        features = self.features(images)
        if features.shape[1] != self.out_features:
            raise UserError(
                f"Flatten backbone: the images have C·H·W = {features.shape[1]} values, not in_features = "
                f"{self.out_features}; set model.backbone.init_args.in_features to {features.shape[1]}"
            )
        return features


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
