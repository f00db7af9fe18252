"""Images per second per core of the image pipelines, the former PIL path side by side with the uint8 one.

    nice python benchmarks/data_speed.py            # the README's table (under 2 minutes on 2 cores)
    nice python benchmarks/data_speed.py --images 128 --cifar-images 2048   # smoke run

Everything runs in this one process with one thread (``torch.set_num_threads(1)``, ``num_workers=0``) and
is timed in CPU seconds of this process, so a rate is images per second per core (the wall clock of a
shared machine would also count other processes); a loader with W workers scales it by up to W.

* List files at 224 px: ``--images`` generated 500×375 JPEGs (quality 90, the size of NUS-WIDE and COCO
  images), read by :class:`~hashbench.data.listfile.ImageListDataset` with the training transform through a
  ``DataLoader`` (batch 64). ``pil`` (the former path): PIL decode, resize, crop, flip, float normalisation
  in the loader, stacked channels-first by the DataLoader's default collate. ``uint8``: torchvision.io
  decode and uint8 resize, crop, flip in the loader, stacked channels-last (``collate_readable``); the
  normalisation on the device, timed separately here on the CPU (on a GPU it is negligible). ``pil`` and
  ``uint8`` run ``--rounds`` times, alternately, and each keeps its fastest round. ``nvjpeg``:
  the loader's share only (reading the files' bytes); the GPU decode cannot be timed without a GPU.
  ``uint8 + image cache``: the decoded-image cache (``image_cache``): its first epoch decodes, resizes and
  stores each image, later epochs read the resized image and only crop and flip it.
* CIFAR-10 at 224 px: ``--cifar-images`` random 32×32 images. Former path: PIL resize to 256, random crop,
  flip, float normalisation in the loader (``image_transforms(224)`` on each image, as the former
  ``ArrayImageDataset`` did). Now: the loader sends the 32 px uint8 images
  (:class:`~hashbench.data.cifar10.ArrayImageDataset`); upsampling, crop, flip and normalisation run on the
  device (:class:`~hashbench.data.device.UpsampleBatch`), timed separately here on the CPU.
* Fidelity: the largest and mean absolute difference, after normalisation, between the uint8 and the PIL
  evaluation transform on the same JPEGs (one uint8 level is 1/255/0.225 = 0.0174).

"cores at 1,400/s": the cores a loader needs to feed a GPU that trains at 1,400 images/s (about VGG11 on an
A100; an estimate). The load average is printed: on a shared, loaded machine the figures are low and noisy.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from hashbench.data.cifar10 import ArrayImageDataset
from hashbench.data.device import UpsampleBatch, normalize
from hashbench.data.image_cache import ImageCache
from hashbench.data.listfile import (
    CachedReads,
    ImageListDataset,
    collate_encoded,
    collate_readable,
    stored_shapes,
)
from hashbench.data.transforms import cached_uint8_transforms, image_transforms, read_rgb, uint8_transforms

GPU_RATE = 1_400
"""Images/s a GPU trains at (VGG11 on an A100, estimated) that the loader must feed."""
BATCH = 64


def write_jpegs(folder: Path, count: int, seed: int = 0) -> list[str]:
    """``count`` 500×375 photo-like JPEGs (smooth colour + noise, quality 90); their file names."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:375, 0:500]
    names = []
    for i in range(count):
        phase = rng.uniform(0, 6, 3)
        base = np.stack([128 + 100 * np.sin(x / 31 + p) * np.cos(y / 19 - p) for p in phase], axis=-1)
        pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        names.append(f"{i:05d}.jpg")
        Image.fromarray(pixels).save(folder / names[-1], quality=90)
    return names


class PILArrayDataset(Dataset):
    """The former in-memory path: ``(N, 32, 32, 3)`` uint8 → PIL → float transform, per image."""

    def __init__(self, images: np.ndarray, labels: torch.Tensor, transform: Callable[[Any], Any]) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Any, torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[index])), self.labels[index], index


def rate(batches: Iterable[Any], step: Callable[[Any], Any] = lambda batch: batch) -> tuple[float, float]:
    """Pass every batch through ``step``; images per CPU second of the whole and CPU seconds spent in
    ``step`` (after the first batch, a warm-up). CPU time of this process, not wall time: on a shared
    machine the wall clock also counts the time other processes hold the core."""
    iterator = iter(batches)
    step(next(iterator))
    images, in_step, start = 0, 0.0, time.process_time()
    for batch in iterator:
        before = time.process_time()
        step(batch)
        in_step += time.process_time() - before
        images += len(batch[1])
    return images / (time.process_time() - start), in_step


def loader(dataset: Dataset, collate: Callable[[list[Any]], Any] | None = None) -> DataLoader:
    return DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=0, collate_fn=collate)


def device_step(transform: Callable[[torch.Tensor, bool], torch.Tensor]) -> Callable[[Any], Any]:
    return lambda batch: transform(batch[0], True)


def list_file_rows(count: int, rounds: int) -> list[tuple[str, float, float]]:
    """(name, loader images/s, loader + device step images/s) for the PIL and the uint8 path; the two
    loaders run ``rounds`` times, alternately, and each keeps its fastest round (a shared machine only
    ever slows a round down)."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        names = write_jpegs(root, count)
        labels = torch.zeros(count, 21)
        pil_train, _ = image_transforms(224)
        uint8_train, _ = uint8_transforms(224)
        pil = ImageListDataset(root, names, labels, pil_train, read="pil")
        uint8 = ImageListDataset(root, names, labels, uint8_train, read="uint8")
        pil_rates, uint8_rates = [], []
        for _ in range(rounds):
            pil_rates.append(rate(loader(pil))[0])  # the former collate: a channels-first stack
            uint8_rates.append(rate(loader(uint8, collate_readable))[0])
        pil_rate, uint8_rate = max(pil_rates), max(uint8_rates)
        with_step, in_step = rate(loader(uint8, collate_readable), device_step(lambda x, _: normalize(x)))
        encoded = ImageListDataset(root, names, labels, None, read="nvjpeg")
        nvjpeg_rate, _ = rate(loader(encoded, collate_encoded))
        cached = cached_dataset(root, names, labels)
        filling, _ = rate(loader(cached, collate_readable))
        reading, _ = rate(loader(cached, collate_readable))
        reading_with_step, _ = rate(loader(cached, collate_readable), device_step(lambda x, _: normalize(x)))
        fidelity = fidelity_row(root, names[: min(16, count)])
        costs = step_costs(root, names[: min(64, count)])
        kilobytes = np.mean([(root / name).stat().st_size for name in names]) / 1000
    print(f"{count} JPEGs of 500×375, {kilobytes:.0f} KB on average; CPU ms an image, one thread:")
    print(", ".join(f"{name} {cost:.2f}" for name, cost in costs.items()))
    device_rate = (count - BATCH) / in_step
    return [
        ("list file 224 px, pil (former)", pil_rate, pil_rate),
        ("list file 224 px, uint8 loader", uint8_rate, with_step),
        ("  its device step (normalise) on this CPU", device_rate, device_rate),
        ("list file 224 px, nvjpeg loader (file bytes only)", nvjpeg_rate, nvjpeg_rate),
        ("list file 224 px, uint8 + image cache, first epoch", filling, filling),
        ("list file 224 px, uint8 + image cache, later epochs", reading, reading_with_step),
        fidelity,
    ]


def cached_dataset(root: Path, names: list[str], labels: torch.Tensor) -> ImageListDataset:
    """The training images through an empty decoded-image cache under ``root/cache``."""
    stages, _ = cached_uint8_transforms(224)
    files = [root / name for name in names]
    shapes = partial(stored_shapes, files, stages.shape)
    cache = ImageCache(root / "cache", "train", repr(stages.fixed), files, shapes)
    reads = CachedReads(cache, np.arange(len(names)), stages.fixed)
    return ImageListDataset(root, names, labels, stages.random, read="uint8", cached=reads)


def step_costs(root: Path, names: list[str]) -> dict[str, float]:
    """CPU milliseconds an image of each step of the two paths (mean over ``names``)."""
    pil_images = []
    steps: dict[str, Callable[[Path], Any]] = {
        "decode, PIL": lambda path: pil_images.append(Image.open(path).convert("RGB")),
        "decode, torchvision.io": read_rgb,
    }
    costs = {name: per_image_ms(step, [root / name for name in names]) for name, step in steps.items()}
    tensors = [read_rgb(root / name) for name in names]
    costs["resize to 256, PIL"] = per_image_ms(
        lambda image: image.resize((341, 256), Image.Resampling.BILINEAR), pil_images
    )
    resize = v2.Resize(256, antialias=True)
    costs["resize to 256, uint8 tensor"] = per_image_ms(resize, tensors)
    return costs


def per_image_ms(step: Callable[[Any], Any], inputs: list[Any]) -> float:
    start = time.process_time()
    for item in inputs:
        step(item)
    return (time.process_time() - start) / len(inputs) * 1000


def fidelity_row(root: Path, names: list[str]) -> tuple[str, float, float]:
    """(name, max, mean) absolute difference between the uint8 and PIL evaluation outputs."""
    _, pil_eval = image_transforms(224)
    _, uint8_eval = uint8_transforms(224)
    differences = []
    for name in names:
        with Image.open(root / name) as file:
            expected = pil_eval(file.convert("RGB"))
        differences.append((normalize(uint8_eval(read_rgb(root / name))[None])[0] - expected).abs())
    stacked = torch.stack(differences)
    return ("fidelity uint8 vs pil, max | mean abs diff", stacked.max().item(), stacked.mean().item())


def cifar_rows(count: int) -> list[tuple[str, float, float]]:
    """(name, loader images/s, loader + device step images/s) for CIFAR-10 at 224 px, former and new."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
    labels = torch.zeros(count, 10)
    pil_train, _ = image_transforms(224)
    former = PILArrayDataset(images[: max(BATCH * 4, count // 8)], labels, pil_train)
    former_rate, _ = rate(loader(former))
    uint8 = ArrayImageDataset(images, labels)
    uint8_rate, _ = rate(loader(uint8))
    upsample = UpsampleBatch(224)
    subset = ArrayImageDataset(images[: BATCH * 4], labels[: BATCH * 4])
    _, in_step = rate(loader(subset), device_step(upsample))
    device_rate = BATCH * 3 / in_step
    combined = 1 / (1 / uint8_rate + 1 / device_rate)
    return [
        ("CIFAR-10 224 px, pil per image (former)", former_rate, former_rate),
        ("CIFAR-10 224 px, 32 px uint8 loader", uint8_rate, combined),
        ("  its device step (upsample, crop, flip) on this CPU", device_rate, device_rate),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=512, help="generated JPEGs (500×375)")
    parser.add_argument("--cifar-images", type=int, default=12_800, help="in-memory 32×32 images")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds of the pil and uint8 loaders"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    rows = list_file_rows(args.images, args.rounds) + cifar_rows(args.cifar_images)
    load_after = os.getloadavg()
    print(f"load average (1, 5, 15 min): before {load_before}, after {load_after}; {os.cpu_count()} cores")
    print("one core, batch 64; 'with device step' adds the on-device work done here on the CPU")
    header = f"{'pipeline':<52} {'loader img/s':>13} {'cores at 1,400/s':>17} {'with device step':>17}"
    print(header)
    print("-" * len(header))
    for name, loader_rate, with_step in rows:
        if name.startswith("fidelity"):
            print(f"{name:<52} {loader_rate:>13.4f} {'':>17} {with_step:>17.5f}")
            continue
        cores = f"{GPU_RATE / loader_rate:.2f}"
        print(f"{name:<52} {loader_rate:>13,.0f} {cores:>17} {with_step:>17,.0f}")
    loaders = {name: loader_rate for name, loader_rate, _ in rows}
    pil, uint8 = loaders["list file 224 px, pil (former)"], loaders["list file 224 px, uint8 loader"]
    cached = loaders["list file 224 px, uint8 + image cache, later epochs"]
    former = loaders["CIFAR-10 224 px, pil per image (former)"]
    cifar = loaders["CIFAR-10 224 px, 32 px uint8 loader"]
    print(f"list file loader speed-up (uint8 / pil, per core): {uint8 / pil:.2f}×")
    print(f"list file loader speed-up with the image cache, later epochs (per core): {cached / pil:.1f}×")
    filling = loaders["list file 224 px, uint8 + image cache, first epoch"]
    for epochs in (10, 100):
        whole_run = epochs / (1 / filling + (epochs - 1) / cached)
        print(f"  over a {epochs}-epoch run, the first filling the cache: {whole_run / pil:.1f}×")
    print(f"CIFAR-10 loader speed-up (32 px uint8 / pil per image, per core): {cifar / former:.1f}×")


if __name__ == "__main__":
    main()
