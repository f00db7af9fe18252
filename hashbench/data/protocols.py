"""Names of the evaluation protocols (no heavy imports: the command line's option types use them)."""

from __future__ import annotations

from typing import Literal

Protocol = Literal["paper", "paper_db_with_train", "official"]
"""CIFAR-10: ``paper`` (1,000 queries, 5,000 training images, the other 54,000 are the database),
``paper_db_with_train`` (the database holds the training images too: 59,000), ``official`` (the official
50,000 training images are training set and database, the 10,000 test images the queries)."""
PROTOCOLS: tuple[Protocol, ...] = ("paper", "paper_db_with_train", "official")
