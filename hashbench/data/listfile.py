"""Image-list datasets: NUS-WIDE, MS-COCO, ImageNet100, MIRFlickr-25K, PASCAL VOC 2012 and any other
dataset given as list files.

A list file holds one image a line, ``relative/path/to/image.jpg 0 1 0 0 1 …``: a path relative to the
data root (or absolute), then one 0/1 per class. ``train.txt`` holds the training images, ``test.txt``
the queries and ``database.txt`` the retrieval database — the files that circulate with hashing code —
and ``val.txt`` the validation queries (database images); ``hashbench prepare`` writes all four.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torchvision
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset, default_collate

from hashbench.data.base import EvalRole, RetrievalDataModule, RetrievalItem
from hashbench.data.device import DecodeBatch, is_jpeg, normalize_batch, require_cuda
from hashbench.data.image_cache import ImageCache
from hashbench.data.splits import draw_unseen_classes, restrict_to_unseen
from hashbench.data.transforms import (
    CachedStages,
    cached_uint8_transforms,
    image_transforms,
    read_rgb,
    uint8_transforms,
)
from hashbench.errors import UserError

BadImagePolicy = Literal["error", "skip"]
Pipeline = Literal["uint8", "pil", "nvjpeg"]
"""How images are read: ``uint8`` (torchvision.io decode and uint8 transforms in the workers, normalised on
the device), ``pil`` (PIL and float transforms in the workers, as before), ``nvjpeg`` (the workers read the
bytes, the GPU decodes)."""
PIPELINES: tuple[Pipeline, ...] = ("uint8", "pil", "nvjpeg")
EmptyLabelPolicy = Literal["drop", "keep", "error"]
CacheSplit = Literal["train", "evaluation"]
"""Which images the decoded-image cache keeps: ``train`` (resized, cropped and flipped on each read),
``evaluation`` (queries and database, resized and centre-cropped)."""
CACHE_SPLITS: tuple[CacheSplit, ...] = ("train", "evaluation")
SHOWN = 5
"""How many offending paths or lines a message names."""


def _first(items: Sequence[Any]) -> str:
    shown = ", ".join(map(str, items[:SHOWN]))
    return shown + (", …" if len(items) > SHOWN else "")


class UnreadableImageError(UserError):
    """An image file that is truncated or not an image; the message names the file."""


IMAGE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
"""What PIL raises on a file it cannot decode."""


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def check_image(path: Path) -> str | None:
    """Decode ``path`` (JPEGs at reduced scale, which still reads every byte); ``None`` or why it failed."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (64, 64))
            image.load()
    except IMAGE_ERRORS as error:
        return _describe(error)
    return None


def header_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` from the image file's header (EXIF orientation not applied, as decoding does not);
    ``(0, 0)`` if it cannot be read."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except IMAGE_ERRORS:
        return 0, 0
    return height, width


def stored_shapes(files: Sequence[Path], shape: Callable[[int, int], tuple[int, int]]) -> np.ndarray:
    """``(len(files), 2)``: ``shape`` of each file's header size; ``(0, 0)`` for an unreadable header."""
    sizes = [header_size(file) for file in files]
    return np.array([shape(*size) if min(size) > 0 else (0, 0) for size in sizes], dtype=np.int64)


@dataclass(frozen=True)
class CachedReads:
    """A dataset's images in the decoded-image cache: item ``i`` is slot ``slots[i]`` of ``cache``, holding
    the decoded image after ``prepare`` (the fixed part of the transform)."""

    cache: ImageCache
    slots: np.ndarray
    prepare: Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class ImageList:
    """One parsed list file: ``paths`` (N) and ``labels`` ``(N, C)`` uint8 0/1, ``lines`` (N) 1-based."""

    file: Path
    paths: list[str]
    labels: np.ndarray
    lines: np.ndarray

    def subset(self, keep: np.ndarray) -> ImageList:
        """The entries where the boolean mask ``keep`` ``(N,)`` is true, in order."""
        positions = np.flatnonzero(keep)
        return ImageList(
            self.file, [self.paths[i] for i in positions], self.labels[positions], self.lines[positions]
        )


def read_image_list(file: str | Path, num_classes: int, dataset: str = "dataset") -> ImageList:
    """Parse a list file and check that every line has ``num_classes`` labels, each 0 or 1.

    Raises:
        UserError: the file is missing or empty, or a line is malformed (the message names the lines).
    """
    file = Path(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{dataset}: the list file {file} does not exist.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{dataset}: cannot read the list file {file} ({error}).") from None
    paths, rows, lines, wrong_count, wrong_value = [], [], [], [], []
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        row = "".join(tokens[1:])
        if len(tokens) - 1 != num_classes:
            wrong_count.append((number, len(tokens) - 1))
        elif len(row) != num_classes or set(row) - {"0", "1"}:
            wrong_value.append(number)
        paths.append(tokens[0])
        rows.append(row)
        lines.append(number)
    if not paths:
        raise UserError(f"{dataset}: the list file {file} lists no images.")
    if wrong_count:
        counts = {count for _, count in wrong_count}
        if len(wrong_count) == len(paths) and len(counts) == 1:
            raise UserError(
                f"{dataset}: every line of {file} has {counts.pop()} labels, but {dataset} has "
                f"{num_classes}: is it a list of another dataset?"
            )
        raise UserError(
            f"{dataset}: {len(wrong_count)} lines of {file} do not have {num_classes} labels (the dataset's "
            f"count; format: `path 0 1 0 …`): "
            + _first([f"line {number} has {count}" for number, count in wrong_count])
        )
    if wrong_value:
        raise UserError(
            f"{dataset}: labels must be 0 or 1, but {len(wrong_value)} lines of {file} hold other values: "
            f"lines {_first(wrong_value)}"
        )
    labels = np.frombuffer("".join(rows).encode("ascii"), dtype=np.uint8).reshape(
        len(rows), num_classes
    ) - ord("0")
    return ImageList(file, paths, labels, np.asarray(lines))


class ImageListDataset(Dataset):
    """Images read from disk on access.

    Args:
        root: folder the paths are relative to.
        paths: image paths, relative to ``root`` or absolute.
        labels: ``(N, num_classes)`` float32 multi-hot.
        transform: the decoded image → the item's image; ``None``: the decoded image as it is.
        skip_unreadable: return ``None`` (with a warning) for an image that cannot be decoded instead of
            raising; :func:`collate_readable` then leaves it out of its batch.
        read: ``uint8``: decode with :func:`~hashbench.data.transforms.read_rgb` to a uint8 ``(3, H, W)``
            tensor; ``pil``: a PIL RGB image; ``nvjpeg``: a JPEG's file contents as a 1-D uint8 tensor
            (decoded on the GPU later), other formats decoded as with ``uint8``.
        cached: with ``read="uint8"``, the decoded-image cache: an image is decoded and prepared once,
            then read from the cache; ``transform`` is then the part that runs on every read.
    """

    def __init__(
        self,
        root: Path,
        paths: Sequence[str],
        labels: Tensor,
        transform: Callable[[Any], Tensor] | None,
        skip_unreadable: bool = False,
        read: Pipeline = "uint8",
        cached: CachedReads | None = None,
    ) -> None:
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} paths but {len(labels)} label rows")
        if cached is not None and (read != "uint8" or len(cached.slots) != len(paths)):
            raise ValueError("the image cache needs read='uint8' and a slot for each path")
        self.root = root
        self.paths = list(paths)
        self.labels = labels
        self.transform = transform
        self.skip_unreadable = skip_unreadable
        self.read = read
        self.cached = cached
        self.skipped = 0

    def __len__(self) -> int:
        return len(self.paths)

    def _load(self, path: Path) -> Any:
        if self.read == "pil":
            with Image.open(path) as file:
                return file.convert("RGB")
        if self.read == "nvjpeg":
            data = path.read_bytes()
            if is_jpeg(data):
                return torch.frombuffer(bytearray(data), dtype=torch.uint8)
        return read_rgb(path)

    def __getitem__(self, index: int) -> RetrievalItem | None:
        image = None if self.cached is None else self.cached.cache.get(int(self.cached.slots[index]))
        if image is None:
            image = self._decoded(index)
            if image is None:
                return None
        return (image if self.transform is None else self.transform(image)), self.labels[index], index

    def _decoded(self, index: int) -> Any:
        """The item's image read from its file (and prepared and stored, with the cache); ``None`` for an
        unreadable image under ``skip_unreadable``."""
        path = self.root / self.paths[index]
        try:
            image = self._load(path)
        except IMAGE_ERRORS as error:
            if not self.skip_unreadable:
                raise UnreadableImageError(
                    f"cannot read image {path} ({_describe(error)}). Replace or remove the file, or set "
                    "`bad_images: skip` in the data's init_args to leave unreadable images out."
                ) from None
            self.skipped += 1
            warnings.warn(
                f"skipped the unreadable image {path} ({_describe(error)}); {self.skipped} skipped by this "
                "loader process so far",
                stacklevel=1,
            )
            return None
        if self.cached is None:
            return image
        prepared = self.cached.prepare(image)
        self.cached.cache.put(int(self.cached.slots[index]), prepared)
        return prepared


def _readable(batch: list[RetrievalItem | None]) -> list[RetrievalItem]:
    items = [item for item in batch if item is not None]
    if not items:
        raise UserError(
            f"all {len(batch)} images of a batch are unreadable; the data is broken. "
            "Set `verify_images: true` in the data's init_args to list the bad files before training."
        )
    return items


def collate_readable(batch: list[RetrievalItem | None]) -> tuple[Tensor, Tensor, Tensor]:
    """Collate the items of a batch that could be read (``None`` marks an unreadable image):
    ``((B, C, H, W) images, (B, num_classes) labels, (B,) indices)``.

    The images are stacked channels-last: decoding, resizing, cropping and flipping all leave an image
    ``(C, H, W)`` with its channels innermost in memory, so stacking them so is a plain copy (a
    channels-first stack transposes every pixel, about twice as slow), and a channels-last model
    (``model.channels_last``) takes the batch as it comes."""
    items = _readable(batch)
    images, labels, indices = default_collate(
        [(image.permute(1, 2, 0), labels, index) for image, labels, index in items]
    )
    return images.permute(0, 3, 1, 2), labels, indices


def collate_encoded(batch: list[RetrievalItem | None]) -> tuple[list[Tensor], Tensor, Tensor]:
    """Like :func:`collate_readable`, but the images (file contents or decoded images of different sizes)
    stay a list: ``(list of B tensors, (B, C) labels, (B,) indices)``."""
    items = _readable(batch)
    return (
        [image for image, _, _ in items],
        torch.stack([labels for _, labels, _ in items]),
        torch.as_tensor([index for _, _, index in items]),
    )


def _pool(lists: dict[str, ImageList]) -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
    """Pool the lists' images by path: the paths (database first, in list order), their ``(N, C)``
    labels (from a path's first list) and each list's positions into the pool."""
    index: dict[str, int] = {}
    paths: list[str] = []
    rows: list[np.ndarray] = []
    positions: dict[str, np.ndarray] = {}
    for role in ("database", "query", "train", "val_query"):
        if role not in lists:
            continue
        image_list = lists[role]
        for path, row in zip(image_list.paths, image_list.labels, strict=True):
            if path not in index:
                index[path] = len(paths)
                paths.append(path)
                rows.append(row)
        positions[role] = np.asarray([index[path] for path in image_list.paths], dtype=np.int64)
    return paths, np.stack(rows), positions


class ListFileDataModule(RetrievalDataModule):
    """A retrieval dataset given by list files under (or beside) a data root.

    Validation: the validation queries are the images of ``val.txt`` (as ``hashbench prepare`` writes
    it), which must be database images that are neither test queries nor training images; without
    that file they are drawn at setup with ``seed`` from ``database.txt`` minus the training and test
    images (matched by path), ``val_queries`` of them, and setup says so. The validation database is
    the database without them; the test database is ``database.txt`` as it is.

    On :meth:`setup` the lists are parsed and checked (same label count on every line, equal to
    ``num_classes``; single-label datasets have exactly one positive a line) and every listed image
    is checked to exist — all problems are reported together, before training starts.

    Bad-data policies:

    * ``bad_images="error"``: missing images stop setup with their count and the first paths; an
      image that cannot be decoded stops the run when it is loaded, naming the file.
      ``"skip"``: missing images are left out of their split with one warning (count and first
      paths); an undecodable image met during a run is left out of its batch with a warning.
      ``verify_images=True`` decodes every image at setup (slow: minutes for 100k+ images) so that
      undecodable files are reported, or skipped, with the missing ones before training.
    * ``empty_labels``: a row with no positive label can never be relevant to anything.
      ``"drop"`` (default) leaves such images out with a warning, as the papers' protocols do;
      ``"keep"`` keeps them with a warning (a query scores AP 0); ``"error"`` stops setup.

    Args:
        root: data root the list paths are relative to.
        num_classes: labels per line.
        multi_label: whether an image may carry several labels.
        top_k: K of mAP@K; ``None`` = the whole database.
        train_list: training list file, relative to ``root`` or absolute.
        query_list: query list file, relative to ``root`` or absolute.
        database_list: database list file, relative to ``root`` or absolute.
        val_list: validation query list, relative to ``root`` or absolute; when the default ``val.txt``
            does not exist the validation queries are drawn at setup.
        val_queries: validation queries to draw when there is no validation list: per class for
            single-label data, in total for multi-label data; ``None`` = as many as the test queries
            (their mean count a class for single-label data).
        image_size: side of the square input in pixels.
        resize_size: shorter side before cropping; ``None`` = ``image_size · 256/224``.
        horizontal_flip: random horizontal flips of training images.
        pipeline: ``uint8`` (default): the workers decode with torchvision.io and resize, crop and flip
            uint8 tensors; batches travel as uint8 and are normalised on the device. ``pil``: the former
            PIL path, float transforms in the workers (for comparison). ``nvjpeg`` (CUDA only): the
            workers read the files' bytes and the GPU decodes, resizes and crops the batch's JPEGs
            (other formats are decoded in the workers; an undecodable JPEG stops the run on the device
            whatever ``bad_images`` says).
        image_cache: a folder for the decoded-image cache (``pipeline: uint8``): each image is decoded
            and resized once, in the epoch that first reads it, and read from the cache afterwards (crops
            and flips still drawn on every read). ``None``: decode on every read. 262 KB a 4:3 training
            image at 224 px and 150 KB an evaluation image; setup says how much and stops if the disk has
            not that much free. The cache is keyed on the images' paths, sizes and modification times
            and the transform, so a changed list or image gets a fresh file.
        image_cache_splits: which images it keeps: ``train``, ``evaluation`` (queries and database).
        bad_images: ``error`` or ``skip`` missing and undecodable images.
        verify_images: decode every image at setup.
        empty_labels: ``drop``, ``keep`` or ``error`` on label rows with no positive.
        **kwargs: loader options and ``seed`` / ``unseen_classes`` of :class:`RetrievalDataModule`.
    """

    dataset_name = "list-file dataset"
    prepare_command: str | None = None
    """The ``hashbench prepare`` subcommand that builds this dataset's lists, if any."""
    default_val_list = "val.txt"

    def __init__(
        self,
        root: str,
        num_classes: int,
        multi_label: bool = True,
        top_k: int | None = None,
        train_list: str = "train.txt",
        query_list: str = "test.txt",
        database_list: str = "database.txt",
        val_list: str = "val.txt",
        val_queries: int | None = None,
        image_size: int = 224,
        resize_size: int | None = None,
        horizontal_flip: bool = True,
        pipeline: Pipeline = "uint8",
        image_cache: str | None = None,
        image_cache_splits: Sequence[CacheSplit] = CACHE_SPLITS,
        bad_images: BadImagePolicy = "error",
        verify_images: bool = False,
        empty_labels: EmptyLabelPolicy = "drop",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.collate_fn = collate_readable  # leaves undecodable images out of their batch (bad_images: skip)
        if num_classes < 1:
            raise UserError(f"{self.dataset_name}: num_classes must be >= 1, got {num_classes}")
        if top_k is not None and top_k < 1:
            raise UserError(f"{self.dataset_name}: top_k must be >= 1 or null (whole database), got {top_k}")
        if bad_images not in ("error", "skip"):
            raise UserError(f"{self.dataset_name}: bad_images must be 'error' or 'skip', got {bad_images!r}")
        if empty_labels not in ("drop", "keep", "error"):
            raise UserError(
                f"{self.dataset_name}: empty_labels must be 'drop', 'keep' or 'error', got {empty_labels!r}"
            )
        self.root = root
        self.num_classes = num_classes
        self.multi_label = multi_label
        self.top_k = top_k
        self.list_files = {"train": train_list, "query": query_list, "database": database_list}
        self.val_list = val_list
        self.val_queries = val_queries
        if pipeline not in PIPELINES:
            raise UserError(
                f"{self.dataset_name}: pipeline must be one of {', '.join(PIPELINES)}, got {pipeline!r}"
            )
        self.pipeline = pipeline
        self.train_transform: Callable[[Any], Tensor] | None = None
        self.eval_transform: Callable[[Any], Tensor] | None = None
        sizes = (image_size, resize_size, horizontal_flip)
        if pipeline == "pil":
            self.train_transform, self.eval_transform = image_transforms(*sizes)
        elif pipeline == "uint8":
            self.train_transform, self.eval_transform = uint8_transforms(*sizes)
            self.batch_transform = normalize_batch
        else:
            require_cuda(f"{self.dataset_name}: pipeline: nvjpeg")
            self.batch_transform = DecodeBatch(*sizes)
            self.collate_fn = collate_encoded
        self.image_cache = image_cache
        self.cached_stages = self._cached_stages(image_cache, image_cache_splits, sizes)
        self.bad_images = bad_images
        self.verify_images = verify_images
        self.empty_labels = empty_labels
        self.lists: dict[str, ImageList] | None = None

    def _how_to_get(self, root: Path) -> str:
        if self.prepare_command is None:
            return "Put the images and the list files train.txt, test.txt, database.txt (and val.txt) there."
        return (
            f"Put the images there and build the list files with `hashbench prepare {self.prepare_command} "
            f"--root {root}` (see `hashbench prepare {self.prepare_command} --help`), or put your own "
            "train.txt, test.txt and database.txt (and val.txt) there."
        )

    def setup(self, stage: str | None = None) -> None:
        if self.lists is not None:
            return
        root = Path(self.root).expanduser()
        if not root.is_dir():
            raise UserError(
                f"{self.dataset_name}: the data root {root} does not exist. {self._how_to_get(root)}"
            )
        lists = {}
        for role, name in self.list_files.items():
            file = root / Path(name).expanduser()
            if not file.is_file():
                raise UserError(
                    f"{self.dataset_name}: the list file {file} does not exist. {self._how_to_get(root)}"
                )
            lists[role] = self._without_empty_rows(read_image_list(file, self.num_classes, self.dataset_name))
        val_file = root / Path(self.val_list).expanduser()
        if val_file.is_file():
            if self.val_queries is not None:
                raise UserError(
                    f"{self.dataset_name}: val_queries sets how many validation queries to draw, but they "
                    f"are given by {val_file}; remove val_queries, or that file to draw them."
                )
            lists["val_query"] = self._without_empty_rows(
                read_image_list(val_file, self.num_classes, self.dataset_name)
            )
        elif self.val_list != self.default_val_list:
            raise UserError(f"{self.dataset_name}: the validation list {val_file} does not exist.")
        if not self.multi_label:
            self._check_single_label(lists)
        lists = self._without_bad_images(root, lists)
        for image_list in lists.values():
            if not image_list.paths:
                raise UserError(f"{self.dataset_name}: no images of {image_list.file} are left to use.")
        paths, labels, published = _pool(lists)
        if "val_query" not in published:
            rank_zero_info(self._carving_note(val_file))
        split = self.final_split(
            labels,
            {role: published[role] for role in ("train", "query", "database")},
            self._val_size(labels[published["query"]]),
            val_query=published.get("val_query"),
        )
        skip = self.bad_images == "skip"
        float_labels = torch.as_tensor(labels, dtype=torch.float32)

        caches = self._caches(root, paths, split)

        def dataset(positions: np.ndarray, train: bool) -> ImageListDataset:
            transform = self.train_transform if train else self.eval_transform
            kind: CacheSplit = "train" if train else "evaluation"
            cached = None
            if kind in caches:
                cache, slot_of = caches[kind]
                stages = self.cached_stages[kind]
                cached = CachedReads(cache, slot_of[positions], stages.fixed)
                transform = stages.random
            return ImageListDataset(
                root,
                [paths[i] for i in positions],
                float_labels[torch.as_tensor(positions)],
                transform,
                skip_unreadable=skip,
                read=self.pipeline,
                cached=cached,
            )

        self.set_datasets(dataset, split)
        self.lists = lists

    def _cached_stages(
        self,
        image_cache: str | None,
        splits: Sequence[CacheSplit],
        sizes: tuple[int, int | None, bool],
    ) -> dict[CacheSplit, CachedStages]:
        """The transforms split for the cache, by the splits it keeps; empty without ``image_cache``."""
        if image_cache is None:
            return {}
        if self.pipeline != "uint8":
            raise UserError(
                f"{self.dataset_name}: image_cache keeps images decoded by the uint8 pipeline, but pipeline "
                f"is {self.pipeline!r}. Set pipeline: uint8, or remove image_cache."
            )
        unknown = [split for split in splits if split not in CACHE_SPLITS]
        if unknown or not splits:
            raise UserError(
                f"{self.dataset_name}: image_cache_splits must list one or both of "
                f"{', '.join(CACHE_SPLITS)}, got {list(splits)}"
            )
        train, evaluation = cached_uint8_transforms(*sizes)
        stages = {"train": train, "evaluation": evaluation}
        return {split: stages[split] for split in splits}

    def _caches(
        self, root: Path, paths: list[str], split: dict[str, np.ndarray]
    ) -> dict[CacheSplit, tuple[ImageCache, np.ndarray]]:
        """Each kept split's cache over the pooled images its datasets read, with the slot of each pooled
        position (``-1``: not in that cache)."""
        if self.image_cache is None:
            return {}
        folder = Path(self.image_cache).expanduser()
        caches: dict[CacheSplit, tuple[ImageCache, np.ndarray]] = {}
        for kind, stages in self.cached_stages.items():
            roles = ["train"] if kind == "train" else [role for role in split if role != "train"]
            positions = np.unique(np.concatenate([split[role] for role in roles]))
            files = [root / paths[i] for i in positions]
            description = f"{kind}: {stages.fixed!r}, torchvision {torchvision.__version__}"
            cache = ImageCache(folder, kind, description, files, partial(stored_shapes, files, stages.shape))
            slot_of = np.full(len(paths), -1, dtype=np.int64)
            slot_of[positions] = np.arange(len(positions))
            caches[kind] = (cache, slot_of)
            rank_zero_info(
                f"{self.dataset_name}: image cache of the {kind} images, {cache.file}: {cache.filled():,} of "
                f"{cache.count:,} stored, {cache.nbytes() / 1e6:,.0f} MB once filled"
            )
        return caches

    def _val_size(self, query_labels: np.ndarray) -> int:
        """``val_queries``, or as many as the test queries (a class, for single-label data; those of
        unseen classes only under ``unseen_classes``); ``query_labels`` ``(Q, C)``."""
        if self.val_queries is not None:
            return self.val_queries
        if self.unseen_classes is not None:
            unseen = draw_unseen_classes(self.unseen_classes, self.num_classes, self.seed)
            query_labels = query_labels[
                restrict_to_unseen(query_labels, {"query": np.arange(len(query_labels))}, unseen)["query"]
            ]
        if self.multi_label:
            return len(query_labels)
        return max(1, round(len(query_labels) / len(np.unique(query_labels.argmax(axis=1)))))

    def _carving_note(self, val_file: Path) -> str:
        how_many = (
            f"{self.val_queries} {'a class' if not self.multi_label else 'in total'}"
            if self.val_queries is not None
            else "as many as the test queries"
        )
        return (
            f"{self.dataset_name}: no validation list {val_file}: drawing the validation queries "
            f"({how_many}) with seed {self.seed} from the database list minus its training and test images "
            "(matched by path). To fix them, write val.txt with `hashbench prepare` or put your own there."
        )

    def _eval_dataset(self, role: EvalRole) -> ImageListDataset:
        dataset = self.query_dataset if role == "query" else self.database_dataset
        assert isinstance(dataset, ImageListDataset)
        return dataset

    def item_id(self, role: EvalRole, position: int) -> str:
        """The image's path as its list file gives it."""
        return self._eval_dataset(role).paths[position]

    def picture(self, role: EvalRole, position: int) -> Image.Image:
        """The image file, in RGB."""
        dataset = self._eval_dataset(role)
        path = dataset.root / dataset.paths[position]
        try:
            with Image.open(path) as file:
                return file.convert("RGB")
        except IMAGE_ERRORS as error:
            raise UnreadableImageError(f"cannot read image {path} ({_describe(error)})") from None

    def _without_empty_rows(self, image_list: ImageList) -> ImageList:
        empty = image_list.labels.sum(axis=1) == 0
        if not empty.any():
            return image_list
        message = (
            f"{self.dataset_name}: {empty.sum()} of {len(empty)} images in {image_list.file} have no "
            f"positive label and can never be relevant (lines {_first(image_list.lines[empty].tolist())})"
        )
        if self.empty_labels == "error":
            raise UserError(
                f"{message}. Fix the list, or set `empty_labels: drop` (or `keep`) in the data's init_args."
            )
        if self.empty_labels == "keep":
            rank_zero_warn(f"{message}; kept (empty_labels: keep): as queries they score AP 0.")
            return image_list
        rank_zero_warn(f"{message}; left out (empty_labels: drop).")
        return image_list.subset(~empty)

    def _check_single_label(self, lists: dict[str, ImageList]) -> None:
        for image_list in lists.values():
            several = image_list.labels.sum(axis=1) > 1
            if several.any():
                raise UserError(
                    f"{self.dataset_name} is single-label, but {several.sum()} lines of {image_list.file} "
                    f"have several positive labels: lines {_first(image_list.lines[several].tolist())}"
                )

    def _without_bad_images(self, root: Path, lists: dict[str, ImageList]) -> dict[str, ImageList]:
        """Check that each listed image exists (and decodes, with ``verify_images``); apply ``bad_images``."""
        unique = sorted({path for image_list in lists.values() for path in image_list.paths})
        missing = [path for path in unique if not (root / path).is_file()]
        undecodable: dict[str, str] = {}
        if self.verify_images:
            present = sorted(set(unique) - set(missing))
            with ThreadPoolExecutor() as pool:
                reasons = pool.map(check_image, [root / path for path in present])
                undecodable = {
                    path: reason for path, reason in zip(present, reasons, strict=True) if reason is not None
                }
        if not missing and not undecodable:
            return lists
        bad = set(missing) | set(undecodable)
        kept = {
            role: image_list.subset(np.array([p not in bad for p in image_list.paths]))
            for role, image_list in lists.items()
        }
        per_list = ", ".join(
            f"{lists[role].file.name}: {len(lists[role].paths) - len(kept[role].paths)}" for role in lists
        )
        parts = []
        if missing:
            parts.append(
                f"{len(missing)} of {len(unique)} listed images are missing under {root} ({_first(missing)})"
            )
        if undecodable:
            parts.append(
                f"{len(undecodable)} cannot be decoded "
                f"({_first([f'{path}: {reason}' for path, reason in undecodable.items()])})"
            )
        message = f"{self.dataset_name}: {' and '.join(parts)}; entries per list: {per_list}"
        if self.bad_images == "error":
            raise UserError(
                f"{message}. Check the data root and the list files, or set `bad_images: skip` in the data's "
                "init_args to leave these images out."
            )
        rank_zero_warn(f"{message}; left out (bad_images: skip).")
        return kept


class NUSWIDE(ListFileDataModule):
    """NUS-WIDE with the 21 most frequent concepts, or all 81 (multi-label); mAP@5000 by default.

    Protocol: images with at least one of the concepts; 5,000 queries, the rest database,
    10,000 training images sampled from the database, 5,000 validation queries from the database minus
    the training images (``hashbench prepare nuswide [--num_concepts 81]`` builds it).

    Args:
        root: data root the list paths are relative to.
        num_concepts: 21 (the usual protocol) or 81 (every concept); the lists must have as many columns.
        top_k: K of mAP@K.
        **kwargs: the options of :class:`ListFileDataModule` (list files, validation, transforms,
            policies, loader).
    """

    dataset_name = "NUS-WIDE"
    prepare_command = "nuswide"

    def __init__(
        self, root: str, num_concepts: Literal[21, 81] = 21, top_k: int | None = 5000, **kwargs: Any
    ) -> None:
        if num_concepts not in (21, 81):
            raise UserError(f"NUS-WIDE: num_concepts must be 21 or 81, got {num_concepts}")
        super().__init__(root, num_classes=num_concepts, multi_label=True, top_k=top_k, **kwargs)


class COCO(ListFileDataModule):
    """MS-COCO 2014 with its 80 categories (multi-label); mAP@5000 by default.

    Protocol: train2014 + val2014 images with at least one category (about 122k); 5,000 queries, the
    rest database, 10,000 training images sampled from the database (``hashbench prepare coco``).

    Args:
        root: data root the list paths are relative to.
        top_k: K of mAP@K.
        **kwargs: the options of :class:`ListFileDataModule` (list files, transforms, policies, loader).
    """

    dataset_name = "MS-COCO"
    prepare_command = "coco"

    def __init__(self, root: str, top_k: int | None = 5000, **kwargs: Any) -> None:
        super().__init__(root, num_classes=80, multi_label=True, top_k=top_k, **kwargs)


class ImageNet100(ListFileDataModule):
    """ImageNet100: 100 ImageNet-1k classes (single-label); mAP@1000 by default.

    Protocol: 130 training images a class sampled from ImageNet train (13,000), the 50 validation
    images a class as queries (5,000), the database = all training images of the 100 classes
    (about 128k) (``hashbench prepare imagenet100``).

    Args:
        root: data root the list paths are relative to.
        top_k: K of mAP@K.
        **kwargs: the options of :class:`ListFileDataModule` (list files, transforms, policies, loader).
    """

    dataset_name = "ImageNet100"
    prepare_command = "imagenet100"

    def __init__(self, root: str, top_k: int | None = 1000, **kwargs: Any) -> None:
        super().__init__(root, num_classes=100, multi_label=False, top_k=top_k, **kwargs)


class MIRFlickr(ListFileDataModule):
    """MIRFlickr-25K with its 24 potential labels (multi-label); mAP over the whole database by default.

    Protocol: images with at least one label; 2,000 queries, the rest database, 5,000 training images
    and 2,000 validation queries drawn from the database (``hashbench prepare mirflickr`` builds it).

    Args:
        root: data root the list paths are relative to.
        top_k: K of mAP@K; ``None`` = the whole database.
        **kwargs: the options of :class:`ListFileDataModule` (list files, validation, transforms,
            policies, loader).
    """

    dataset_name = "MIRFlickr-25K"
    prepare_command = "mirflickr"

    def __init__(self, root: str, top_k: int | None = None, **kwargs: Any) -> None:
        super().__init__(root, num_classes=24, multi_label=True, top_k=top_k, **kwargs)


class VOC(ListFileDataModule):
    """PASCAL VOC 2012 with its 20 classes (multi-label); mAP over the whole database by default.

    Protocol: trainval images with at least one class; 1,000 queries and 4,000 training images drawn
    apart, the rest database (training images left out of it), 1,000 validation queries drawn from the
    database (``hashbench prepare voc`` builds it).

    Args:
        root: data root the list paths are relative to.
        top_k: K of mAP@K; ``None`` = the whole database.
        **kwargs: the options of :class:`ListFileDataModule` (list files, validation, transforms,
            policies, loader).
    """

    dataset_name = "VOC 2012"
    prepare_command = "voc"

    def __init__(self, root: str, top_k: int | None = None, **kwargs: Any) -> None:
        super().__init__(root, num_classes=20, multi_label=True, top_k=top_k, **kwargs)
