"""The configurations a sweep runs: the grid in order, or Optuna's samplers for ``random`` and ``bayes``.

``random`` is Optuna's :class:`~optuna.samplers.RandomSampler`, ``bayes`` its
:class:`~optuna.samplers.TPESampler` (a Bayesian optimiser fed with each configuration's mean validation
metric over its seeds). W&B's distributions map onto Optuna's: ``int_uniform`` → IntDistribution,
``uniform``/``q_uniform`` → FloatDistribution (with ``step=q``), ``log_uniform_values`` and
``inv_log_uniform_values`` → FloatDistribution(log=True) (1/x of a log-uniform x is log-uniform),
``log_uniform`` the same on ``exp`` of its bounds, ``q_log_uniform_values`` rounded to ``q`` after the
draw; ``values`` → CategoricalDistribution. The unbounded normal distributions and ``probabilities`` have
no Optuna counterpart: a local sweep refuses them (``wandb agent`` still runs them).
"""

from __future__ import annotations

import math
from itertools import product
from typing import TYPE_CHECKING, Any

from hashbench.errors import UserError
from hashbench.sweeps.spec import Sweep, distribution
from hashbench.tracking.aggregate import Goal

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.trial import Trial


def grid(parameters: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every combination, the last parameter varying fastest."""
    choices = [spec["values"] if "values" in spec else [spec["value"]] for spec in parameters.values()]
    return [dict(zip(parameters, combination, strict=True)) for combination in product(*choices)]


def optuna_distribution(key: str, spec: dict[str, Any]) -> BaseDistribution:
    """The Optuna distribution of a W&B parameter spec (not for ``value``)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    kind = distribution(key, spec)
    if kind == "categorical":
        if "probabilities" in spec:
            raise UserError(f"sweep parameter {key!r}: probabilities are not supported locally; drop them")
        return CategoricalDistribution(list(spec["values"]))
    if kind == "int_uniform":
        return IntDistribution(int(spec["min"]), int(spec["max"]))
    if kind in ("uniform", "q_uniform"):
        return FloatDistribution(
            spec["min"], spec["max"], step=spec.get("q", 1) if kind == "q_uniform" else None
        )
    if kind in ("log_uniform_values", "inv_log_uniform_values", "q_log_uniform_values"):
        return FloatDistribution(spec["min"], spec["max"], log=True)
    if kind == "log_uniform":
        return FloatDistribution(math.exp(spec["min"]), math.exp(spec["max"]), log=True)
    raise UserError(
        f"sweep parameter {key!r}: the {kind} distribution is not supported by local sweeps; give min and "
        "max (uniform, log_uniform_values) or values"
    )


class Search:
    """The configurations of a sweep, one at a time: :meth:`ask` the next, :meth:`tell` its result.

    Args:
        sweep: the sweep file.
        count: how many configurations (grid: the first ``count``, as ``wandb agent --count``; random and
            bayes: required).
        seed: seed of the sampler (random, bayes).
    """

    def __init__(self, sweep: Sweep, count: int | None, seed: int = 0) -> None:
        self.sweep = sweep
        if sweep.method == "grid":
            combinations = grid(sweep.parameters)
            self.total = len(combinations) if count is None else min(count, len(combinations))
            self._grid = combinations[: self.total]
            return
        if count is None:
            raise UserError(f"a {sweep.method} sweep runs until stopped: give --count N to run it locally")
        self.total = count
        self._fixed = {k: s["value"] for k, s in sweep.parameters.items() if distribution(k, s) == "constant"}
        self._distributions = {
            key: optuna_distribution(key, spec)
            for key, spec in sweep.parameters.items()
            if key not in self._fixed
        }
        self._study = _study(sweep.method, sweep.goal, seed)
        self._trial: Trial | None = None

    def ask(self, index: int) -> dict[str, Any]:
        """The ``index``-th configuration (asked in order, each once): dotted key → value."""
        if self.sweep.method == "grid":
            return self._grid[index]
        self._trial = self._study.ask(self._distributions)
        drawn = self._trial.params
        for key, spec in self.sweep.parameters.items():
            if distribution(key, spec) == "q_log_uniform_values":
                drawn[key] = round(drawn[key] / spec.get("q", 1)) * spec.get("q", 1)
        return {key: self._fixed[key] if key in self._fixed else drawn[key] for key in self.sweep.parameters}

    def tell(self, value: float | None) -> None:
        """The last configuration's objective (its mean validation metric), None when it has none."""
        if self.sweep.method == "grid" or self._trial is None:
            return
        from optuna.trial import TrialState

        if value is None:
            self._study.tell(self._trial, state=TrialState.FAIL)
        else:
            self._study.tell(self._trial, value)
        self._trial = None


def _study(method: str, goal: Goal, seed: int) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = (
        optuna.samplers.TPESampler(seed=seed) if method == "bayes" else optuna.samplers.RandomSampler(seed)
    )
    return optuna.create_study(sampler=sampler, direction=goal)
