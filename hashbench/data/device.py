"""Device-side batch transforms, run by a DataModule's ``on_after_batch_transfer`` once per batch.

The loader workers hand over uint8 images; here they become float and are normalised with the ImageNet mean
and std on the device that trains the model. Two sources need more than normalisation:

* in-memory 32 px images (CIFAR-10) at a larger ``image_size``: :class:`UpsampleBatch` upsamples, crops and
  flips the batch on the device instead of sending 49× more pixels from the workers;
* JPEG bytes (``pipeline: nvjpeg``): :class:`DecodeBatch` decodes them with nvJPEG on the GPU, then resizes
  and crops each image there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.io import ImageReadMode, decode_image, decode_jpeg

from hashbench.data.transforms import IMAGENET_MEAN, IMAGENET_STD, checked_resize_size, uint8_transforms
from hashbench.errors import UserError

JPEG_MAGIC = b"\xff\xd8\xff"


def normalize(images: Tensor) -> Tensor:
    """uint8 ``(B, 3, H, W)`` in [0, 255] → float32 ``(B, 3, H, W)``: ``(x / 255 - mean) / std``, ImageNet."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return torch.addcmul(-mean / std, images.float(), 1 / (255 * std))


def normalize_batch(images: Tensor, training: bool) -> Tensor:
    """:func:`normalize`, for batches cropped in the workers already (train and evaluation alike)."""
    return normalize(images)


def random_crops(images: Tensor, size: int) -> Tensor:
    """An independent uniformly drawn ``size × size`` window of each image of ``(B, C, H, W)``."""
    batch, channels, height, width = images.shape
    top = torch.randint(0, height - size + 1, (batch, 1), device=images.device)
    left = torch.randint(0, width - size + 1, (batch, 1), device=images.device)
    steps = torch.arange(size, device=images.device)
    rows = (top + steps).view(batch, 1, size, 1)
    cols = (left + steps).view(batch, 1, 1, size)
    return images[
        torch.arange(batch, device=images.device).view(batch, 1, 1, 1),
        torch.arange(channels, device=images.device).view(1, channels, 1, 1),
        rows,
        cols,
    ]


def center_crops(images: Tensor, size: int) -> Tensor:
    """The central ``size × size`` window of ``(B, C, H, W)`` (offsets rounded as torchvision's
    CenterCrop)."""
    height, width = images.shape[-2:]
    top, left = round((height - size) / 2), round((width - size) / 2)
    return images[..., top : top + size, left : left + size]


def random_flips(images: Tensor) -> Tensor:
    """Flip each image of ``(B, C, H, W)`` left-right with probability ½, independently."""
    flip = torch.rand(images.shape[0], device=images.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)


class UpsampleBatch:
    """Same-size uint8 images ``(B, 3, h, w)`` → normalised float ``(B, 3, image_size, image_size)``.

    In this order, the meaning of :func:`~hashbench.data.transforms.image_transforms`:

    1. float conversion and ImageNet normalisation (at the small size: an affine map per channel commutes
       with bilinear resizing, whose weights sum to one, so doing it first changes nothing but its cost);
    2. bilinear resize of the shorter side to ``resize_size`` (antialiased; upsampling needs none);
    3. training: an independent random ``image_size`` crop and a left-right flip with probability ½ per
       image; evaluation: the centre crop.

    PIL resizes in fixed point and rounds the result to uint8, this path stays in float: the two differ
    by at most one uint8 level (1/255 before normalisation). Images already at ``image_size`` with
    ``resize_size == image_size`` are only normalised (and flipped in training).
    """

    def __init__(self, image_size: int, resize_size: int | None = None, horizontal_flip: bool = True) -> None:
        self.image_size = image_size
        self.resize_size = checked_resize_size(image_size, resize_size)
        self.horizontal_flip = horizontal_flip

    def __call__(self, images: Tensor, training: bool) -> Tensor:
        images = normalize(images)
        height, width = images.shape[-2:]
        scale = self.resize_size / min(height, width)
        size = (round(height * scale), round(width * scale))
        if size != (height, width):
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)
        if training:
            images = random_crops(images, self.image_size)
            return random_flips(images) if self.horizontal_flip else images
        return center_crops(images, self.image_size)


Decoder = Callable[[list[Tensor]], list[Tensor]]
"""Batch of 1-D uint8 file contents → uint8 RGB ``(3, H, W)`` images on the same device."""


def nvjpeg_decode(data: list[Tensor]) -> list[Tensor]:
    """Decode JPEG bytes (1-D uint8 CUDA tensors) with nvJPEG on their GPU, in one batched call."""
    decoded = decode_jpeg(data, mode=ImageReadMode.RGB, device=data[0].device)
    return decoded if isinstance(decoded, list) else [decoded]


class DecodeBatch:
    """A batch of file contents on the device → normalised float ``(B, 3, image_size, image_size)``.

    Items are 1-D uint8 file contents (JPEGs, decoded together by ``decoder``: nvJPEG by default) or
    uint8 ``(3, H, W)`` images the workers decoded already (files that are not JPEGs). A JPEG the batched
    decoder refuses (e.g. CMYK in some nvJPEG builds) is decoded on the CPU and moved back. Each image is
    then resized and cropped (and flipped in training) by
    :func:`~hashbench.data.transforms.uint8_transforms`, on the device, and the stacked batch normalised.
    """

    def __init__(
        self,
        image_size: int,
        resize_size: int | None = None,
        horizontal_flip: bool = True,
        decoder: Decoder = nvjpeg_decode,
    ) -> None:
        self.train_transform, self.eval_transform = uint8_transforms(image_size, resize_size, horizontal_flip)
        self.decoder = decoder

    def decode(self, items: Sequence[Tensor]) -> list[Tensor]:
        """Decode the 1-D items of ``items`` in one call; 3-D items pass through."""
        encoded = [i for i, item in enumerate(items) if item.ndim == 1]
        images = list(items)
        if not encoded:
            return images
        try:
            decoded = self.decoder([items[i] for i in encoded])
        except RuntimeError:
            decoded = [self._decode_one(items[i]) for i in encoded]
        for i, image in zip(encoded, decoded, strict=True):
            images[i] = image
        return images

    def _decode_one(self, data: Tensor) -> Tensor:
        try:
            return self.decoder([data])[0]
        except RuntimeError:
            pass
        try:
            return decode_image(data.cpu(), mode=ImageReadMode.RGB).to(data.device)
        except RuntimeError as error:
            raise UserError(
                f"a JPEG of this batch cannot be decoded ({error}). List the bad files with "
                "`verify_images: true` in the data's init_args, or use pipeline: uint8 with "
                "`bad_images: skip` to leave them out."
            ) from None

    def __call__(self, items: Sequence[Tensor], training: bool) -> Tensor:
        if items and items[0].device.type != "cuda" and self.decoder is nvjpeg_decode:
            raise UserError(
                f"pipeline: nvjpeg decodes on the GPU, but the batch is on {items[0].device}; train on a "
                "CUDA device (trainer.accelerator: gpu) or use pipeline: uint8."
            )
        transform = self.train_transform if training else self.eval_transform
        return normalize(torch.stack([transform(image) for image in self.decode(items)]))


def require_cuda(what: str) -> None:
    """Raise a :class:`UserError` naming ``what`` when CUDA is not available."""
    if not torch.cuda.is_available():
        raise UserError(
            f"{what} decodes JPEGs on the GPU with nvJPEG and needs CUDA, which this machine does not have "
            "(torch.cuda.is_available() is False); use pipeline: uint8 (decoding in the loader workers)."
        )


def is_jpeg(data: bytes | Tensor) -> bool:
    """Whether file contents start with the JPEG marker."""
    head = bytes(data[:3].tolist()) if isinstance(data, Tensor) else data[:3]
    return head == JPEG_MAGIC
