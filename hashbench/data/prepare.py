"""``hashbench prepare {cifar10,coco,nuswide,imagenet100} …``: the papers' splits from the official files.

For COCO, NUS-WIDE and ImageNet100 it writes ``train.txt``, ``test.txt`` (queries) and ``database.txt``
(``path 0 1 0 …``, paths relative to the data root), ``classes.txt`` (the label of each column) and
``prepare.json`` (the command, seed, sources and counts), so that a run can be audited. For CIFAR-10 it
writes the query / train / database positions as JSON. Every split is seeded: the same seed and files
give the same split.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hashbench.data.cifar10 import cifar10_split, download_cifar10, load_cifar10, write_split_file
from hashbench.errors import UserError

LIST_FILES = {"train": "train.txt", "query": "test.txt", "database": "database.txt"}
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
COCO_URL = "https://cocodataset.org/#download"
NUSWIDE_URL = "https://lms.comp.nus.edu.sg/wp-content/uploads/2019/research/nuswide/NUS-WIDE.html"


# ------------------------------------------------------------------------------------------- helpers
def split_query_database(num_items: int, num_query: int, num_train: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded split of ``num_items`` positions: ``num_query`` queries, the rest database, ``num_train``
    training items drawn from the database. Each returned array is sorted ascending."""
    if num_query < 1 or num_train < 1:
        raise UserError(f"--num-query and --num-train must be >= 1, got {num_query} and {num_train}")
    if num_query + num_train > num_items:
        raise UserError(
            f"only {num_items} images to split, fewer than --num-query {num_query} + --num-train "
            f"{num_train}; lower them"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(num_items)
    database = order[num_query:]
    train = rng.choice(database, size=num_train, replace=False)
    return {"train": np.sort(train), "query": np.sort(order[:num_query]), "database": np.sort(database)}


def _existing_output(out: Path, names: Sequence[str], overwrite: bool) -> None:
    existing = [str(out / name) for name in names if (out / name).exists()]
    if existing and not overwrite:
        raise UserError(
            f"{', '.join(existing)} already exist; pass --overwrite to replace them, or choose --out."
        )


def _list_folders(args: argparse.Namespace, dataset: str, how_to_get: str) -> tuple[Path, Path]:
    """``(root, out)`` of a list-building command, refusing a missing root and outputs it would replace."""
    root: Path = args.root.expanduser()
    if not root.is_dir():
        raise UserError(f"{dataset}: the data root {root} does not exist. {how_to_get}")
    out: Path = (args.out or root).expanduser()
    _existing_output(out, [*LIST_FILES.values(), "classes.txt", "prepare.json"], args.overwrite)
    return root, out


def write_lists(
    out: Path,
    paths: Sequence[str],
    labels: np.ndarray,
    split: dict[str, np.ndarray],
    classes: Sequence[str],
    manifest: dict,
) -> None:
    """Write the three list files, ``classes.txt`` and ``prepare.json`` into ``out``.

    Args:
        out: output folder (created).
        paths: ``(N)`` image paths relative to the data root.
        labels: ``(N, C)`` 0/1.
        split: positions into ``paths`` for ``train``, ``query`` and ``database``.
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


def _report(dataset: str, root: Path, out: Path, split: dict[str, np.ndarray], notes: Sequence[str]) -> None:
    counts = ", ".join(f"{len(split[role])} {role}" for role in ("train", "query", "database"))
    print(f"{dataset}: wrote {counts} to {out}/{{train,test,database}}.txt (+ classes.txt, prepare.json)")
    for note in notes:
        print(f"  {note}")
    lists = (
        ""
        if out == root
        else "".join(f" --data.init_args.{role}_list {out / name}" for role, name in LIST_FILES.items())
    )
    print(
        f"train with: hashbench fit --config experiments/dpsh_hswd_64_{dataset}.yaml "
        f"--data.init_args.root {root}{lists}"
    )


def _manifest(dataset: str, args: argparse.Namespace, sources: list[str], classes: Sequence[str]) -> dict:
    options = {
        key: str(value) if isinstance(value, Path) else value
        for key, value in vars(args).items()
        if key not in ("run", "command")
    }
    options = {
        key: [str(v) for v in value] if isinstance(value, list) else value for key, value in options.items()
    }
    return {
        "dataset": dataset,
        "command": args.command,
        "options": options,
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
def prepare_cifar10(args: argparse.Namespace) -> None:
    """Download CIFAR-10 if asked and write the seeded split positions as JSON."""
    root: Path = args.root.expanduser()
    if args.download:
        download_cifar10(root)
    _, labels = load_cifar10(root)
    split = cifar10_split(labels, args.protocol, args.query_per_class, args.train_per_class, args.seed)
    out = args.out or root / f"cifar10_split_{args.protocol}_seed{args.seed}.json"
    _existing_output(out.parent, [out.name], args.overwrite)
    write_split_file(
        out,
        split,
        protocol=args.protocol,
        seed=args.seed,
        query_per_class=args.query_per_class,
        train_per_class=args.train_per_class,
    )
    counts = ", ".join(f"{len(split[role])} {role}" for role in ("train", "query", "database"))
    print(f"cifar10: wrote the split ({counts}) to {out}")
    print(
        f"train with: hashbench fit --config experiments/dpsh_hswd_64_cifar10.yaml "
        f"--data.init_args.root {root} "
        f"(the same seed draws the same split; or pass --data.init_args.split_file {out})"
    )


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


def prepare_coco(args: argparse.Namespace) -> None:
    """Build the MS-COCO lists: images with at least one category, seeded query / database / train."""
    root, out = _list_folders(
        args,
        "COCO",
        f"Download the 2014 train and val images and annotations from {COCO_URL} and extract them there.",
    )
    paths, labels, classes, no_category = read_coco(root, args.annotations)
    if len(classes) != 80:
        print(
            f"COCO: note: {len(classes)} categories found, not 80; use hashbench.data.ListFileDataModule "
            f"with num_classes: {len(classes)} for these lists"
        )
    notes = [f"left out {no_category} images without a category"]
    missing = 0
    if args.drop_missing:
        paths, labels, missing = _drop_missing(root, paths, labels)
        notes.append(f"left out {missing} images not found under {root}")
    split = split_query_database(len(paths), args.num_query, args.num_train, args.seed)
    manifest = _manifest("coco", args, [str(f) for f in args.annotations], classes)
    manifest["counts"] = {"dropped_without_category": no_category, "dropped_missing": missing}
    write_lists(out, paths, labels, split, classes, manifest)
    _report("coco", root, out, split, notes)


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
        raise UserError(f"NUS-WIDE: --num-concepts must be in [1, {len(files)}], got {num_concepts}")
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
    keep = labels.any(axis=1)
    paths = [f"{image_dir}/{name}" if image_dir else name for name, k in zip(names, keep, strict=True) if k]
    return paths, labels[keep], [concepts[i] for i in chosen], int((~keep).sum())


def prepare_nuswide(args: argparse.Namespace) -> None:
    """Build the NUS-WIDE lists: the most frequent concepts, images with at least one, seeded split."""
    root, out = _list_folders(
        args,
        "NUS-WIDE",
        f"Get the image list, the ground truth and the images from {NUSWIDE_URL} and put them there.",
    )
    paths, labels, classes, no_concept = read_nuswide(
        root, args.image_list, args.labels_dir, args.image_dir, args.num_concepts
    )
    notes = [f"concepts: {', '.join(classes)}", f"left out {no_concept} images with none of them"]
    missing = 0
    if args.drop_missing:
        paths, labels, missing = _drop_missing(root, paths, labels)
        notes.append(f"left out {missing} images not found under {root}")
    split = split_query_database(len(paths), args.num_query, args.num_train, args.seed)
    manifest = _manifest("nuswide", args, [str(args.image_list), str(args.labels_dir)], classes)
    manifest["counts"] = {"dropped_without_concept": no_concept, "dropped_missing": missing}
    write_lists(out, paths, labels, split, classes, manifest)
    _report("nuswide", root, out, split, notes)


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


def prepare_imagenet100(args: argparse.Namespace) -> None:
    """Build the ImageNet100 lists: per class, queries from val, training images from train; database = all
    train images of the classes."""
    root, out = _list_folders(
        args,
        "ImageNet100",
        "Download ILSVRC2012 from https://image-net.org and organise train/ and val/ in class folders "
        "(as torchvision.datasets.ImageNet does).",
    )
    wnids = read_class_list(args.classes)
    if args.query_per_class < 1 or args.train_per_class < 1:
        raise UserError("--query-per-class and --train-per-class must be >= 1")
    rng = np.random.default_rng(args.seed)
    hint = "train/ and val/ must hold one folder per class (as torchvision.datasets.ImageNet leaves val/)."
    paths: list[str] = []
    labels: list[int] = []
    split: dict[str, list[int]] = {"train": [], "query": [], "database": []}
    for label, wnid in enumerate(wnids):
        for role, folder, needed in (
            ("database", args.train_dir, args.train_per_class),
            ("query", args.val_dir, args.query_per_class),
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
    final = {role: np.asarray(positions) for role, positions in split.items()}
    if len(wnids) != 100:
        print(
            f"ImageNet100: note: {len(wnids)} classes, not 100; use hashbench.data.ListFileDataModule with "
            f"num_classes: {len(wnids)}, multi_label: false for these lists"
        )
    write_lists(out, paths, one_hot, final, wnids, _manifest("imagenet100", args, [str(args.classes)], wnids))
    _report("imagenet100", root, out, final, [])


# --------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The ``hashbench prepare`` argument parser."""
    formatter = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="hashbench prepare",
        description="Build the papers' seeded splits from the official dataset files and write them to disk.",
        formatter_class=formatter,
    )
    commands = parser.add_subparsers(
        dest="dataset", required=True, metavar="{cifar10,coco,nuswide,imagenet100}"
    )

    def common(sub: argparse.ArgumentParser, root_help: str, root_default: Path | None = None) -> None:
        sub.add_argument(
            "--root", type=Path, required=root_default is None, default=root_default, help=root_help
        )
        sub.add_argument("--seed", type=int, default=0, help="seed of the split")
        sub.add_argument("--overwrite", action="store_true", help="replace existing output files")

    def lists_out(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--out",
            type=Path,
            default=None,
            help="folder for the list files (default: --root); list paths stay relative to --root",
        )

    cifar = commands.add_parser(
        "cifar10",
        formatter_class=formatter,
        help="write the CIFAR-10 split positions (download with --download)",
        description="Write the seeded CIFAR-10 query/train/database positions (into the pooled 60,000: "
        "data_batch_1..5, then test_batch) as JSON. The CIFAR10 DataModule draws the same split from the "
        "same seed, or reads this file with split_file.",
    )
    common(cifar, "folder that holds (or will hold) cifar-10-batches-py", Path("data/cifar10"))
    cifar.add_argument("--download", action="store_true", help="download the official files first (163 MB)")
    cifar.add_argument(
        "--protocol",
        choices=["paper", "paper_db_with_train"],
        default="paper",
        help="paper: database excludes training images (54,000); paper_db_with_train: 59,000",
    )
    cifar.add_argument("--query-per-class", type=int, default=100, help="queries per class")
    cifar.add_argument("--train-per-class", type=int, default=500, help="training images per class")
    cifar.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output JSON (default: ROOT/cifar10_split_PROTOCOL_seedSEED.json)",
    )
    cifar.set_defaults(run=prepare_cifar10)

    coco = commands.add_parser(
        "coco",
        formatter_class=formatter,
        help="MS-COCO 2014 lists from instances_*.json",
        description="Build MS-COCO 2014 lists: train2014 + val2014 images with at least one of the 80 "
        "categories; --num-query queries, the rest database, --num-train training images drawn from the "
        f"database. Images and annotations: {COCO_URL}.",
    )
    common(coco, "COCO root holding train2014/, val2014/ and annotations/")
    lists_out(coco)
    coco.add_argument(
        "--annotations",
        type=Path,
        nargs="+",
        default=[Path("annotations/instances_train2014.json"), Path("annotations/instances_val2014.json")],
        help="instances_<folder>.json files, relative to --root; images are read from <folder>/",
    )
    coco.add_argument("--num-query", type=int, default=5000, help="queries")
    coco.add_argument("--num-train", type=int, default=10000, help="training images, drawn from the database")
    coco.add_argument("--drop-missing", action="store_true", help="leave out images not found on disk")
    coco.set_defaults(run=prepare_coco)

    nus = commands.add_parser(
        "nuswide",
        formatter_class=formatter,
        help="NUS-WIDE lists from Imagelist.txt and Labels_*.txt",
        description="Build NUS-WIDE lists: the --num-concepts most frequent of the 81 concepts, images with "
        "at least one of them; --num-query queries, the rest database, --num-train training images drawn "
        f"from the database. Files: {NUSWIDE_URL}.",
    )
    common(nus, "NUS-WIDE root holding the images, ImageList/ and Groundtruth/")
    lists_out(nus)
    nus.add_argument(
        "--image-list",
        type=Path,
        default=Path("ImageList/Imagelist.txt"),
        help="the official image list, relative to --root",
    )
    nus.add_argument(
        "--labels-dir",
        type=Path,
        default=Path("Groundtruth/AllLabels"),
        help="folder of Labels_<concept>.txt, relative to --root",
    )
    nus.add_argument(
        "--image-dir",
        default="Flickr",
        help="folder of the images (as named in the image list), relative to --root",
    )
    nus.add_argument("--num-concepts", type=int, default=21, help="most frequent concepts to keep")
    nus.add_argument("--num-query", type=int, default=5000, help="queries")
    nus.add_argument("--num-train", type=int, default=10000, help="training images, drawn from the database")
    nus.add_argument(
        "--drop-missing",
        action="store_true",
        help="leave out images not found on disk (many Flickr URLs are dead)",
    )
    nus.set_defaults(run=prepare_nuswide)

    imagenet = commands.add_parser(
        "imagenet100",
        formatter_class=formatter,
        help="ImageNet100 lists from ImageNet folders and a class list",
        description="Build ImageNet100 lists: for each class of --classes, --query-per-class queries from "
        "val/, --train-per-class training images from train/, and all its train/ images in the database.",
    )
    common(imagenet, "ImageNet root holding train/<wnid>/ and val/<wnid>/")
    lists_out(imagenet)
    imagenet.add_argument(
        "--classes",
        type=Path,
        required=True,
        help="text file with one WordNet id a line (e.g. n01440764); line order = label order",
    )
    imagenet.add_argument("--train-dir", default="train", help="training folder, relative to --root")
    imagenet.add_argument(
        "--val-dir", default="val", help="validation folder (class folders), relative to --root"
    )
    imagenet.add_argument("--train-per-class", type=int, default=130, help="training images per class")
    imagenet.add_argument("--query-per-class", type=int, default=50, help="queries per class, from val/")
    imagenet.set_defaults(run=prepare_imagenet100)
    return parser


def main(argv: list[str]) -> None:
    """Run ``hashbench prepare`` with ``argv`` (the arguments after ``prepare``)."""
    args = build_parser().parse_args(argv)
    args.command = shlex.join(["hashbench", "prepare", *argv])
    args.run(args)
