"""Runs of one configuration over several seeds: mean, spread and 95% t intervals; paired differences on
the same seeds; and the choice of a configuration on a validation metric only."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from hashbench.errors import UserError

Goal = Literal["maximize", "minimize"]
K = TypeVar("K", bound=Hashable)

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` seeds with its sample standard deviation and 95% t interval (None for n = 1)."""

    mean: float
    std: float | None
    n: int
    low: float | None
    high: float | None

    @property
    def half_width(self) -> float | None:
        """Half the interval's width (the ± of ``mean ± h``)."""
        return None if self.high is None else self.high - self.mean

    def __str__(self) -> str:
        spread = f" ± {self.half_width:.4f}" if self.half_width is not None else ""
        return f"{self.mean:.4f}{spread} (n={self.n})"


def estimate(values: Sequence[float | None]) -> Estimate | None:
    """Mean, standard deviation and 95% t interval of the finite ``values``; None when there are none."""
    numbers = [v for v in values if v is not None and math.isfinite(v)]
    if not numbers:
        return None
    n = len(numbers)
    mean = sum(numbers) / n
    if n == 1:
        return Estimate(mean, None, 1, None, None)
    from scipy import stats

    std = math.sqrt(sum((v - mean) ** 2 for v in numbers) / (n - 1))
    if std == 0.0:
        return Estimate(mean, 0.0, n, mean, mean)
    low, high = stats.t.interval(CONFIDENCE, n - 1, loc=mean, scale=std / math.sqrt(n))
    return Estimate(mean, std, n, float(low), float(high))


def paired_difference(
    treated: Mapping[int, float | None], baseline: Mapping[int, float | None]
) -> Estimate | None:
    """``treated - baseline`` on the seeds both have a value for: mean difference and its 95% t interval.

    Args:
        treated: seed → metric of the variant (e.g. a plug-in quantizer).
        baseline: seed → metric of the reference (e.g. the method's original term).
    """
    differences = [
        value - other
        for seed, value in treated.items()
        if value is not None and (other := baseline.get(seed)) is not None
    ]
    return estimate(differences)


def check_selection_metric(metric: str) -> None:
    """Selection reads validation metrics only: nothing is ever chosen on the test queries."""
    if not metric.startswith("val/"):
        raise UserError(
            f"the selection metric must be a validation metric (val/…), got {metric!r}: configurations are "
            "chosen on the validation queries and the test queries only report the choice "
            "(e.g. metric: {name: val/mAP@all, goal: maximize})"
        )


def select(
    candidates: Mapping[K, Sequence[Callable[[str], float | None]]], metric: str, goal: Goal = "maximize"
) -> K | None:
    """The candidate whose mean ``metric`` over its runs is best; None when no candidate has a value.

    Args:
        candidates: candidate (e.g. a λ) → one metric reader per run (name → finite value or None); only
            ``metric`` is read.
        metric: a ``val/`` metric.
        goal: whether larger or smaller is better.
    """
    check_selection_metric(metric)
    means = {
        key: found.mean
        for key, readers in candidates.items()
        if (found := estimate([read(metric) for read in readers])) is not None
    }
    if not means:
        return None
    best = max if goal == "maximize" else min
    return best(means, key=means.__getitem__)
