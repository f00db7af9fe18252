"""A W&B sweep file, as far as the local runner needs it.

The file is a standard W&B sweep configuration (``wandb sweep FILE`` + ``wandb agent ID`` run it with an
account). A ``seed_everything`` parameter is not a dimension of the search: its values are the seeds each
configuration runs with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from hashbench.errors import UserError
from hashbench.tracking.aggregate import Goal, check_selection_metric

Method = Literal["grid", "random", "bayes"]
METHODS: tuple[Method, ...] = ("grid", "random", "bayes")
ARGS_MACRO = "${args}"
SEED_KEY = "seed_everything"

DISTRIBUTIONS = (
    "int_uniform",
    "uniform",
    "q_uniform",
    "log_uniform",
    "log_uniform_values",
    "q_log_uniform_values",
    "inv_log_uniform_values",
    "normal",
    "q_normal",
    "log_normal",
    "q_log_normal",
)
"""W&B's distributions (``log_uniform`` takes natural-log bounds, ``…_values`` the values themselves)."""


@dataclass(frozen=True)
class Sweep:
    """A W&B sweep file: its searched parameters, the seeds of each configuration, the selection metric.

    Attributes:
        path: the file.
        name: the sweep's ``name`` (default: the file's stem).
        method: grid, random or bayes.
        parameters: dotted config key → W&B parameter spec (``value``, ``values``, ``min``/``max``, …),
            without ``seed_everything``.
        seeds: the ``seed_everything`` values of the file (None when it has none).
        command: the command the W&B agent runs, with ``${args}``.
        metric: the selection metric (a ``val/`` metric), or None.
        goal: whether the metric is maximized or minimized.
    """

    path: Path
    name: str
    method: Method
    parameters: dict[str, dict[str, Any]]
    seeds: list[int] | None
    command: list[str]
    metric: str | None
    goal: Goal


def distribution(key: str, spec: dict[str, Any]) -> str:
    """The parameter's distribution: W&B's name, ``constant`` (``value``) or ``categorical`` (``values``)."""
    if "distribution" in spec:
        name = spec["distribution"]
    elif "value" in spec:
        name = "constant"
    elif "values" in spec:
        name = "categorical"
    elif "min" in spec and "max" in spec:
        bounds_are_ints = all(isinstance(spec[b], int) for b in ("min", "max"))
        name = "int_uniform" if bounds_are_ints else "uniform"
    else:
        raise UserError(f"sweep parameter {key!r} needs value, values, or min and max")
    if name not in (*DISTRIBUTIONS, "constant", "categorical"):
        raise UserError(f"sweep parameter {key!r}: unknown distribution {name!r}")
    return name


def _seeds(path: Path, spec: Any) -> list[int]:
    values = spec.get("values", [spec.get("value")]) if isinstance(spec, dict) else None
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise UserError(f"{path}: {SEED_KEY} takes integer seeds as value or values (e.g. values: [0, 1, 2])")
    return list(values)


def _metric(path: Path, raw: Any) -> tuple[str | None, Goal]:
    if raw is None:
        return None, "maximize"
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise UserError(
            f"{path}: metric is a mapping with a name (e.g. {{name: val/mAP@all, goal: maximize}})"
        )
    goal = raw.get("goal", "maximize")
    if goal not in ("maximize", "minimize"):
        raise UserError(f"{path}: metric goal must be maximize or minimize, got {goal!r}")
    try:
        check_selection_metric(raw["name"])
    except UserError as error:
        raise UserError(f"{path}: {error}") from None
    return raw["name"], goal


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a W&B sweep file (its ``command`` must run ``hashbench … ${args}``)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise UserError(f"cannot read the sweep file {path}: {error}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a sweep file is a YAML mapping")
    method = raw.get("method")
    if method not in METHODS:
        raise UserError(f"{path}: method must be one of {', '.join(METHODS)}, got {method!r}")
    parameters = dict(raw.get("parameters") or {}) if isinstance(raw.get("parameters"), dict) else None
    if not parameters:
        raise UserError(f"{path}: parameters must map dotted config keys to their values")
    seeds = _seeds(path, parameters.pop(SEED_KEY)) if SEED_KEY in parameters else None
    for key, spec in parameters.items():
        if not isinstance(spec, dict):
            raise UserError(f"{path}: parameter {key!r} must be a mapping (value, values, min/max, …)")
        if "parameters" in spec:
            raise UserError(f"{path}: nested parameters are not supported; use dotted keys ({key}.name)")
        kind = distribution(key, spec)
        if method == "grid" and kind not in ("constant", "categorical"):
            raise UserError(f"{path}: grid search needs value or values for {key!r}, not {kind}")
    command = [str(token) for token in raw.get("command") or []]
    if command.count(ARGS_MACRO) != 1 or hashbench_start(command) is None:
        raise UserError(
            f"{path}: command must run `hashbench <subcommand> … {ARGS_MACRO}` "
            f"(e.g. [hashbench, fit, --config, experiments/demo.yaml, {ARGS_MACRO}])"
        )
    metric, goal = _metric(path, raw.get("metric"))
    return Sweep(
        path=path,
        name=str(raw.get("name") or path.stem),
        method=method,
        parameters=parameters,
        seeds=seeds,
        command=command,
        metric=metric,
        goal=goal,
    )


def hashbench_start(command: Sequence[str]) -> int | None:
    """Index of the first argument of ``hashbench`` (or ``python -m hashbench``) in the command."""
    return next((i + 1 for i, token in enumerate(command) if Path(token).name == "hashbench"), None)


def format_args(params: dict[str, Any]) -> list[str]:
    """``${args}`` as the W&B agent writes it: ``--key=value`` with Python's ``str`` of the value."""
    return [f"--{key}={value}" for key, value in params.items()]


def hashbench_args(sweep: Sweep, params: dict[str, Any], before_params: Sequence[str] = ()) -> list[str]:
    """The arguments after ``hashbench`` in the sweep's command, ``before_params`` inserted before
    ``${args}`` (so the sweep's parameters win), ``${args}`` expanded."""
    start = hashbench_start(sweep.command)
    assert start is not None
    args = []
    for token in sweep.command[start:]:
        args += [*before_params, *format_args(params)] if token == ARGS_MACRO else [token]
    return args
