"""Seeded split builders shared by the datasets: the published splits, the validation split carved from
the database pool, and the unseen-class restriction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hashbench.errors import UserError

VAL_STREAM = 1
"""Second entropy word of the validation draw: it never reuses the published split's random stream, so
adding a validation split leaves the train / query / database split of a seed as it was."""
UNSEEN_STREAM = 2
"""Second entropy word of the draw of unseen classes (``unseen_classes`` given as a fraction)."""
ROLES = ("train", "query", "database", "val_query", "val_database")
"""The five splits of a retrieval DataModule after :func:`finish_split`."""


@dataclass(frozen=True)
class Split:
    """Positions into the pooled dataset, each sorted ascending."""

    query: np.ndarray
    train: np.ndarray
    rest: np.ndarray


def split_per_class(class_ids: np.ndarray, query_per_class: int, train_per_class: int, seed: int) -> Split:
    """Draw ``query_per_class`` queries and ``train_per_class`` training items from every class.

    Args:
        class_ids: ``(N,)`` integer class of each item.
        query_per_class: queries drawn from each class.
        train_per_class: training items drawn from each class (disjoint from the queries).
        seed: the same seed gives the same split.

    Returns:
        The query, train and remaining positions (the remainder holds every item not drawn).
    """
    if query_per_class < 0 or train_per_class < 0:
        raise ValueError(
            f"per-class counts must be >= 0, got query={query_per_class}, train={train_per_class}"
        )
    rng = np.random.default_rng(seed)
    query, train, rest = [], [], []
    for cls in np.unique(class_ids):
        members = np.flatnonzero(class_ids == cls)
        if len(members) < query_per_class + train_per_class:
            raise UserError(
                f"class {cls} has {len(members)} items, fewer than query_per_class + train_per_class "
                f"= {query_per_class + train_per_class}; lower them"
            )
        members = rng.permutation(members)
        query.append(members[:query_per_class])
        train.append(members[query_per_class : query_per_class + train_per_class])
        rest.append(members[query_per_class + train_per_class :])
    return Split(*(np.sort(np.concatenate(parts)) for parts in (query, train, rest)))


def draw_validation(
    pool: np.ndarray, labels: np.ndarray, size: int, per_class: bool, seed: int, dataset: str
) -> np.ndarray:
    """Seeded validation queries drawn from ``pool``.

    Args:
        pool: ``(P,)`` candidate positions into the pooled dataset.
        labels: ``(N, C)`` 0/1 labels of the pooled dataset.
        size: validation queries per class (``per_class``: single-label data, by each item's class) or in
            total (multi-label data); at least one item of the pool must be left for the validation
            database.
        per_class: draw ``size`` of every class present in the pool.
        seed: the DataModule's seed (drawn on its own stream, :data:`VAL_STREAM`).
        dataset: name used in error messages.

    Returns:
        The drawn positions, sorted ascending.

    Raises:
        UserError: ``size`` < 1, or larger than a class (or the pool) allows.
    """
    asked = f"{size} validation queries {'a class' if per_class else 'in total'}"
    if size < 1:
        raise UserError(f"{dataset}: {asked} asked; the validation size must be >= 1")
    rng = np.random.default_rng((seed, VAL_STREAM))
    pool = np.sort(pool)
    if not per_class:
        if size >= len(pool):
            raise UserError(
                f"{dataset}: {asked} asked, but the database pool (database minus training images and "
                f"test queries) holds only {len(pool)} images and must keep at least one for the validation "
                "database; lower the validation size"
            )
        return np.sort(rng.choice(pool, size=size, replace=False))
    class_ids = labels[pool].argmax(axis=1)
    drawn = []
    for cls in np.unique(class_ids):
        members = pool[class_ids == cls]
        if len(members) <= size:
            raise UserError(
                f"{dataset}: {asked} asked, but class {cls} has only {len(members)} images in the database "
                "pool (database minus training images and test queries) and must keep at least one in the "
                "validation database; lower the validation size"
            )
        drawn.append(rng.choice(members, size=size, replace=False))
    return np.sort(np.concatenate(drawn))


def draw_unseen_classes(unseen: Sequence[int] | float, num_classes: int, seed: int) -> np.ndarray:
    """The unseen classes: the given class indices, or a seeded fraction of the ``num_classes`` classes.

    Raises:
        UserError: an index outside ``[0, num_classes)``, a fraction outside (0, 1), or every class unseen.
    """
    if isinstance(unseen, float):
        count = round(unseen * num_classes)
        if not 0 < unseen < 1 or not 0 < count < num_classes:
            raise UserError(
                f"unseen_classes as a fraction must leave at least one seen and one unseen class of "
                f"{num_classes}, got {unseen}"
            )
        rng = np.random.default_rng((seed, UNSEEN_STREAM))
        return np.sort(rng.choice(num_classes, size=count, replace=False))
    classes = np.unique(np.asarray(list(unseen), dtype=np.int64))
    if not len(classes) or classes.min() < 0 or classes.max() >= num_classes or len(classes) == num_classes:
        raise UserError(
            f"unseen_classes must list class indices in [0, {num_classes}) and leave at least one class "
            f"seen, got {list(unseen)}"
        )
    return classes


def restrict_to_unseen(
    labels: np.ndarray, split: dict[str, np.ndarray], unseen: np.ndarray
) -> dict[str, np.ndarray]:
    """The unseen-class protocol (Sablayrolles et al., 2017): training keeps the items whose labels are all
    seen classes; every other split keeps the items whose labels are all unseen classes. Items with both
    (multi-label) or no label are dropped from every split.

    Args:
        labels: ``(N, C)`` 0/1 labels of the pooled dataset.
        split: positions into the pooled dataset by role.
        unseen: the unseen class indices.
    """
    is_unseen = np.zeros(labels.shape[1], dtype=bool)
    is_unseen[unseen] = True
    positive = labels.astype(bool)
    any_positive = np.asarray(positive.any(axis=1), dtype=bool)
    all_seen: np.ndarray = any_positive & ~(positive & is_unseen).any(axis=1)
    all_unseen: np.ndarray = any_positive & ~(positive & ~is_unseen).any(axis=1)
    return {
        role: positions[(all_seen if role == "train" else all_unseen)[positions]]
        for role, positions in split.items()
    }


def finish_split(
    labels: np.ndarray,
    split: dict[str, np.ndarray],
    *,
    val_size: int,
    per_class: bool,
    seed: int,
    dataset: str,
    val_query: np.ndarray | None = None,
    carve_from_train: bool = False,
) -> dict[str, np.ndarray]:
    """Add the validation split to a published train / query / database split.

    Validation queries come from the database pool: database items that are neither test queries nor
    training images (``carve_from_train``: database items that are not test queries, which then leave the
    training set — for protocols whose database *is* the training set). The validation database is the
    database without the validation queries, so no validation query is ranked against itself. The test
    split is unchanged: validation queries stay ordinary database items for the test.

    Args:
        labels: ``(N, C)`` 0/1 labels of the pooled dataset.
        split: ``train``, ``query`` and ``database`` positions into the pooled dataset.
        val_size: per class (``per_class``) or in total; see :func:`draw_validation`.
        per_class: single-label data, drawn per class.
        seed: the DataModule's seed.
        dataset: name used in error messages.
        val_query: validation queries read from a split file instead of drawn; they are checked.
        carve_from_train: draw from the training images (and remove them from training).

    Returns:
        Positions of the five :data:`ROLES`, each sorted ascending.

    Raises:
        UserError: given validation queries that are not database items, or that are test queries or
            training images; a size the pool cannot hold.
    """
    train, query, database = (np.sort(split[role]) for role in ("train", "query", "database"))
    if val_query is None:
        pool = np.setdiff1d(database, query if carve_from_train else np.union1d(query, train))
        val_query = draw_validation(pool, labels, val_size, per_class, seed, dataset)
    else:
        val_query = np.unique(val_query)
        problems = [
            f"{count} {what}"
            for count, what in (
                (np.setdiff1d(val_query, database).size, "are not database items"),
                (np.intersect1d(val_query, query).size, "are test queries"),
                (0 if carve_from_train else np.intersect1d(val_query, train).size, "are training images"),
            )
            if count
        ]
        if problems:
            raise UserError(
                f"{dataset}: of the {len(val_query)} given validation queries, {' and '.join(problems)}; "
                "validation queries must be database images that are neither test queries nor training "
                "images. Fix the validation list, or delete it to carve one from the database."
            )
        if len(val_query) >= len(database):
            raise UserError(f"{dataset}: the validation queries leave no validation database.")
    if carve_from_train:
        train = np.setdiff1d(train, val_query)
    return {
        "train": train,
        "query": query,
        "database": database,
        "val_query": val_query,
        "val_database": np.setdiff1d(database, val_query),
    }
