"""``hashbench sweep FILE --local``: a W&B sweep file's runs on this machine, one by one, no W&B server.

The file is a standard W&B sweep configuration (``wandb sweep FILE`` + ``wandb agent ID`` run it with an
account). Locally, ``method: grid`` runs every combination of the parameters' ``values`` (the first
``--count`` of them if given, as ``wandb agent --count``); ``random`` draws ``--count`` combinations;
``bayes`` has no server to model the results, so it draws at random too. Each run is the sweep's own
``command`` (``hashbench fit --config … ${args}``) in a subprocess, with ``${args}`` formatted as the W&B
agent does (``--key=value``), so a failed run does not stop the sweep. Layout::

    <root>/<sweep name>/<timestamp>/
        sweep.yaml                  the sweep file as run
        summary.csv                 one row per run: status, parameters, description, final metrics
        000_<params>/output.log     the run's stdout and stderr
        000_<params>/<timestamp>/   the run folder (config.yaml, run.json, metrics.json, …)
"""

from __future__ import annotations

import argparse
import csv
import difflib
import math
import os
import random
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import yaml

from hashbench.errors import UserError
from hashbench.runs import RunFolder, fresh_dir, safe_name
from hashbench.runs.dirs import RUN_DIR_ENV
from hashbench.tracking.describe import flatten_config

METHODS = ("grid", "random", "bayes")
ARGS_MACRO = "${args}"

_Sampler = Callable[[dict[str, Any], random.Random], Any]


def _quantized(value: float, spec: dict[str, Any]) -> float:
    q = spec.get("q", 1)
    return round(value / q) * q


_DISTRIBUTIONS: dict[str, _Sampler] = {
    "int_uniform": lambda s, r: r.randint(int(s["min"]), int(s["max"])),
    "uniform": lambda s, r: r.uniform(s["min"], s["max"]),
    "q_uniform": lambda s, r: _quantized(r.uniform(s["min"], s["max"]), s),
    "log_uniform": lambda s, r: math.exp(r.uniform(s["min"], s["max"])),
    "log_uniform_values": lambda s, r: math.exp(r.uniform(math.log(s["min"]), math.log(s["max"]))),
    "q_log_uniform_values": lambda s, r: _quantized(
        math.exp(r.uniform(math.log(s["min"]), math.log(s["max"]))), s
    ),
    "inv_log_uniform_values": lambda s, r: (
        1.0 / math.exp(r.uniform(math.log(1.0 / s["max"]), math.log(1.0 / s["min"])))
    ),
    "normal": lambda s, r: r.gauss(s.get("mu", 0.0), s.get("sigma", 1.0)),
    "q_normal": lambda s, r: _quantized(r.gauss(s.get("mu", 0.0), s.get("sigma", 1.0)), s),
    "log_normal": lambda s, r: r.lognormvariate(s.get("mu", 0.0), s.get("sigma", 1.0)),
    "q_log_normal": lambda s, r: _quantized(r.lognormvariate(s.get("mu", 0.0), s.get("sigma", 1.0)), s),
}
"""W&B's distributions, sampled as W&B defines them (``log_uniform`` takes natural-log bounds)."""


@dataclass(frozen=True)
class Sweep:
    """A W&B sweep file, as far as the local runner needs it."""

    path: Path
    name: str
    method: str
    parameters: dict[str, dict[str, Any]]
    command: list[str]
    metric: str | None


def _distribution(key: str, spec: dict[str, Any]) -> str:
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
    if name not in (*_DISTRIBUTIONS, "constant", "categorical"):
        raise UserError(f"sweep parameter {key!r}: unknown distribution {name!r}")
    return name


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
    parameters = raw.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise UserError(f"{path}: parameters must map dotted config keys to their values")
    for key, spec in parameters.items():
        if not isinstance(spec, dict):
            raise UserError(f"{path}: parameter {key!r} must be a mapping (value, values, min/max, …)")
        if "parameters" in spec:
            raise UserError(f"{path}: nested parameters are not supported; use dotted keys ({key}.name)")
        distribution = _distribution(key, spec)
        if method == "grid" and distribution not in ("constant", "categorical"):
            raise UserError(f"{path}: grid search needs value or values for {key!r}, not {distribution}")
    command = [str(token) for token in raw.get("command") or []]
    if command.count(ARGS_MACRO) != 1 or _hashbench_start(command) is None:
        raise UserError(
            f"{path}: command must run `hashbench <subcommand> … {ARGS_MACRO}` "
            f"(e.g. [hashbench, fit, --config, experiments/demo.yaml, {ARGS_MACRO}])"
        )
    metric = raw.get("metric")
    return Sweep(
        path=path,
        name=str(raw.get("name") or path.stem),
        method=method,
        parameters=parameters,
        command=command,
        metric=metric.get("name") if isinstance(metric, dict) else None,
    )


def _hashbench_start(command: Sequence[str]) -> int | None:
    """Index of the first argument of ``hashbench`` (or ``python -m hashbench``) in the command."""
    return next((i + 1 for i, token in enumerate(command) if Path(token).name == "hashbench"), None)


def grid(parameters: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every combination, the last parameter varying fastest."""
    choices = [spec["values"] if "values" in spec else [spec["value"]] for spec in parameters.values()]
    return [dict(zip(parameters, combination, strict=True)) for combination in product(*choices)]


def sample(parameters: dict[str, dict[str, Any]], rng: random.Random) -> dict[str, Any]:
    """One random combination: ``values`` uniformly (or by ``probabilities``), distributions as W&B's."""
    params = {}
    for key, spec in parameters.items():
        distribution = _distribution(key, spec)
        if distribution == "constant":
            params[key] = spec["value"]
        elif distribution == "categorical":
            params[key] = rng.choices(spec["values"], weights=spec.get("probabilities"))[0]
        else:
            params[key] = _DISTRIBUTIONS[distribution](spec, rng)
    return params


def combinations(sweep: Sweep, count: int | None, seed: int = 0) -> list[dict[str, Any]]:
    """The runs of the sweep: the grid (its first ``count``), or ``count`` random draws."""
    if sweep.method == "grid":
        runs = grid(sweep.parameters)
        return runs if count is None else runs[:count]
    if count is None:
        raise UserError(f"a {sweep.method} sweep runs until stopped: give --count N to run it locally")
    rng = random.Random(seed)
    return [sample(sweep.parameters, rng) for _ in range(count)]


def format_args(params: dict[str, Any]) -> list[str]:
    """``${args}`` as the W&B agent writes it: ``--key=value`` with Python's ``str`` of the value."""
    return [f"--{key}={value}" for key, value in params.items()]


def hashbench_args(sweep: Sweep, params: dict[str, Any], before_params: Sequence[str] = ()) -> list[str]:
    """The arguments after ``hashbench`` in the sweep's command, ``before_params`` inserted before
    ``${args}`` (so the sweep's parameters win), ``${args}`` expanded."""
    start = _hashbench_start(sweep.command)
    assert start is not None
    args = []
    for token in sweep.command[start:]:
        args += [*before_params, *format_args(params)] if token == ARGS_MACRO else [token]
    return args


def _short(value: Any) -> str:
    """``hashbench.quantizers.HSWD`` → ``HSWD``; numbers as they are."""
    return value.rsplit(".", 1)[-1] if isinstance(value, str) else str(value)


def run_label(index: int, params: dict[str, Any]) -> str:
    """``003_quantizer-HSWD_quantization_weight-0.1``: the index and the parameters' short names."""
    parts = [f"{key.rsplit('.', 1)[-1]}-{_short(value)}" for key, value in params.items()]
    return safe_name("_".join([f"{index:03d}", *parts]))[:120]


# ---------------------------------------------------------------------------------------------- check
def _probe_values(key: str, spec: dict[str, Any]) -> list[Any]:
    distribution = _distribution(key, spec)
    if distribution == "constant":
        return [spec["value"]]
    if distribution == "categorical":
        return list(spec["values"])
    if distribution == "log_uniform":
        return [math.exp(spec["min"]), math.exp(spec["max"])]
    if "min" in spec:
        return [spec["min"], spec["max"]]
    return [spec.get("mu", 0.0)]


def _resolved(args: list[str]) -> tuple[dict[str, Any] | None, str]:
    """The config ``hashbench <args>`` resolves, or the CLI's explanation of why it does not parse."""
    from hashbench.cli.training import resolve_config

    try:
        return resolve_config(args), ""
    except UserError as error:
        return None, str(error)


def _same(resolved: Any, value: Any) -> bool:
    if isinstance(resolved, bool) or isinstance(value, bool):
        return resolved == value or str(resolved) == str(value)
    if isinstance(resolved, int | float) and isinstance(value, int | float):
        return math.isclose(resolved, value, rel_tol=1e-9)
    return str(resolved) == str(value) or str(resolved).endswith(f".{value}")


def check_sweep(sweep: Sweep) -> list[str]:
    """Parse every parameter value with the real CLI parser, as the agent would pass it.

    A problem is reported when the parser rejects ``--key=value`` (a misspelt key, a wrong type, an
    unknown class), when the key is not a key of the resolved config (so a sweep's parameters and a
    run's logged config would not line up), or when the value did not land under the key.
    """
    problems = []
    for key, spec in sweep.parameters.items():
        for value in _probe_values(key, spec):
            config, error = _resolved(hashbench_args(sweep, {key: value}))
            if config is None:
                problems.append(f"{key}={value}: {error}")
                continue
            flat = flatten_config(config)
            if key not in flat:
                first, last = key.split(".")[0], key.split(".")[-1]
                same_ends = [k for k in flat if k.startswith(f"{first}.") and k.endswith(f".{last}")]
                close = same_ends or difflib.get_close_matches(key, list(flat), n=1, cutoff=0.5)
                hint = f"; the resolved config names it {close[0]!r}" if close else ""
                problems.append(f"{key}: not a key of the resolved config{hint}")
            elif not _same(flat[key], value):
                problems.append(f"{key}={value}: resolved to {flat[key]!r}")
    return problems


# ------------------------------------------------------------------------------------------------ run
def _final_metrics(run_dir: Path | None) -> dict[str, Any]:
    metrics = RunFolder(run_dir).metrics if run_dir else {}
    return {key: value for key, value in metrics.items() if key.startswith(("val/", "test/"))}


def _description(run_dir: Path | None) -> dict[str, Any]:
    run = RunFolder(run_dir).description if run_dir else {}
    return {key: run.get(key) for key in ("method", "quantizer", "bits", "dataset")}


def _write_summary(path: Path, rows: list[dict[str, Any]]) -> None:
    fields: dict[str, None] = {}
    for row in rows:
        fields.update(dict.fromkeys(row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(rows)


def _metric_name(sweep: Sweep, rows: list[dict[str, Any]]) -> str | None:
    if sweep.metric:
        return sweep.metric
    return next((key for row in rows for key in row if key.startswith(("test/mAP@", "val/mAP@"))), None)


def _print_summary(sweep: Sweep, rows: list[dict[str, Any]], summary: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    metric = _metric_name(sweep, rows)
    table = Table(title=f"sweep {sweep.name}")
    for column in ("run", "status", *sweep.parameters, *([metric] if metric else [])):
        table.add_column(column.rsplit(".", 1)[-1] if column in sweep.parameters else column)
    for row in rows:
        value = row.get(metric) if metric else None
        cells = [row["run"], row["status"], *(_short(row[key]) for key in sweep.parameters)]
        table.add_row(*cells, *([f"{value:.4f}" if isinstance(value, float) else ""] if metric else []))
    Console().print(table)
    print(f"summary: {summary}")


def run_sweep(
    sweep: Sweep, runs: list[dict[str, Any]], root: Path, extra: Sequence[str], dry_run: bool = False
) -> int:
    """Run each combination as ``python -m hashbench …`` in a subprocess and write ``summary.csv``.

    Returns 0 when every run succeeded, 1 when some failed, 130 when interrupted.
    """
    sweep_dir = root / safe_name(sweep.name) / "<timestamp>" if dry_run else fresh_dir(root, sweep.name)
    if not dry_run:
        (sweep_dir / "sweep.yaml").write_text(sweep.path.read_text())
    env = {key: value for key, value in os.environ.items() if key != RUN_DIR_ENV}
    env["PYTHONUNBUFFERED"] = "1"  # output.log follows the run
    rows: list[dict[str, Any]] = []
    summary = sweep_dir / "summary.csv"
    for index, params in enumerate(runs):
        label = run_label(index, params)
        own = ["--trainer.default_root_dir", str(sweep_dir), "--run_name", label, *extra]
        command = [sys.executable, "-m", "hashbench", *hashbench_args(sweep, params, own)]
        if dry_run:
            print(shlex.join(command))
            continue
        print(f"[{index + 1}/{len(runs)}] {label}", flush=True)
        (sweep_dir / label).mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            with (sweep_dir / label / "output.log").open("w") as log:
                code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
        except KeyboardInterrupt:
            print(f"interrupted: {summary} lists the runs that finished", file=sys.stderr)
            return 130
        seconds = time.monotonic() - started
        run_dirs = RunFolder.find(sweep_dir / label)
        run_dir = run_dirs[-1].path if run_dirs else None
        metrics = _final_metrics(run_dir)
        status = "ok" if code == 0 else f"failed (exit {code})"
        rows.append(
            {
                "run": label,
                "status": status,
                "seconds": round(seconds, 1),
                "run_dir": str(run_dir or ""),
                **params,
                **_description(run_dir),
                **metrics,
            }
        )
        _write_summary(summary, rows)
        print(f"    {status} in {seconds:.0f}s; log: {sweep_dir / label / 'output.log'}", flush=True)
    if dry_run:
        return 0
    _print_summary(sweep, rows, summary)
    return 0 if all(row["status"] == "ok" for row in rows) else 1


def main(argv: Sequence[str]) -> None:
    """``hashbench sweep FILE --local [--count N] [--seed S] [--root DIR] [--dry-run] [-- ARGS…]``."""
    argv = list(argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(
        prog="hashbench sweep",
        usage="hashbench sweep FILE [--local] [--count N] [--seed S] [--root DIR] [--dry-run] [--check] "
        "[-- ARGS ...]",
        description="Run a W&B sweep file's runs on this machine, one after another, with no W&B server, "
        "and write summary.csv. With a W&B account: `wandb sweep FILE` then `wandb agent SWEEP_ID`.",
        epilog="ARGS after -- go to every run, before the sweep's parameters "
        "(e.g. -- --trainer.max_epochs 1 --trainer.logger false).",
    )
    parser.add_argument("file", type=Path, help="a W&B sweep file (experiments/sweeps/*.yaml)")
    parser.add_argument("--local", action="store_true", help="run here, without a W&B server")
    parser.add_argument("--count", type=int, help="runs to make (random/bayes: required; grid: the first N)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random draws (default 0)")
    parser.add_argument("--root", type=Path, default=Path("runs/sweeps"), help="default: runs/sweeps")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument(
        "--check", action="store_true", help="parse every parameter value with the CLI parser, run nothing"
    )
    args = parser.parse_args(own)
    sweep = load_sweep(args.file)
    if args.check:
        problems = check_sweep(sweep)
        for problem in problems:
            print(f"{sweep.path}: {problem}", file=sys.stderr)
        if problems:
            raise SystemExit(1)
        print(f"{sweep.path}: every parameter value parses and lands under its key")
        return
    if not args.local:
        raise UserError(
            "add --local to run the sweep here; with a W&B account: "
            f"`wandb sweep {args.file}` then `wandb agent <entity/project/sweep id>`"
        )
    if args.count is not None and args.count < 1:
        raise UserError("--count must be >= 1")
    if sweep.method == "bayes":
        print("bayes: no W&B server models the results here, drawing the combinations at random")
    runs = combinations(sweep, args.count, args.seed)
    raise SystemExit(run_sweep(sweep, runs, args.root, extra, dry_run=args.dry_run))
