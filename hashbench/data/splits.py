"""Seeded split builders shared by the datasets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hashbench.errors import UserError


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
