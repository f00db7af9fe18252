"""``hashbench sweep FILE --check``: every parameter value through the CLI's config resolution."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from typing import Any

from hashbench.errors import UserError
from hashbench.sweeps.spec import SEED_KEY, Sweep, distribution, hashbench_args
from hashbench.tracking.describe import flatten_config

CONFIG_KEY = "config"
"""A parameter whose values are config files (``--config=FILE`` after the command's): each must resolve."""

Resolver = Callable[[list[str]], dict[str, Any]]
"""``hashbench <args>`` → the resolved config as plain data; raises UserError when the args do not parse
(the CLI's ``hashbench.cli.training.resolve_config``)."""


def probe_values(key: str, spec: dict[str, Any]) -> list[Any]:
    """The values a check tries: each of ``values``, or the bounds of a distribution (its mean if none)."""
    kind = distribution(key, spec)
    if kind == "constant":
        return [spec["value"]]
    if kind == "categorical":
        return list(spec["values"])
    if kind == "log_uniform":
        return [math.exp(spec["min"]), math.exp(spec["max"])]
    if "min" in spec:
        return [spec["min"], spec["max"]]
    return [spec.get("mu", 0.0)]


def _same(resolved: Any, value: Any) -> bool:
    if isinstance(resolved, bool) or isinstance(value, bool):
        return resolved == value or str(resolved) == str(value)
    if isinstance(resolved, int | float) and isinstance(value, int | float):
        return math.isclose(resolved, value, rel_tol=1e-9)
    return str(resolved) == str(value) or str(resolved).endswith(f".{value}")


def check_sweep(sweep: Sweep, resolve: Resolver) -> list[str]:
    """Resolve every parameter value (and the seeds) as the agent would pass it; the problems found.

    A problem is reported when the CLI rejects ``--key=value`` (a misspelt key, a wrong type, an unknown
    class), when the key is not a key of the resolved config (so a sweep's parameters and a run's logged
    config would not line up), or when the value did not land under the key. A ``config`` parameter names
    config files: each must resolve.
    """
    probes = [(key, value) for key, spec in sweep.parameters.items() for value in probe_values(key, spec)]
    probes += [(SEED_KEY, seed) for seed in sweep.seeds or []]
    problems = []
    for key, value in probes:
        try:
            config = resolve(hashbench_args(sweep, {key: value}))
        except UserError as error:
            problems.append(f"{key}={value}: {error}")
            continue
        flat = flatten_config(config)
        if key == CONFIG_KEY:  # a config file: it resolves, and it is not a key of the config it makes
            continue
        if key not in flat:
            first, last = key.split(".")[0], key.split(".")[-1]
            same_ends = [k for k in flat if k.startswith(f"{first}.") and k.endswith(f".{last}")]
            close = same_ends or difflib.get_close_matches(key, list(flat), n=1, cutoff=0.5)
            hint = f"; the resolved config names it {close[0]!r}" if close else ""
            problems.append(f"{key}: not a key of the resolved config{hint}")
        elif not _same(flat[key], value):
            problems.append(f"{key}={value}: resolved to {flat[key]!r}")
    return problems
