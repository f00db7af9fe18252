"""``hashbench prepare {cifar10,coco,nuswide,imagenet100,mirflickr,voc} …``: the papers' splits from the
official files.

For the list-file datasets it writes ``train.txt``, ``test.txt`` (queries), ``database.txt`` and
``val.txt`` (validation queries: database images that are neither test queries nor training images)
(``path 0 1 0 …``, paths relative to the data root), ``classes.txt`` (the label of each column) and
``prepare.json`` (the command, seed, sources and counts), so that a run can be audited. For CIFAR-10 it
writes the query / train / database / validation positions as JSON. Every split is seeded: the same seed
and files give the same split.

Each ``prepare_<dataset>(...)`` function does the work with typed arguments; the command line
(:mod:`hashbench.cli.commands`) builds its options from their signatures and docstrings. This module imports
torch and torchvision only when a download or CIFAR-10 needs them, so ``hashbench prepare --help`` is quick.
"""

from __future__ import annotations

import json
import re
import urllib.error
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hashbench.data.protocols import Protocol
from hashbench.data.splits import finish_split
from hashbench.errors import UserError

LIST_FILES = {"train": "train.txt", "query": "test.txt", "database": "database.txt", "val_query": "val.txt"}
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
COCO_URL = "https://cocodataset.org/#download"
NUSWIDE_URL = "https://lms.comp.nus.edu.sg/wp-content/uploads/2019/research/nuswide/NUS-WIDE.html"
MIRFLICKR_PAGE = "https://press.liacs.nl/mirflickr/mirdownload.html"
MIRFLICKR_FILES = (
    "http://press.liacs.nl/mirflickr/mirflickr25k.v3b/mirflickr25k.zip",
    "http://press.liacs.nl/mirflickr/mirflickr25k.v3b/mirflickr25k_annotations_v080.zip",
)
MIRFLICKR_LABELS = (  # noqa: SIM905
    "animals baby bird car clouds dog female flower food indoor lake male night people plant_life portrait "
    "river sea sky structures sunset transport tree water"
).split()
"""The 24 "potential" labels of ``mirflickr25k_annotations_v080`` (one ``<label>.txt`` each)."""
VOC_URL = "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/"
VOC_CLASSES = (  # noqa: SIM905
    "aeroplane bicycle bird boat bottle bus car cat chair cow diningtable dog horse motorbike person "
    "pottedplant sheep sofa train tvmonitor"
).split()
"""The 20 PASCAL VOC classes, in the order of the devkit."""


# ------------------------------------------------------------------------------------------- helpers
def split_query_database(
    num_items: int, num_query: int, num_train: int, seed: int, train_in_database: bool = True
) -> dict[str, np.ndarray]:
    """Seeded split of ``num_items`` positions: ``num_query`` queries, the rest database, ``num_train``
    training items drawn from the database (``train_in_database=False``: drawn beside the queries and
    left out of the database). Each returned array is sorted ascending."""
    if num_query < 1 or num_train < 1:
        raise UserError(f"--num_query and --num_train must be >= 1, got {num_query} and {num_train}")
    if num_query + num_train > num_items:
        raise UserError(
            f"only {num_items} images to split, fewer than --num_query {num_query} + --num_train "
            f"{num_train}; lower them"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(num_items)
    if not train_in_database:
        train, database = order[num_query : num_query + num_train], order[num_query + num_train :]
    else:
        database = order[num_query:]
        train = rng.choice(database, size=num_train, replace=False)
    return {"train": np.sort(train), "query": np.sort(order[:num_query]), "database": np.sort(database)}


def with_validation(
    labels: np.ndarray, split: dict[str, np.ndarray], size: int, per_class: bool, seed: int, dataset: str
) -> dict[str, np.ndarray]:
    """``split`` plus ``val_query``: ``size`` validation queries (a class, or in total) drawn with ``seed``
    from the database minus the training images and test queries, as the DataModules draw them."""
    return finish_split(labels, split, val_size=size, per_class=per_class, seed=seed, dataset=dataset)


def _existing_output(out: Path, names: Sequence[str], overwrite: bool) -> None:
    existing = [str(out / name) for name in names if (out / name).exists()]
    if existing and not overwrite:
        raise UserError(
            f"{', '.join(existing)} already exist; pass --overwrite to replace them, or choose --out."
        )


def _list_folders(
    root: Path, out: Path | None, overwrite: bool, dataset: str, how_to_get: str
) -> tuple[Path, Path]:
    """``(root, out)`` of a list-building command, refusing a missing root and outputs it would replace."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"{dataset}: the data root {root} does not exist. {how_to_get}")
    folder = Path(out or root).expanduser()
    _existing_output(folder, [*LIST_FILES.values(), "classes.txt", "prepare.json"], overwrite)
    return root, folder


def write_lists(
    out: Path,
    paths: Sequence[str],
    labels: np.ndarray,
    split: dict[str, np.ndarray],
    classes: Sequence[str],
    manifest: dict,
) -> None:
    """Write the four list files, ``classes.txt`` and ``prepare.json`` into ``out``.

    Args:
        out: output folder (created).
        paths: ``(N)`` image paths relative to the data root.
        labels: ``(N, C)`` 0/1.
        split: positions into ``paths`` for ``train``, ``query``, ``database`` and ``val_query``.
        classes: ``(C)`` class names, in column order.
        manifest: what produced the lists; the counts are added.
    """
    spaced = [path for path in paths if re.search(r"\s", path)]
    if spaced:
        raise UserError(
            f"image paths must not contain whitespace (the list format splits on it): {spaced[:5]}"
        )
    out.mkdir(parents=True, exist_ok=True)
    rows = [" ".join(row) for row in labels.astype(np.uint8).astype(str)]
    for role, name in LIST_FILES.items():
        (out / name).write_text("".join(f"{paths[i]} {rows[i]}\n" for i in split[role]))
    (out / "classes.txt").write_text("".join(f"{name}\n" for name in classes))
    manifest = {
        **manifest,
        "counts": {role: len(split[role]) for role in LIST_FILES} | manifest.get("counts", {}),
    }
    (out / "prepare.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _report(
    dataset: str, datamodule: str, root: Path, out: Path, split: dict[str, np.ndarray], notes: Sequence[str]
) -> None:
    counts = ", ".join(f"{len(split[role])} {role}" for role in LIST_FILES)
    print(f"{dataset}: wrote {counts} to {out}/{{train,test,database,val}}.txt (+ classes.txt, prepare.json)")
    for note in notes:
        print(f"  {note}")
    options = {
        "train": "train_list",
        "query": "query_list",
        "database": "database_list",
        "val_query": "val_list",
    }
    lists = (
        ""
        if out == root
        else "".join(f" --data.init_args.{options[role]} {out / name}" for role, name in LIST_FILES.items())
    )
    print(
        f"train with: hashbench fit --config CONFIG --data {datamodule} --data.init_args.root {root}{lists}"
    )


def _manifest(
    dataset: str, options: dict[str, Any], command: str | None, sources: list[str], classes: Sequence[str]
) -> dict:
    """What produced the lists: the command line (or ``None`` from Python), options, sources, classes."""

    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return {
        "dataset": dataset,
        "command": command,
        "options": {key: plain(value) for key, value in options.items() if key != "command"},
        "sources": sources,
        "classes": list(classes),
    }


def _drop_missing(root: Path, paths: list[str], labels: np.ndarray) -> tuple[list[str], np.ndarray, int]:
    keep = np.array([(root / path).is_file() for path in paths], dtype=bool)
    return [p for p, k in zip(paths, keep, strict=True) if k], labels[keep], int((~keep).sum())


def _load_json(path: Path, what: str, hint: str) -> dict:
    try:
        with path.open(encoding="utf-8") as file:
            return json.load(file)
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist. {hint}") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(
            f"cannot read {what} {path} ({type(error).__name__}: {error}); the file is corrupt. {hint}"
        ) from None


# -------------------------------------------------------------------------------------------- cifar10
def prepare_cifar10(
    root: Path = Path("data/cifar10"),
    *,
    protocol: Protocol = "paper",
    query_per_class: int = 100,
    train_per_class: int = 500,
    val_query_per_class: int = 100,
    seed: int = 0,
    out: Path | None = None,
    download: bool = False,
    overwrite: bool = False,
) -> Path:
    """CIFAR-10: the seeded split positions as JSON (optionally downloading the official files first).

    Writes the seeded CIFAR-10 query / train / database / val_query positions (into the pooled 60,000:
    data_batch_1..5, then test_batch) as JSON; the CIFAR10 DataModule draws the same split from the same
    seed, or reads this file with ``split_file``.

    Args:
        root: folder that holds (or will hold) ``cifar-10-batches-py``.
        protocol: ``paper``: the database excludes the training images (54,000); ``paper_db_with_train``:
            59,000; ``official``: train = database = the 50,000 official training images, the 10,000 test
            images are the queries.
        query_per_class: queries per class (paper protocols).
        train_per_class: training images per class (paper protocols).
        val_query_per_class: validation queries per class, from the database.
        seed: seed of the split.
        out: output JSON (default: ``root/cifar10_split_<protocol>_seed<seed>.json``).
        download: download the official files first (163 MB).
        overwrite: replace an existing output file.

    Returns:
        The JSON file written (default ``root/cifar10_split_<protocol>_seed<seed>.json``).
    """
    from hashbench.data.cifar10 import cifar10_splits, download_cifar10, load_cifar10, write_split_file

    root = Path(root).expanduser()
    if download:
        download_cifar10(root)
    path = Path(out or root / f"cifar10_split_{protocol}_seed{seed}.json")
    _existing_output(path.parent, [path.name], overwrite)
    _, labels, num_train = load_cifar10(root)
    split = cifar10_splits(
        labels, num_train, protocol, query_per_class, train_per_class, val_query_per_class, seed
    )
    write_split_file(
        path,
        split,
        protocol=protocol,
        seed=seed,
        query_per_class=query_per_class,
        train_per_class=train_per_class,
        val_query_per_class=val_query_per_class,
    )
    counts = ", ".join(f"{len(split[role])} {role}" for role in ("train", "query", "database", "val_query"))
    print(f"cifar10: wrote the split ({counts}) to {path}")
    print(
        f"train with: hashbench fit --config experiments/dpsh_hswd_64_cifar10.yaml "
        f"--data.init_args.root {root} --data.init_args.protocol {protocol} "
        f"(the same seed draws the same split; or pass --data.init_args.split_file {path})"
    )
    return path


# ----------------------------------------------------------------------------------------------- coco
def read_coco(root: Path, annotation_files: Sequence[Path]) -> tuple[list[str], np.ndarray, list[str], int]:
    """Images and 80-way multi-hot labels from COCO ``instances_*.json`` files.

    The images of ``instances_<folder>.json`` are taken from ``root/<folder>/`` (train2014, val2014).

    Returns:
        Paths relative to ``root`` (annotation file order, then image id), labels ``(N, 80)`` uint8 with
        columns in ascending category id, the category names, and the number of images dropped for
        having no category.
    """
    categories: dict[int, str] = {}
    per_file = []
    for file in annotation_files:
        path = file if file.is_absolute() else root / file
        content = _load_json(path, "COCO: the annotation file", f"Get the 2014 annotations from {COCO_URL}.")
        folder = path.stem.removeprefix("instances_")
        if not (root / folder).is_dir():
            raise UserError(
                f"the images of {path.name} are expected in {root / folder}, which does not exist."
            )
        try:
            for category in content["categories"]:
                if categories.setdefault(int(category["id"]), category["name"]) != category["name"]:
                    raise UserError(
                        f"{path}: category {category['id']} has another name than in the other files."
                    )
            images = {int(image["id"]): image["file_name"] for image in content["images"]}
            tagged: dict[int, set[int]] = {}
            for annotation in content["annotations"]:
                tagged.setdefault(int(annotation["image_id"]), set()).add(int(annotation["category_id"]))
        except (KeyError, TypeError, ValueError) as error:
            raise UserError(
                f"{path} is not a COCO instances file ({type(error).__name__}: {error})."
            ) from None
        per_file.append((folder, images, tagged))
    column = {category_id: i for i, category_id in enumerate(sorted(categories))}
    paths, rows, dropped = [], [], 0
    for folder, images, tagged in per_file:
        for image_id in sorted(images):
            category_ids = tagged.get(image_id, set())
            if not category_ids:
                dropped += 1
                continue
            unknown = category_ids - column.keys()
            if unknown:
                raise UserError(
                    f"COCO: image {image_id} is annotated with unknown categories {sorted(unknown)}."
                )
            row = np.zeros(len(column), dtype=np.uint8)
            row[[column[c] for c in category_ids]] = 1
            paths.append(f"{folder}/{images[image_id]}")
            rows.append(row)
    if not paths:
        raise UserError("COCO: no image has a category; are these instances_*.json files?")
    return paths, np.stack(rows), [categories[c] for c in sorted(categories)], dropped


def prepare_coco(
    root: Path,
    *,
    annotations: Sequence[Path] = (
        Path("annotations/instances_train2014.json"),
        Path("annotations/instances_val2014.json"),
    ),
    num_query: int = 5000,
    num_train: int = 10000,
    num_val: int | None = None,
    seed: int = 0,
    out: Path | None = None,
    drop_missing: bool = False,
    overwrite: bool = False,
    command: str | None = None,
) -> dict[str, np.ndarray]:
    """MS-COCO 2014: image lists from the official instances_*.json files.

    Builds the MS-COCO 2014 lists: train2014 + val2014 images with at least one of the 80 categories;
    ``num_query`` queries, the rest database, ``num_train`` training images and ``num_val`` validation
    queries drawn from the database, disjoint. Returns the positions written, by role.

    Args:
        root: COCO root holding train2014/, val2014/ and annotations/ (from https://cocodataset.org).
        annotations: instances_<folder>.json files, relative to ``root``; images are read from <folder>/.
        num_query: test queries.
        num_train: training images.
        num_val: validation queries, from the database minus the training images (``None``: ``num_query``).
        drop_missing: leave out images not found on disk.
        seed: seed of the split.
        out: folder for the list files (default: ``root``); list paths stay relative to ``root``.
        overwrite: replace existing output files.
        command: the command line recorded in ``prepare.json`` (filled in by the CLI).
    """
    options = dict(locals())
    root, out = _list_folders(
        root,
        out,
        overwrite,
        "COCO",
        f"Download the 2014 train and val images and annotations from {COCO_URL} and extract them there.",
    )
    paths, labels, classes, no_category = read_coco(root, annotations)
    if len(classes) != 80:
        print(
            f"COCO: note: {len(classes)} categories found, not 80; use hashbench.data.ListFileDataModule "
            f"with num_classes: {len(classes)} for these lists"
        )
    notes = [f"left out {no_category} images without a category"]
    missing = 0
    if drop_missing:
        paths, labels, missing = _drop_missing(root, paths, labels)
        notes.append(f"left out {missing} images not found under {root}")
    split = split_query_database(len(paths), num_query, num_train, seed)
    split = with_validation(labels, split, num_query if num_val is None else num_val, False, seed, "COCO")
    manifest = _manifest("coco", options, command, [str(f) for f in annotations], classes)
    manifest["counts"] = {"dropped_without_category": no_category, "dropped_missing": missing}
    write_lists(out, paths, labels, split, classes, manifest)
    _report("coco", "hashbench.data.COCO", root, out, split, notes)
    return split


# -------------------------------------------------------------------------------------------- nuswide
def read_nuswide(
    root: Path, image_list: Path, labels_dir: Path, image_dir: str, num_concepts: int
) -> tuple[list[str], np.ndarray, list[str], int]:
    """Images and labels of the ``num_concepts`` most frequent NUS-WIDE concepts.

    Args:
        root: data root.
        image_list: ``Imagelist.txt``: one image a line, ``folder\\name.jpg``; only these last two parts
            are kept (relative to ``image_dir``), whatever prefix precedes them.
        labels_dir: folder of ``Labels_<concept>.txt`` files, one 0/1 a line in image-list order.
        image_dir: folder of the images, relative to ``root``.
        num_concepts: how many of the most frequent concepts to keep (ties broken by name).

    Returns:
        Paths relative to ``root`` (image-list order), labels ``(N, num_concepts)`` uint8 with columns
        in alphabetical concept order, the concept names, and the number of images dropped for having
        none of the concepts.
    """
    image_list = image_list if image_list.is_absolute() else root / image_list
    labels_dir = labels_dir if labels_dir.is_absolute() else root / labels_dir
    try:
        lines = [
            line.strip().replace("\\", "/") for line in image_list.read_text().splitlines() if line.strip()
        ]
    except FileNotFoundError:
        raise UserError(
            f"NUS-WIDE: the image list {image_list} does not exist (ImageList.zip of {NUSWIDE_URL})."
        ) from None
    names = ["/".join(line.split("/")[-2:]) for line in lines]  # <concept folder>/<file>, any prefix dropped
    files = sorted(labels_dir.glob("Labels_*.txt"))
    if not files:
        raise UserError(
            f"NUS-WIDE: no Labels_<concept>.txt files in {labels_dir} (Groundtruth.zip of {NUSWIDE_URL})."
        )
    if num_concepts < 1 or num_concepts > len(files):
        raise UserError(f"NUS-WIDE: --num_concepts must be in [1, {len(files)}], got {num_concepts}")
    columns = []
    for file in files:
        tokens = file.read_text().split()
        if len(tokens) != len(names) or set(tokens) - {"0", "1"}:
            raise UserError(
                f"NUS-WIDE: {file} must hold one 0/1 per image of {image_list} ({len(names)} lines), "
                f"but has {len(tokens)} values{' (not all 0/1)' if set(tokens) - {'0', '1'} else ''}."
            )
        columns.append(np.frombuffer("".join(tokens).encode("ascii"), dtype=np.uint8) - ord("0"))
    concepts = [file.stem.removeprefix("Labels_") for file in files]
    frequency = [int(column.sum()) for column in columns]
    chosen = sorted(
        sorted(range(len(files)), key=lambda i: (-frequency[i], concepts[i]))[:num_concepts],
        key=lambda i: concepts[i],
    )
    labels = np.stack([columns[i] for i in chosen], axis=1)
    keep = np.asarray(labels.any(axis=1), dtype=bool)
    paths = [f"{image_dir}/{name}" if image_dir else name for name, k in zip(names, keep, strict=True) if k]
    return paths, labels[keep], [concepts[i] for i in chosen], int((~keep).sum())


def prepare_nuswide(
    root: Path,
    *,
    image_list: Path = Path("ImageList/Imagelist.txt"),
    labels_dir: Path = Path("Groundtruth/AllLabels"),
    image_dir: str = "Flickr",
    num_concepts: int = 21,
    num_query: int = 5000,
    num_train: int = 10000,
    num_val: int | None = None,
    seed: int = 0,
    out: Path | None = None,
    drop_missing: bool = False,
    overwrite: bool = False,
    command: str | None = None,
) -> dict[str, np.ndarray]:
    """NUS-WIDE: image lists from the official image list and concept label files.

    Builds the NUS-WIDE lists: the ``num_concepts`` most frequent concepts (21, or 81 = all), images with
    at least one; ``num_query`` queries, the rest database, ``num_train`` training images and ``num_val``
    validation queries drawn from the database, disjoint. Returns the positions written, by role.

    Args:
        root: NUS-WIDE root holding the images, ImageList/ and Groundtruth/.
        image_list: the official image list, relative to ``root``.
        labels_dir: folder of Labels_<concept>.txt, relative to ``root``.
        image_dir: folder of the images (as named in the image list), relative to ``root``.
        num_concepts: most frequent concepts to keep (81: all).
        num_query: test queries.
        num_train: training images.
        num_val: validation queries, from the database minus the training images (``None``: ``num_query``).
        drop_missing: leave out images not found on disk (many Flickr URLs are dead).
        seed: seed of the split.
        out: folder for the list files (default: ``root``); list paths stay relative to ``root``.
        overwrite: replace existing output files.
        command: the command line recorded in ``prepare.json`` (filled in by the CLI).
    """
    options = dict(locals())
    root, out = _list_folders(
        root,
        out,
        overwrite,
        "NUS-WIDE",
        f"Get the image list, the ground truth and the images from {NUSWIDE_URL} and put them there.",
    )
    paths, labels, classes, no_concept = read_nuswide(root, image_list, labels_dir, image_dir, num_concepts)
    notes = [f"concepts: {', '.join(classes)}", f"left out {no_concept} images with none of them"]
    missing = 0
    if drop_missing:
        paths, labels, missing = _drop_missing(root, paths, labels)
        notes.append(f"left out {missing} images not found under {root}")
    split = split_query_database(len(paths), num_query, num_train, seed)
    split = with_validation(labels, split, num_query if num_val is None else num_val, False, seed, "NUS-WIDE")
    manifest = _manifest("nuswide", options, command, [str(image_list), str(labels_dir)], classes)
    manifest["counts"] = {"dropped_without_concept": no_concept, "dropped_missing": missing}
    write_lists(out, paths, labels, split, classes, manifest)
    if num_concepts not in (21, 81):
        notes.append(
            f"use hashbench.data.ListFileDataModule with num_classes: {num_concepts} for these lists"
        )
    datamodule = f"hashbench.data.NUSWIDE --data.init_args.num_concepts {num_concepts}"
    _report("nuswide", datamodule, root, out, split, notes)
    return split


# ---------------------------------------------------------------------------------------- imagenet100
def read_class_list(path: Path) -> list[str]:
    """WordNet ids, one a line (the first word of each non-empty line)."""
    try:
        wnids = [line.split()[0] for line in path.expanduser().read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise UserError(f"ImageNet100: the class list {path} does not exist.") from None
    duplicates = sorted({wnid for wnid in wnids if wnids.count(wnid) > 1})
    if not wnids or duplicates:
        raise UserError(f"ImageNet100: the class list {path} is empty or repeats classes {duplicates}.")
    return wnids


def _class_images(folder: Path, hint: str) -> list[str]:
    if not folder.is_dir():
        raise UserError(f"ImageNet100: the class folder {folder} does not exist. {hint}")
    return sorted(path.name for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)


def prepare_imagenet100(
    root: Path,
    *,
    classes: Path,
    train_dir: str = "train",
    val_dir: str = "val",
    train_per_class: int = 130,
    query_per_class: int = 50,
    val_per_class: int | None = None,
    seed: int = 0,
    out: Path | None = None,
    overwrite: bool = False,
    command: str | None = None,
) -> dict[str, np.ndarray]:
    """ImageNet100: image lists from ImageNet's class folders and a list of 100 classes.

    Builds the ImageNet100 lists: per class, ``query_per_class`` queries from val, ``train_per_class``
    training images from train; database = all train images of the classes; ``val_per_class`` validation
    queries a class from the database minus the training images. Returns the positions written, by role.

    Args:
        root: ImageNet root holding train/<wnid>/ and val/<wnid>/.
        classes: text file with one WordNet id a line (e.g. n01440764); line order = label order.
        train_dir: training folder, relative to ``root``.
        val_dir: validation folder (class folders), relative to ``root``.
        train_per_class: training images per class.
        query_per_class: queries per class, from val/.
        val_per_class: validation queries per class (``None``: ``query_per_class``).
        seed: seed of the split.
        out: folder for the list files (default: ``root``); list paths stay relative to ``root``.
        overwrite: replace existing output files.
        command: the command line recorded in ``prepare.json`` (filled in by the CLI).
    """
    options = dict(locals())
    root, out = _list_folders(
        root,
        out,
        overwrite,
        "ImageNet100",
        "Download ILSVRC2012 from https://image-net.org and organise train/ and val/ in class folders "
        "(as torchvision.datasets.ImageNet does).",
    )
    wnids = read_class_list(classes)
    if query_per_class < 1 or train_per_class < 1:
        raise UserError("--query_per_class and --train_per_class must be >= 1")
    rng = np.random.default_rng(seed)
    hint = "train/ and val/ must hold one folder per class (as torchvision.datasets.ImageNet leaves val/)."
    paths: list[str] = []
    labels: list[int] = []
    split: dict[str, list[int]] = {"train": [], "query": [], "database": []}
    for label, wnid in enumerate(wnids):
        for role, folder, needed in (
            ("database", train_dir, train_per_class),
            ("query", val_dir, query_per_class),
        ):
            names = _class_images(root / folder / wnid, hint)
            if len(names) < needed:
                raise UserError(
                    f"ImageNet100: {root / folder / wnid} has {len(names)} images, fewer than {needed}."
                )
            start = len(paths)
            paths.extend(f"{folder}/{wnid}/{name}" for name in names)
            labels.extend([label] * len(names))
            positions = np.arange(start, len(paths))
            if role == "database":
                split["database"].extend(positions.tolist())
                split["train"].extend(np.sort(rng.choice(positions, needed, replace=False)).tolist())
            else:
                split["query"].extend(np.sort(rng.choice(positions, needed, replace=False)).tolist())
    one_hot = np.eye(len(wnids), dtype=np.uint8)[labels]
    final = with_validation(
        one_hot,
        {role: np.asarray(positions) for role, positions in split.items()},
        query_per_class if val_per_class is None else val_per_class,
        True,
        seed,
        "ImageNet100",
    )
    if len(wnids) != 100:
        print(
            f"ImageNet100: note: {len(wnids)} classes, not 100; use hashbench.data.ListFileDataModule with "
            f"num_classes: {len(wnids)}, multi_label: false for these lists"
        )
    manifest = _manifest("imagenet100", options, command, [str(classes)], wnids)
    write_lists(out, paths, one_hot, final, wnids, manifest)
    _report("imagenet100", "hashbench.data.ImageNet100", root, out, final, [])
    return final


# ------------------------------------------------------------------------------------------ mirflickr
def download_mirflickr(root: Path) -> None:
    """Download and extract the MIRFlickr-25K images and annotations into ``root`` (about 3 GB).

    Raises:
        UserError: the download failed (e.g. no internet access).
    """
    for url in MIRFLICKR_FILES:
        try:
            from torchvision.datasets.utils import download_and_extract_archive

            download_and_extract_archive(url, str(root))
        except (urllib.error.URLError, OSError, RuntimeError) as error:
            raise UserError(
                f"MIRFlickr-25K: downloading {url} failed ({type(error).__name__}: {error}). On a machine "
                f"with internet access, get mirflickr25k.zip and mirflickr25k_annotations_v080.zip from "
                f"{MIRFLICKR_PAGE} and extract both into {root}."
            ) from None


def read_mirflickr(
    root: Path, annotations_dir: Path, image_dir: str, num_images: int
) -> tuple[list[str], np.ndarray, int]:
    """Images and the 24 potential labels of MIRFlickr-25K.

    Args:
        root: data root.
        annotations_dir: folder of ``<label>.txt`` (image numbers, one a line, 1-based); the
            ``<label>_r1.txt`` relevant-only variants are not used.
        image_dir: folder of ``im1.jpg`` … ``im<num_images>.jpg``, relative to ``root``.
        num_images: images in the collection (25,000).

    Returns:
        Paths relative to ``root`` (by image number), labels ``(N, 24)`` uint8 in the order of
        :data:`MIRFLICKR_LABELS`, and the number of images dropped for having no label.
    """
    folder = annotations_dir if annotations_dir.is_absolute() else root / annotations_dir
    absent = [name for name in MIRFLICKR_LABELS if not (folder / f"{name}.txt").is_file()]
    if absent:
        raise UserError(
            f"MIRFlickr-25K: {len(absent)} of the 24 label files are missing in {folder} "
            f"({', '.join(absent[:5])}{', …' if len(absent) > 5 else ''}); extract "
            f"mirflickr25k_annotations_v080.zip of {MIRFLICKR_PAGE} there, or pass --annotations_dir."
        )
    labels = np.zeros((num_images, len(MIRFLICKR_LABELS)), dtype=np.uint8)
    for column, name in enumerate(MIRFLICKR_LABELS):
        tokens = (folder / f"{name}.txt").read_text().split()
        if not all(token.isdigit() and 1 <= int(token) <= num_images for token in tokens):
            raise UserError(
                f"MIRFlickr-25K: {folder / name}.txt must list image numbers in [1, {num_images}], one a "
                "line."
            )
        labels[np.asarray(tokens, dtype=np.int64) - 1, column] = 1
    keep = np.asarray(labels.any(axis=1), dtype=bool)
    paths = [f"{image_dir}/im{number}.jpg" for number in np.flatnonzero(keep) + 1]
    return paths, labels[keep], int((~keep).sum())


def prepare_mirflickr(
    root: Path,
    *,
    annotations_dir: Path = Path("mirflickr25k_annotations_v080"),
    image_dir: str = "mirflickr",
    num_images: int = 25000,
    num_query: int = 2000,
    num_train: int = 5000,
    num_val: int | None = None,
    seed: int = 0,
    out: Path | None = None,
    download: bool = False,
    drop_missing: bool = False,
    overwrite: bool = False,
    command: str | None = None,
) -> dict[str, np.ndarray]:
    """MIRFlickr-25K: image lists from the official annotations (24 labels).

    Builds the MIRFlickr-25K lists: images with at least one of the 24 potential labels (<label>.txt of
    the annotations, not the *_r1.txt variants); ``num_query`` queries, the rest database, ``num_train``
    training images and ``num_val`` validation queries drawn from the database, disjoint. Returns the
    positions written, by role.

    Args:
        root: MIRFlickr root holding mirflickr/im*.jpg and mirflickr25k_annotations_v080/.
        annotations_dir: folder of the <label>.txt files, relative to ``root``.
        image_dir: folder of im<N>.jpg, relative to ``root``.
        num_images: images in the collection.
        num_query: test queries.
        num_train: training images.
        num_val: validation queries, from the database minus the training images (``None``: ``num_query``).
        download: download and extract the two zips first.
        drop_missing: leave out images not found on disk.
        seed: seed of the split.
        out: folder for the list files (default: ``root``); list paths stay relative to ``root``.
        overwrite: replace existing output files.
        command: the command line recorded in ``prepare.json`` (filled in by the CLI).
    """
    options = dict(locals())
    if download:
        Path(root).expanduser().mkdir(parents=True, exist_ok=True)
        download_mirflickr(Path(root).expanduser())
    root, out = _list_folders(
        root,
        out,
        overwrite,
        "MIRFlickr-25K",
        f"Get mirflickr25k.zip and mirflickr25k_annotations_v080.zip from {MIRFLICKR_PAGE} and extract "
        "both there (or pass --download).",
    )
    paths, labels, unlabelled = read_mirflickr(root, annotations_dir, image_dir, num_images)
    notes = [f"left out {unlabelled} images without a label"]
    missing = 0
    if drop_missing:
        paths, labels, missing = _drop_missing(root, paths, labels)
        notes.append(f"left out {missing} images not found under {root}")
    split = split_query_database(len(paths), num_query, num_train, seed)
    split = with_validation(
        labels, split, num_query if num_val is None else num_val, False, seed, "MIRFlickr-25K"
    )
    manifest = _manifest("mirflickr", options, command, [str(annotations_dir)], MIRFLICKR_LABELS)
    manifest["counts"] = {"dropped_without_label": unlabelled, "dropped_missing": missing}
    write_lists(out, paths, labels, split, MIRFLICKR_LABELS, manifest)
    _report("mirflickr", "hashbench.data.MIRFlickr", root, out, split, notes)
    return split


# ------------------------------------------------------------------------------------------------ voc
def read_voc(
    root: Path, devkit: Path, image_set: str, difficult: Literal["negative", "positive"]
) -> tuple[list[str], np.ndarray, int]:
    """Images and the 20 class labels of a PASCAL VOC image set from ``ImageSets/Main/<class>_<set>.txt``.

    Each line of those files is ``<image id> <1 | -1 | 0>``: present, absent, or present but marked
    difficult only; ``difficult`` says which a 0 counts as.

    Returns:
        Paths relative to ``root`` (``<devkit>/JPEGImages/<id>.jpg``, in the files' order), labels
        ``(N, 20)`` uint8 in :data:`VOC_CLASSES` order, and the number of images dropped for having no
        positive label.
    """
    main = root / devkit / "ImageSets" / "Main"
    positive = ("1", "0") if difficult == "positive" else ("1",)
    ids: list[str] = []
    columns: list[np.ndarray] = []
    for name in VOC_CLASSES:
        file = main / f"{name}_{image_set}.txt"
        if not file.is_file():
            raise UserError(
                f"VOC: {file} does not exist; extract VOCtrainval_11-May-2012.tar of {VOC_URL} into {root} "
                "(or pass --download)."
            )
        rows = [line.split() for line in file.read_text().splitlines() if line.strip()]
        if any(len(row) != 2 or row[1] not in ("1", "-1", "0") for row in rows):
            raise UserError(f"VOC: every line of {file} must be `<image id> <1|-1|0>`.")
        if not columns:
            ids = [row[0] for row in rows]
        elif [row[0] for row in rows] != ids:
            raise UserError(f"VOC: {file} does not list the same images as {VOC_CLASSES[0]}_{image_set}.txt.")
        columns.append(np.array([row[1] in positive for row in rows], dtype=np.uint8))
    labels = np.stack(columns, axis=1)
    keep = np.asarray(labels.any(axis=1), dtype=bool)
    paths = [f"{devkit.as_posix()}/JPEGImages/{image}.jpg" for image, k in zip(ids, keep, strict=True) if k]
    return paths, labels[keep], int((~keep).sum())


def prepare_voc(
    root: Path,
    *,
    devkit: Path = Path("VOCdevkit/VOC2012"),
    image_set: str = "trainval",
    difficult: Literal["negative", "positive"] = "negative",
    num_query: int = 1000,
    num_train: int = 4000,
    num_val: int | None = None,
    seed: int = 0,
    out: Path | None = None,
    download: bool = False,
    overwrite: bool = False,
    command: str | None = None,
) -> dict[str, np.ndarray]:
    """PASCAL VOC 2012: image lists from the devkit's ImageSets/Main (20 classes).

    Builds the PASCAL VOC 2012 lists: ``image_set`` images with at least one of the 20 classes;
    ``num_query`` queries and ``num_train`` training images drawn apart, the rest database (training
    images left out of it); ``num_val`` validation queries drawn from the database. Returns the positions
    written, by role.

    Args:
        root: root holding VOCdevkit/VOC2012/.
        devkit: devkit folder, relative to ``root``.
        image_set: image set of ImageSets/Main.
        difficult: what a 0 (object present, marked difficult only) counts as.
        num_query: test queries.
        num_train: training images.
        num_val: validation queries, from the database minus the training images (``None``: ``num_query``).
        download: download and extract VOCtrainval (2 GB) first.
        seed: seed of the split.
        out: folder for the list files (default: ``root``); list paths stay relative to ``root``.
        overwrite: replace existing output files.
        command: the command line recorded in ``prepare.json`` (filled in by the CLI).
    """
    options = dict(locals())
    if download:
        target = Path(root).expanduser()
        try:
            from torchvision.datasets import VOCDetection

            VOCDetection(str(target), year="2012", image_set=image_set, download=True)
        except (urllib.error.URLError, OSError, RuntimeError) as error:
            raise UserError(
                f"VOC: downloading into {target} failed ({type(error).__name__}: {error}). On a machine "
                f"with internet access, get VOCtrainval_11-May-2012.tar from {VOC_URL} and extract it into "
                f"{target}."
            ) from None
    root, out = _list_folders(
        root,
        out,
        overwrite,
        "VOC",
        f"Get VOCtrainval_11-May-2012.tar from {VOC_URL} and extract it there (or pass --download).",
    )
    paths, labels, unlabelled = read_voc(root, devkit, image_set, difficult)
    split = split_query_database(len(paths), num_query, num_train, seed, train_in_database=False)
    split = with_validation(labels, split, num_query if num_val is None else num_val, False, seed, "VOC")
    manifest = _manifest("voc", options, command, [str(devkit / "ImageSets" / "Main")], VOC_CLASSES)
    manifest["counts"] = {"dropped_without_label": unlabelled}
    write_lists(out, paths, labels, split, VOC_CLASSES, manifest)
    _report("voc", "hashbench.data.VOC", root, out, split, [f"left out {unlabelled} images without a label"])
    return split


# --------------------------------------------------------------------------------------------- parser
