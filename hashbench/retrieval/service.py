"""What the commands and the search page share: a run's index, queries from files or the query split,
and pictures of indexed items."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hashbench.errors import UserError
from hashbench.retrieval.codes import DEFAULT_INDEX, CodeIndex
from hashbench.retrieval.encoder import Encoder, open_image
from hashbench.retrieval.pictures import Cell, relevance
from hashbench.retrieval.retriever import Retriever, SearchResult

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
INDEX_FOLDER = "index"


@dataclass
class Query:
    """A query: its name, picture, packed code ``(ceil(bits/8),)`` and labels ``(C,)`` (``None``: unknown)."""

    name: str
    picture: Image.Image
    code: np.ndarray
    labels: np.ndarray | None = None


def list_images(source: Path) -> tuple[Path, list[str], np.ndarray | None]:
    """``(root, paths relative to root, labels or None)`` of a folder of images (searched recursively,
    sorted) or of a list file (``path [0 1 0 …]`` a line, paths relative to the file's folder)."""
    source = source.expanduser()
    if source.is_dir():
        paths = sorted(
            str(path.relative_to(source))
            for path in source.rglob("*")
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
        )
        if not paths:
            raise UserError(f"the folder {source} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return source, paths, None
    if not source.is_file():
        raise UserError(f"{source} is neither a folder of images nor a list file")
    rows = [line.split() for line in source.read_text().splitlines() if line.strip()]
    if not rows:
        raise UserError(f"the list file {source} lists no images")
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise UserError(f"the lines of {source} differ in length: each is `path` or `path 0 1 0 …` alike")
    if widths == {1}:
        return source.parent, [row[0] for row in rows], None
    try:
        labels = np.asarray([[int(v) for v in row[1:]] for row in rows], dtype=np.uint8)
    except ValueError:
        raise UserError(f"the labels in {source} must be 0 or 1 (`path 0 1 0 …` a line)") from None
    return source.parent, [row[0] for row in rows], labels


class RunIndex:
    """A run's model with its index in ``<run>/index`` (or ``folder``): search, and pictures of results.

    Raises:
        UserError: not a run folder, no index yet, or an index built with another model.
    """

    def __init__(self, run_dir: Path, folder: Path | None = None) -> None:
        self.encoder = Encoder.from_run(run_dir)
        folder = folder or Path(run_dir) / INDEX_FOLDER
        if not (folder / "index.json").is_file():
            raise UserError(f"{folder} holds no index yet: build it with `hashbench index {run_dir}`")
        self.retriever = Retriever.load(folder, self.encoder)
        self.folder = folder

    @cached_property
    def _split_positions(self) -> dict[str, dict[str, int]]:
        datamodule = self.encoder.set_up()
        datasets = {"query": datamodule.query_dataset, "database": datamodule.database_dataset}
        return {
            role: {datamodule.item_id(role, p): p for p in range(len(dataset))}  # type: ignore[arg-type]
            for role, dataset in datasets.items()
        }

    def query_size(self) -> int:
        return len(self._split_positions["query"])

    def split_query(self, position: int) -> Query:
        """Item ``position`` of the run's query split, with its labels."""
        datamodule = self.encoder.set_up()
        if not 0 <= position < self.query_size():
            raise UserError(f"the query split has {self.query_size()} items, 0 to {self.query_size() - 1}")
        inputs, labels, _ = datamodule.query_dataset[position]
        code = self.encoder.encode_inputs(datamodule.model_input(inputs[None]))[0]
        name = datamodule.item_id("query", position)
        return Query(name, datamodule.picture("query", position), code, (labels != 0).to(torch.uint8).numpy())

    def image_query(self, picture: Image.Image, name: str) -> Query:
        return Query(name, picture, self.encoder.encode([picture])[0])

    def query(self, image: Path) -> Query:
        """An image file, or an item of the run's query split by its id (e.g. ``query/3`` for Digits)."""
        if image.exists():
            return self.image_query(open_image(image), str(image))
        position = self._split_positions["query"].get(str(image))
        if position is None:
            hint = next(iter(self._split_positions["query"]), "")
            raise UserError(f"{image} is neither an image file nor an item of the query split (e.g. {hint})")
        return self.split_query(position)

    def search(self, queries: list[Query], k: int) -> SearchResult:
        return self.retriever.search(codes=np.stack([query.code for query in queries]), k=k)

    def picture(self, position: int) -> Image.Image:
        """The indexed item at ``position`` (insertion order) as a picture."""
        source = self.retriever.source
        item = self.retriever.index.ids[position]
        if source.get("kind") == "split":
            role = source.get("role", "database")
            return self.encoder.set_up().picture(role, self._split_positions[role][item])
        return open_image(Path(source.get("root", ".")) / item)

    def rows(self, queries: list[Query], result: SearchResult) -> list[tuple[Cell, list[Cell]]]:
        """The result grid's rows: each query and its results, distance under each, relevance frames."""
        rows = []
        for q, query in enumerate(queries):
            cells = [
                Cell(
                    self.picture(int(position)),
                    f"d = {distance}",
                    relevance(query.labels, None if result.labels is None else result.labels[q, rank]),
                )
                for rank, (position, distance) in enumerate(
                    zip(result.positions[q], result.distances[q], strict=True)
                )
                if position >= 0
            ]
            rows.append((Cell(query.picture, query.name[-20:]), cells))
        return rows


def build_index(
    run_dir: Path,
    images: Path | None,
    factory: str = DEFAULT_INDEX,
    progress: Callable[[int], Callable[[int], None]] | None = None,
) -> Retriever:
    """Encode the run's database split (or the images of a folder or list file) into a new index.

    ``progress(total)`` makes the callback that gets the number of images done after each batch.
    """
    encoder = Encoder.from_run(run_dir)
    retriever = Retriever(encoder, CodeIndex(encoder.bits, factory))
    if images is None:
        datamodule = encoder.set_up()
        total = len(datamodule.database_dataset)  # type: ignore[arg-type]
        codes, positions, split_labels = encoder.encode_split(
            "database", progress(total) if progress else None
        )
        ids = [datamodule.item_id("database", int(p)) for p in positions]
        retriever.source = {"kind": "split", "role": "database", "dataset": type(datamodule).__name__}
        retriever.add(codes=codes, ids=ids, labels=split_labels)
    else:
        root, paths, file_labels = list_images(images)
        codes = encoder.encode(
            [root / path for path in paths], progress=progress(len(paths)) if progress else None
        )
        retriever.source = {"kind": "files", "root": str(root.resolve())}
        retriever.add(codes=codes, ids=paths, labels=file_labels)
    return retriever


def label_names(labels: np.ndarray | None) -> list[int]:
    """Class indices of a multi-hot row (empty when unknown)."""
    return [] if labels is None else np.flatnonzero(labels).tolist()
