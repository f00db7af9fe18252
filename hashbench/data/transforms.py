"""Image transforms of the hashing papers: resize, crop (random + flip for training, centre for evaluation),
ImageNet normalisation."""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from hashbench.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_resize_size(image_size: int) -> int:
    """The papers' 256:224 ratio: 256 for 224, 37 for 32."""
    return round(image_size * 256 / 224)


def image_transforms(
    image_size: int = 224, resize_size: int | None = None, horizontal_flip: bool = True
) -> tuple[v2.Compose, v2.Compose]:
    """The training and the evaluation transform, each PIL image → ``(3, image_size, image_size)`` float.

    Training: resize the shorter side to ``resize_size``, random ``image_size`` crop, horizontal flip.
    Evaluation (query and database): resize the shorter side to ``resize_size``, centre crop.
    Both normalise with the ImageNet mean and std.

    Args:
        image_size: side of the square crop in pixels (224 for ImageNet backbones; 32 for CIFAR-10 at
            its native size with the small CNN).
        resize_size: shorter side after resizing, before cropping; ``None`` = ``image_size · 256/224``.
        horizontal_flip: flip training images left-right with probability ½.
    """
    resize = default_resize_size(image_size) if resize_size is None else resize_size
    if image_size < 1 or resize < image_size:
        raise UserError(
            f"need 1 <= image_size <= resize_size, got image_size={image_size}, resize_size={resize}"
        )
    to_tensor = [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ]
    flip = [v2.RandomHorizontalFlip()] if horizontal_flip else []
    train = v2.Compose([v2.Resize(resize), v2.RandomCrop(image_size), *flip, *to_tensor])
    evaluation = v2.Compose([v2.Resize(resize), v2.CenterCrop(image_size), *to_tensor])
    return train, evaluation
