"""Image transforms of the hashing papers: resize, crop (random + flip for training, centre for evaluation),
ImageNet normalisation.

Two pipelines give these transforms the same meaning:

* ``uint8`` (default): the loader workers decode with ``torchvision.io`` and resize, crop and flip uint8
  ``(3, H, W)`` tensors (:func:`uint8_transforms`); the batch travels as uint8 and is turned into float and
  normalised on the device, once per batch (:mod:`hashbench.data.device`).
* ``pil``: PIL decode and resize, float conversion and normalisation in the workers
  (:func:`image_transforms`), kept to compare against.

With the decoded-image cache, the uint8 transforms are split into a fixed part, stored once, and a random
part, run on every read (:func:`cached_uint8_transforms`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch
from PIL import Image
from torch import Tensor
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms import v2

from hashbench.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_resize_size(image_size: int) -> int:
    """The papers' 256:224 ratio: 256 for 224, 37 for 32."""
    return round(image_size * 256 / 224)


def checked_resize_size(image_size: int, resize_size: int | None) -> int:
    """``resize_size`` (``None``: :func:`default_resize_size`), checked to be at least ``image_size``."""
    resize = default_resize_size(image_size) if resize_size is None else resize_size
    if image_size < 1 or resize < image_size:
        raise UserError(
            f"need 1 <= image_size <= resize_size, got image_size={image_size}, resize_size={resize}"
        )
    return resize


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
    resize = checked_resize_size(image_size, resize_size)
    to_tensor = [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ]
    flip = [v2.RandomHorizontalFlip()] if horizontal_flip else []
    train = v2.Compose([v2.Resize(resize), v2.RandomCrop(image_size), *flip, *to_tensor])
    evaluation = v2.Compose([v2.Resize(resize), v2.CenterCrop(image_size), *to_tensor])
    return train, evaluation


def resized_shape(height: int, width: int, resize_size: int) -> tuple[int, int]:
    """``(height, width)`` after ``v2.Resize(resize_size)``: the shorter side ``resize_size``, the longer
    scaled and rounded down, as torchvision rounds."""
    longer = int(resize_size * max(height, width) / min(height, width))
    return (resize_size, longer) if height <= width else (longer, resize_size)


class ResizeRandomCrop(v2.Transform):
    """``Resize(resize_size)`` then ``RandomCrop(size)`` in one pass: the crop window is drawn as
    ``RandomCrop`` draws it (same random calls, so the same seed gives the same window), mapped back onto
    the source image and resized alone to ``size × size`` (antialiased). The resize then computes only the
    crop's pixels (224² instead of 256 × 341 for a 4:3 image). The window is rounded to whole source pixels:
    against the two-step transform the crop may shift and scale by up to half a source pixel."""

    def __init__(self, resize_size: int, size: int) -> None:
        super().__init__()
        self.resize_size, self.size = resize_size, size

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        resized = resized_shape(height, width, self.resize_size)
        top, left = (
            int(torch.randint(0, side - self.size + 1, size=())) if side > self.size else 0
            for side in resized
        )
        scale_y, scale_x = height / resized[0], width / resized[1]
        y0, y1 = round(top * scale_y), round((top + self.size) * scale_y)
        x0, x1 = round(left * scale_x), round((left + self.size) * scale_x)
        return {"top": y0, "left": x0, "height": y1 - y0, "width": x1 - x0}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        window = v2.functional.crop(inpt, **params)
        if type(window) is Tensor:
            window = channels_innermost(window)
        return v2.functional.resize(window, [self.size, self.size], antialias=True)


def channels_innermost(image: Tensor) -> Tensor:
    """``(C, H, W)`` → the same values stored height, width, channels (strides ``(1, W·C, C)``). Resizing
    a uint8 image so laid out takes PyTorch's vectorised path, about twice as fast, and keeps the layout
    (a crop of a decoded image is a strided view that takes the slow path and comes out channels-first)."""
    return image.permute(1, 2, 0).contiguous().permute(2, 0, 1)


def uint8_transforms(
    image_size: int = 224, resize_size: int | None = None, horizontal_flip: bool = True
) -> tuple[v2.Compose, v2.Compose]:
    """:func:`image_transforms` without the float conversion and normalisation: uint8 ``(3, H, W)`` tensor
    → uint8 ``(3, image_size, image_size)``, resized with antialiasing (the images are normalised on the
    device by :func:`hashbench.data.device.normalize`). Works on CPU and CUDA tensors. Training resizes
    the random window only (:class:`ResizeRandomCrop`); evaluation resizes, then crops, exactly as PIL."""
    resize = checked_resize_size(image_size, resize_size)
    flip = [v2.RandomHorizontalFlip()] if horizontal_flip else []
    train = v2.Compose([ResizeRandomCrop(resize, image_size), *flip])
    evaluation = v2.Compose([v2.Resize(resize, antialias=True), v2.CenterCrop(image_size)])
    return train, evaluation


class CachedStages(NamedTuple):
    """A uint8 transform split for the decoded-image cache: ``fixed`` (deterministic, its output is stored),
    then ``random`` (run on every read; ``None``: nothing random)."""

    fixed: v2.Transform
    random: v2.Transform | None
    shape: Callable[[int, int], tuple[int, int]]
    """The ``(height, width)`` ``fixed`` makes of an image of ``(height, width)``."""


def cached_uint8_transforms(
    image_size: int = 224, resize_size: int | None = None, horizontal_flip: bool = True
) -> tuple[CachedStages, CachedStages]:
    """:func:`uint8_transforms` for the decoded-image cache, training and evaluation. Training stores the
    image resized (shorter side ``resize_size``) and crops and flips each read: the meaning of
    :func:`image_transforms`, resized as a whole. Evaluation stores the centre crop itself."""
    resize = checked_resize_size(image_size, resize_size)
    flip = [v2.RandomHorizontalFlip()] if horizontal_flip else []
    train = CachedStages(
        v2.Resize(resize, antialias=True),
        v2.Compose([v2.RandomCrop(image_size), *flip]),
        lambda height, width: resized_shape(height, width, resize),
    )
    evaluation = CachedStages(
        v2.Compose([v2.Resize(resize, antialias=True), v2.CenterCrop(image_size)]),
        None,
        lambda height, width: (image_size, image_size),
    )
    return train, evaluation


def read_rgb(path: Path) -> Tensor:
    """Decode an image file to uint8 RGB ``(3, H, W)``: ``torchvision.io`` (libjpeg-turbo, libpng, …), else
    PIL for what it cannot decode. Grayscale is repeated over the channels, alpha dropped and CMYK
    converted, as PIL's ``convert("RGB")`` does.

    Raises:
        OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError: neither decoder can read it.
    """
    try:
        return decode_image(str(path), mode=ImageReadMode.RGB)
    except RuntimeError:
        with Image.open(path) as file:
            return pil_to_uint8(file)


def pil_to_uint8(image: Image.Image) -> Tensor:
    """A PIL image of any mode → uint8 RGB ``(3, H, W)`` (``convert("RGB")``)."""
    return v2.functional.pil_to_tensor(image.convert("RGB"))
