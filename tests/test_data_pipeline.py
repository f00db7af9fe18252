"""The uint8 image pipeline against the PIL float path: decoding, the transforms' meaning, the device step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fakedata import write_fake_listfile_dataset
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg

from hashbench.data import NUSWIDE
from hashbench.data.device import DecodeBatch, UpsampleBatch, normalize
from hashbench.data.listfile import ImageListDataset, collate_encoded
from hashbench.data.transforms import image_transforms, pil_to_uint8, read_rgb, uint8_transforms
from hashbench.errors import UserError

ONE_LEVEL = 1 / 255 / min((0.229, 0.224, 0.225)) + 1e-4
"""One uint8 level after ImageNet normalisation (0.0175): the largest difference allowed."""
MEAN_TOLERANCE = 2e-3
"""Largest mean absolute difference allowed after normalisation (about 1/9 of a level)."""


def _picture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth RGB pattern with noise, ``(height, width, 3)`` uint8: like a photo, JPEG-compressible."""
    y, x = np.mgrid[0:height, 0:width]
    channels = [128 + 100 * np.sin(x / 17 + c) * np.cos(y / 23 - c) for c in range(3)]
    noisy = np.stack(channels, axis=-1) + rng.normal(0, 20, (height, width, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real files of several formats, modes and sizes (name → path)."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    alpha = rng.integers(0, 256, (200, 260, 1), dtype=np.uint8)
    made = {
        "rgb.jpg": Image.fromarray(_picture(rng, 375, 500)),
        "gray.jpg": Image.fromarray(_picture(rng, 457, 300)[..., 0]),
        "cmyk.jpg": Image.fromarray(_picture(rng, 300, 400)).convert("CMYK"),
        "rgba.png": Image.fromarray(np.concatenate([_picture(rng, 200, 260), alpha], -1), "RGBA"),
        "palette.gif": Image.fromarray(_picture(rng, 180, 120)).convert("P"),
        "small_gray.png": Image.fromarray(_picture(rng, 40, 60)[..., 1]),
        "rgb.bmp": Image.fromarray(_picture(rng, 90, 70)),  # torchvision.io cannot decode BMP: PIL fallback
    }
    paths = {}
    for name, image in made.items():
        paths[name] = folder / name
        image.save(paths[name], quality=90)  # JPEG quality; other formats ignore it
    return paths


def test_decoding_matches_pil(images: dict[str, Path]) -> None:
    for name, path in images.items():
        with Image.open(path) as file:
            expected = pil_to_uint8(file)
        decoded = read_rgb(path)
        assert decoded.dtype == torch.uint8 and decoded.shape[0] == 3, name
        assert torch.equal(decoded, expected), name


def test_uint8_evaluation_transform_matches_the_pil_path(images: dict[str, Path]) -> None:
    """Resize then centre crop: PIL vs tensor (antialiased) resizing differs by at most one level."""
    _, pil_eval = image_transforms(224)
    _, tensor_eval = uint8_transforms(224)
    for name, path in images.items():
        with Image.open(path) as file:
            expected = pil_eval(file.convert("RGB"))
        got = normalize(tensor_eval(read_rgb(path))[None])[0]
        assert got.shape == expected.shape == (3, 224, 224), name
        difference = (got - expected).abs()
        assert difference.max() <= ONE_LEVEL and difference.mean() <= MEAN_TOLERANCE, name


@pytest.mark.parametrize("size", [(375, 500), (457, 300)], ids=["landscape", "portrait"])
def test_uint8_training_transform_takes_the_pil_window(size: tuple[int, int]) -> None:
    """Same seed, same window and flip as PIL's resize + random crop: the one-pass crop may move by half a
    source pixel, which on ramps of ½ level a pixel (x in red, y in green) stays within two levels."""
    height, width = size
    y, x = np.mgrid[0:height, 0:width]
    ramps = np.stack([x * 255 / (width - 1), y * 255 / (height - 1), np.full(x.shape, 128.0)], axis=-1)
    picture = np.rint(ramps).astype(np.uint8)
    pil_train, _ = image_transforms(224)
    tensor_train, _ = uint8_transforms(224)
    for seed in range(8):
        torch.manual_seed(seed)
        expected = pil_train(Image.fromarray(picture))
        torch.manual_seed(seed)
        cropped = tensor_train(torch.from_numpy(picture).permute(2, 0, 1))
        assert cropped.stride() == (1, 224 * 3, 3)  # channels innermost: the fast resize, a cheap stack
        got = normalize(cropped[None])[0]
        assert got.shape == expected.shape == (3, 224, 224)
        assert (got - expected).abs().max() <= 2 * ONE_LEVEL, seed


def test_normalize_is_imagenet_normalisation() -> None:
    images = torch.randint(0, 256, (2, 3, 5, 5), dtype=torch.uint8)
    _, to_float = image_transforms(5, resize_size=5)
    expected = torch.stack([to_float(Image.fromarray(image.permute(1, 2, 0).numpy())) for image in images])
    assert torch.allclose(normalize(images), expected, atol=1e-5)


def _cifar_like(count: int) -> torch.Tensor:
    rng = np.random.default_rng(1)
    return torch.from_numpy(np.stack([_picture(rng, 32, 32) for _ in range(count)])).permute(0, 3, 1, 2)


def test_upsample_on_device_matches_the_pil_evaluation_transform() -> None:
    """CIFAR-10 at 224 px: 32 px uint8 → normalise → bilinear 256 → centre 224, as PIL resize + crop."""
    batch = _cifar_like(4)
    _, pil_eval = image_transforms(224)
    expected = torch.stack([pil_eval(Image.fromarray(image.permute(1, 2, 0).numpy())) for image in batch])
    got = UpsampleBatch(224)(batch, training=False)
    difference = (got - expected).abs()
    assert got.shape == (4, 3, 224, 224)
    # PIL resizes in fixed point and rounds to uint8, the device path stays in float: within one level,
    # and the rounding alone averages a quarter of a level
    assert difference.max() <= ONE_LEVEL and difference.mean() <= 0.4 * ONE_LEVEL


def test_upsample_training_crops_and_flips_each_image_independently() -> None:
    """Training output = a window of the resized image, flipped or not; windows and flips vary by image."""
    batch = _cifar_like(1).expand(32, -1, -1, -1)
    upsample = UpsampleBatch(24, resize_size=30)
    resized = upsample(batch[:1], training=False)  # centre crop: recompute the full resized image instead
    full = torch.nn.functional.interpolate(
        normalize(batch[:1]), size=(30, 30), mode="bilinear", align_corners=False, antialias=True
    )[0]
    assert torch.allclose(resized[0], full[:, 3:27, 3:27])
    torch.manual_seed(0)
    crops = upsample(batch, training=True)
    found = set()
    for crop in crops:
        matches = [
            (top, left, flip)
            for top in range(7)
            for left in range(7)
            for flip in (False, True)
            if torch.allclose(full[:, top : top + 24, left : left + 24].flip(-1) if flip else
                              full[:, top : top + 24, left : left + 24], crop)
        ]  # fmt: skip
        assert matches
        found.add(matches[0])
    assert len({top for top, _, _ in found}) > 3 and {flip for _, _, flip in found} == {False, True}


def test_list_file_batches_travel_as_uint8_and_are_normalised_on_the_device(tmp_path: Path) -> None:
    root = write_fake_listfile_dataset(tmp_path / "data", 21, True, sizes=(8, 4, 8), val=2)
    fast = {"image_size": 32, "num_workers": 0, "batch_size": 4}
    uint8 = NUSWIDE(str(root), **fast)  # type: ignore[arg-type]
    pil = NUSWIDE(str(root), pipeline="pil", **fast)  # type: ignore[arg-type]
    for datamodule in (uint8, pil):
        datamodule.setup("test")
    images, labels, indices = next(iter(uint8.test_dataloader()[1]))
    assert images.dtype == torch.uint8 and images.shape == (4, 3, 32, 32)
    assert images.is_contiguous(memory_format=torch.channels_last)  # stacked as the model takes it
    got, got_labels, got_indices = uint8.on_after_batch_transfer((images, labels, indices), 0)
    assert got.is_contiguous(memory_format=torch.channels_last)
    expected, expected_labels, expected_indices = next(iter(pil.test_dataloader()[1]))
    assert torch.equal(got_labels, expected_labels) and torch.equal(got_indices, expected_indices)
    assert (got - expected).abs().max() <= ONE_LEVEL
    assert pil.on_after_batch_transfer((expected, labels, indices), 0)[0] is expected


def test_nvjpeg_refuses_without_cuda(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UserError, match="needs CUDA"):
        NUSWIDE(str(tmp_path), pipeline="nvjpeg")
    with pytest.raises(UserError, match="on the GPU"):
        DecodeBatch(32)([torch.zeros(10, dtype=torch.uint8)], training=False)


def test_nvjpeg_plumbing_with_a_cpu_decoder(images: dict[str, Path]) -> None:
    """Workers send JPEG bytes (other formats decoded), the batch step decodes, resizes, crops and normalises:
    the same images as the uint8 path, with the nvJPEG call replaced by the CPU decoder."""
    names = ["rgb.jpg", "gray.jpg", "rgba.png", "rgb.bmp"]
    root = images["rgb.jpg"].parent
    labels = torch.eye(len(names))
    encoded = ImageListDataset(root, names, labels, None, read="nvjpeg")
    items = [encoded[i] for i in range(len(names))]
    first, png = items[0], items[2]
    assert first is not None and png is not None
    assert first[0].ndim == 1 and bytes(first[0].tolist()) == images["rgb.jpg"].read_bytes()
    assert png[0].shape == (3, 200, 260)  # a PNG: decoded in the worker
    batch, batch_labels, indices = collate_encoded([*items, None])
    assert len(batch) == 4 and torch.equal(batch_labels, labels) and indices.tolist() == [0, 1, 2, 3]

    calls = []

    def cpu_decoder(data: list[torch.Tensor]) -> list[torch.Tensor]:
        calls.append(len(data))
        return list(decode_jpeg(data, mode=ImageReadMode.RGB))

    got = DecodeBatch(64, decoder=cpu_decoder)(batch, training=False)
    _, evaluation = uint8_transforms(64)
    expected = normalize(torch.stack([evaluation(read_rgb(root / name)) for name in names]))
    assert calls == [2] and torch.equal(got, expected)


def test_nvjpeg_falls_back_to_the_cpu_for_a_jpeg_the_batched_decoder_refuses(images: dict[str, Path]) -> None:
    data = [
        torch.frombuffer(bytearray(images[name].read_bytes()), dtype=torch.uint8)
        for name in ("rgb.jpg", "cmyk.jpg")
    ]

    def refuses_cmyk(batch: list[torch.Tensor]) -> list[torch.Tensor]:
        if any(torch.equal(item, data[1]) for item in batch):
            raise RuntimeError("nvjpeg: unsupported colour space")
        return list(decode_jpeg(batch, mode=ImageReadMode.RGB))

    decoded = DecodeBatch(32, decoder=refuses_cmyk).decode(data)
    assert torch.equal(decoded[0], read_rgb(images["rgb.jpg"])) and torch.equal(
        decoded[1], read_rgb(images["cmyk.jpg"])
    )


def test_nvjpeg_names_an_undecodable_jpeg_clearly(images: dict[str, Path]) -> None:
    good = torch.frombuffer(bytearray(images["rgb.jpg"].read_bytes()), dtype=torch.uint8)
    corrupt = torch.cat([good[:200], torch.zeros(50, dtype=torch.uint8)])
    decoder = DecodeBatch(32, decoder=lambda batch: list(decode_jpeg(batch, mode=ImageReadMode.RGB)))
    with pytest.raises(UserError, match=r"cannot be decoded.*verify_images"):
        decoder.decode([good, corrupt])
