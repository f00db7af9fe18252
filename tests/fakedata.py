"""Writers of tiny fake datasets in the real on-disk formats, for tests (no download needed).

* :func:`write_fake_cifar10`: torchvision's ``cifar-10-batches-py`` pickles.
* :func:`write_fake_listfile_dataset`: JPEGs with ``train.txt``, ``test.txt``, ``database.txt`` (``val.txt``).
* :func:`write_fake_coco`: ``train2014/``, ``val2014/`` and ``annotations/instances_*2014.json``.
* :func:`write_fake_nuswide`: ``Flickr/``, ``ImageList/Imagelist.txt``, ``Groundtruth/AllLabels/Labels_*``.
* :func:`write_fake_imagenet`: ``train/<wnid>/*.JPEG``, ``val/<wnid>/*.JPEG`` and a class list.
* :func:`write_fake_mirflickr`: ``mirflickr/im<N>.jpg``, ``mirflickr25k_annotations_v080/<label>[_r1].txt``.
* :func:`write_fake_voc`: ``VOCdevkit/VOC2012/JPEGImages/`` and ``ImageSets/Main/<class>_trainval.txt``.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
NUSWIDE_CONCEPTS = (  # noqa: SIM905
    "airport animal beach bear birds boats book bridge buildings cars castle cat cityscape clouds "
    "computer coral cow dancing dog earthquake elk fire fish flags flowers food fox frost garden "
    "glacier grass harbor horses house lake leaf map military moon mountain nighttime ocean person "
    "plane plants police protest railroad rainbow reflection road rocks running sand sign sky snow "
    "soccer sports statue street sun sunset surf swimmers tattoo temple tiger tower town toy train tree "
    "valley vehicle water waterfall wedding whales window zebra"
).split()
"""The 81 NUS-WIDE concepts, in the alphabetical order of the official ``Concepts81.txt``."""


def _write_jpeg(path: Path, rng: np.random.Generator, size: int, tint: int = 0) -> None:
    """A small random RGB JPEG whose mean colour depends on ``tint``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = rng.integers(0, 128, (size, size, 3)) + np.array([(tint * 37) % 128, (tint * 71) % 128, 64])
    Image.fromarray(pixels.astype(np.uint8)).save(path, quality=85)


def write_fake_cifar10(root: Path, per_class: int = 12) -> Path:
    """Write ``per_class`` images of each of the 10 classes as CIFAR-10 python pickles under ``root``.

    The images are spread over ``data_batch_1..5`` and ``test_batch`` like the official files
    (5/6 train, 1/6 test), with the same dictionary keys; ``batches.meta`` is written too. Their MD5s
    are of course not the official ones. Returns ``root`` (the DataModule's ``root``).
    """
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), per_class)
    rng.shuffle(labels)
    base = rng.integers(0, 200, (10, 3, 1, 1))
    images = (base[labels] + rng.integers(0, 56, (len(labels), 3, 32, 32))).astype(np.uint8)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, (name, part) in enumerate(zip(names, np.array_split(np.arange(len(labels)), 6), strict=True)):
        batch = {
            "batch_label": f"training batch {k + 1} of 5" if k < 5 else "testing batch 1 of 1",
            "labels": labels[part].tolist(),
            "data": images[part].reshape(len(part), 3072),
            "filenames": [f"fake_{i:05d}.png" for i in part],
        }
        with (folder / name).open("wb") as file:
            pickle.dump(batch, file)
    with (folder / "batches.meta").open("wb") as file:
        pickle.dump(
            {"num_cases_per_batch": len(labels) // 6, "label_names": list(CIFAR_CLASSES), "num_vis": 3072},
            file,
        )
    return Path(root)


def _fake_labels(rng: np.random.Generator, n: int, num_classes: int, multi_label: bool) -> np.ndarray:
    """``(n, num_classes)`` 0/1, each row with at least one positive (exactly one unless ``multi_label``)."""
    labels = np.zeros((n, num_classes), dtype=np.uint8)
    labels[np.arange(n), rng.integers(0, num_classes, n)] = 1
    if multi_label:
        labels |= (rng.random((n, num_classes)) < 2 / num_classes).astype(np.uint8)
    return labels


def write_fake_listfile_dataset(
    root: Path,
    num_classes: int,
    multi_label: bool,
    sizes: tuple[int, int, int] = (20, 10, 30),
    image_size: int = 40,
    val: int = 0,
) -> Path:
    """Write JPEGs under ``root/images/`` and the lists ``train.txt``, ``test.txt``, ``database.txt``, and
    ``val.txt`` holding the first ``val`` database lines when ``val`` > 0.

    Args:
        root: data root to create.
        num_classes: labels per line.
        multi_label: several positives a row (else one-hot).
        sizes: images in train, test (queries) and database.
        image_size: side of the square JPEGs in pixels.

    Returns:
        ``root`` (the DataModule's ``root``).
    """
    root = Path(root)
    rng = np.random.default_rng(0)
    for role, count in zip(("train", "test", "database"), sizes, strict=True):
        labels = _fake_labels(rng, count, num_classes, multi_label)
        lines = []
        for i, row in enumerate(labels):
            path = f"images/{role}/{role}_{i:05d}.jpg"
            _write_jpeg(root / path, rng, image_size, tint=int(row.argmax()))
            lines.append(f"{path} {' '.join(map(str, row))}\n")
        (root / f"{role}.txt").write_text("".join(lines))
    if val:
        (root / "val.txt").write_text("".join((root / "database.txt").read_text().splitlines(True)[:val]))
    return root


def write_fake_coco(
    root: Path, images: tuple[int, int] = (40, 30), without_category: int = 3, size: int = 40
) -> Path:
    """Write a COCO 2014 layout: ``train2014/``, ``val2014/`` JPEGs and ``annotations/instances_*2014.json``.

    80 categories with the official id gaps (ids 1–90); ``without_category`` images of each file have no
    annotation (``hashbench prepare coco`` must drop them). Returns ``root``.
    """
    root = Path(root)
    rng = np.random.default_rng(1)
    missing_ids = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}
    categories = [{"id": i, "name": f"category{i}", "supercategory": "thing"} for i in range(1, 91)]
    categories = [c for c in categories if c["id"] not in missing_ids]
    for split, count in zip(("train2014", "val2014"), images, strict=True):
        entries, annotations = [], []
        for i in range(count):
            image_id = 1000 * (split == "val2014") + 3 * i + 1
            file_name = f"COCO_{split}_{image_id:012d}.jpg"
            _write_jpeg(root / split / file_name, rng, size, tint=i)
            entries.append({"id": image_id, "file_name": file_name, "width": size, "height": size})
            if i < without_category:
                continue
            chosen = rng.choice(len(categories), size=rng.integers(1, 4), replace=False)
            for c in chosen:
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "category_id": categories[c]["id"],
                        "bbox": [0, 0, 1, 1],
                        "area": 1.0,
                        "iscrowd": 0,
                    }
                )
        content = {
            "info": {},
            "licenses": [],
            "images": entries,
            "annotations": annotations,
            "categories": categories,
        }
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(content))
    return root


def write_fake_nuswide(root: Path, num_images: int = 80, without_concept: int = 4, size: int = 40) -> Path:
    """Write a NUS-WIDE layout: ``Flickr/<folder>/<id>.jpg``, ``ImageList/Imagelist.txt`` (backslash paths)
    and one ``Groundtruth/AllLabels/Labels_<concept>.txt`` per concept (81, one 0/1 a line).

    Concept ``i`` (alphabetical) is positive with a probability falling with ``i``; every image has one of
    the first 10 (so of the 21 most frequent), except the last ``without_concept`` images, which have no
    concept at all (``hashbench prepare nuswide`` must drop them). Returns ``root``.
    """
    root = Path(root)
    rng = np.random.default_rng(2)
    probability = np.linspace(0.5, 0.02, len(NUSWIDE_CONCEPTS))
    labels = (rng.random((num_images, len(NUSWIDE_CONCEPTS))) < probability).astype(np.uint8)
    labels[np.arange(num_images), rng.integers(0, 10, num_images)] = 1  # the 10 most frequent concepts
    labels[num_images - without_concept :] = 0
    names = []
    for i in range(num_images):
        name = f"{NUSWIDE_CONCEPTS[i % 7]}\\{i:04d}_{1000000 + i}.jpg"
        _write_jpeg(root / "Flickr" / name.replace("\\", "/"), rng, size, tint=i)
        names.append(name)
    (root / "ImageList").mkdir(parents=True, exist_ok=True)
    (root / "ImageList" / "Imagelist.txt").write_text("".join(f"{name}\n" for name in names))
    label_dir = root / "Groundtruth" / "AllLabels"
    label_dir.mkdir(parents=True, exist_ok=True)
    for j, concept in enumerate(NUSWIDE_CONCEPTS):
        (label_dir / f"Labels_{concept}.txt").write_text("".join(f"{v}\n" for v in labels[:, j]))
    return root


def write_fake_imagenet(
    root: Path, num_classes: int = 100, train_per_class: int = 4, val_per_class: int = 2, size: int = 40
) -> Path:
    """Write an ImageNet layout: ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG`` for ``num_classes`` + 2
    classes, and ``imagenet100_classes.txt`` listing the first ``num_classes`` WordNet ids.

    Returns ``root``.
    """
    root = Path(root)
    rng = np.random.default_rng(3)
    wnids = [f"n{1440764 + 17 * k:08d}" for k in range(num_classes + 2)]
    for k, wnid in enumerate(wnids):
        for folder, count in (("train", train_per_class), ("val", val_per_class)):
            for i in range(count):
                _write_jpeg(root / folder / wnid / f"{wnid}_{folder}_{i}.JPEG", rng, size, tint=k)
    (root / "imagenet100_classes.txt").write_text("".join(f"{wnid}\n" for wnid in wnids[:num_classes]))
    return root


MIRFLICKR_LABELS = (  # noqa: SIM905
    "animals baby bird car clouds dog female flower food indoor lake male night people plant_life portrait "
    "river sea sky structures sunset transport tree water"
).split()
"""The 24 potential labels of ``mirflickr25k_annotations_v080``."""
VOC_CLASSES = (  # noqa: SIM905
    "aeroplane bicycle bird boat bottle bus car cat chair cow diningtable dog horse motorbike person "
    "pottedplant sheep sofa train tvmonitor"
).split()


def write_fake_mirflickr(root: Path, num_images: int = 60, unlabelled: int = 3, size: int = 16) -> Path:
    """Write a MIRFlickr-25K layout: ``mirflickr/im1.jpg …``, and in ``mirflickr25k_annotations_v080/`` one
    ``<label>.txt`` per potential label (1-based image numbers, one a line), ``<label>_r1.txt`` relevant-only
    subsets for some labels and a ``README.txt``. The last ``unlabelled`` images have no label.
    Returns ``root``.
    """
    root = Path(root)
    rng = np.random.default_rng(4)
    labels = (rng.random((num_images, len(MIRFLICKR_LABELS))) < 0.1).astype(np.uint8)
    labels[np.arange(num_images), rng.integers(0, len(MIRFLICKR_LABELS), num_images)] = 1
    labels[num_images - unlabelled :] = 0
    for i in range(num_images):
        _write_jpeg(root / "mirflickr" / f"im{i + 1}.jpg", rng, size, tint=i)
    folder = root / "mirflickr25k_annotations_v080"
    folder.mkdir(parents=True, exist_ok=True)
    for j, name in enumerate(MIRFLICKR_LABELS):
        numbers = np.flatnonzero(labels[:, j]) + 1
        (folder / f"{name}.txt").write_text("".join(f"{n}\n" for n in numbers))
        if j % 2 == 0:  # the relevant-only variants: subsets, which prepare must not read
            (folder / f"{name}_r1.txt").write_text("".join(f"{n}\n" for n in numbers[::2]))
    (folder / "README.txt").write_text("MIRFLICKR-25000 annotations: one file per label, image numbers.\n")
    return root


def write_fake_voc(root: Path, num_images: int = 60, unlabelled: int = 3, size: int = 16) -> Path:
    """Write a PASCAL VOC 2012 layout: ``VOCdevkit/VOC2012/JPEGImages/<id>.jpg`` and
    ``ImageSets/Main/<class>_trainval.txt`` (``<id> <1|-1|0>``, 0 = difficult only, ids padded as in the
    devkit). The last ``unlabelled`` images have no 1 (only -1 and 0). Returns ``root``.
    """
    root = Path(root)
    rng = np.random.default_rng(5)
    devkit = root / "VOCdevkit" / "VOC2012"
    values = np.where(rng.random((num_images, len(VOC_CLASSES))) < 0.08, 1, -1)
    values[np.arange(num_images), rng.integers(0, len(VOC_CLASSES), num_images)] = 1
    values[rng.random((num_images, len(VOC_CLASSES))) < 0.05] = 0
    values[num_images - unlabelled :] = np.where(values[num_images - unlabelled :] == 1, 0, -1)
    ids = [f"2008_{i:06d}" for i in range(num_images)]
    for i, image in enumerate(ids):
        _write_jpeg(devkit / "JPEGImages" / f"{image}.jpg", rng, size, tint=i)
    main = devkit / "ImageSets" / "Main"
    main.mkdir(parents=True, exist_ok=True)
    for j, name in enumerate(VOC_CLASSES):
        (main / f"{name}_trainval.txt").write_text(
            "".join(f"{image} {v:2d}\n" for image, v in zip(ids, values[:, j], strict=True))
        )
    return root
