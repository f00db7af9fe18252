"""``hashbench sweep FILE``: the typed entry point (jsonargparse builds its options from the signature).

Imports nothing heavy at module level: ``--dry-run`` and ``--check`` start without torch or Optuna.
"""

from __future__ import annotations

import shlex
import sys
import warnings
from pathlib import Path

from hashbench.errors import UserError
from hashbench.sweeps.check import Resolver, check_sweep
from hashbench.sweeps.spec import Sweep, load_sweep


def sweep(
    file: Path,
    local: bool = False,
    count: int | None = None,
    seed: int = 0,
    root: Path = Path("runs/sweeps"),
    dry_run: bool = False,
    check: bool = False,
    seeds: list[int] | None = None,
    resume: bool = False,
    args: list[str] | None = None,
    *,
    resolve: Resolver | None = None,
) -> None:
    """Run a W&B sweep file's runs on this machine, one after another, or check its parameters.

    Without a W&B server: grid runs every combination of the parameters' values, random and bayes use
    Optuna's RandomSampler and TPESampler on the sweep's validation metric. Each configuration runs once
    per seed; summary.csv lists the runs, aggregate.csv each configuration over its seeds (mean, std,
    95% t interval), the one chosen on the validation metric marked. With a W&B account:
    `wandb sweep FILE` then `wandb agent SWEEP_ID`.

    Args:
        file: A W&B sweep file (experiments/sweeps/*.yaml).
        local: Run here, without a W&B server.
        count: Configurations to run (random, bayes: required; grid: the first N).
        seed: Seed of the sampler (random, bayes); not the runs' seed.
        root: Folder of the sweeps: runs go to ROOT/<sweep name>/<timestamp>/.
        dry_run: Print the commands, run nothing.
        check: Resolve every parameter value with the CLI's config resolution, run nothing.
        seeds: seed_everything of each run of a configuration (e.g. [0,1,2]); replaces the sweep file's
            seed_everything values.
        resume: Continue the newest folder of this sweep under ROOT, skipping the completed runs (a fresh
            folder if it never ran there).
        args: Arguments for every run, before the sweep's parameters (e.g. --trainer.max_epochs 1).
        resolve: The CLI's config resolution (set by the CLI, not an option); needed by check.

    Raises:
        SystemExit: 1 when a check finds problems or a run failed, 130 when interrupted.
    """
    spec = load_sweep(file)
    if check:
        _check(spec, resolve)
        return
    if not local:
        raise UserError(
            f"add --local to run the sweep here; with a W&B account: `wandb sweep {file}` then "
            "`wandb agent <entity/project/sweep id>`"
        )
    if count is not None and count < 1:
        raise UserError("--count must be >= 1")
    if seeds is not None and spec.seeds is not None:
        print(f"--seeds {' '.join(map(str, seeds))} replaces the seed_everything values of {file}")
    run_seeds = seeds if seeds is not None else spec.seeds
    extra = list(args or [])

    from hashbench.sweeps.runner import dry_run as print_commands
    from hashbench.sweeps.runner import run_sweep, sweep_folder
    from hashbench.sweeps.sampling import Search

    search = Search(spec, count, seed)
    if dry_run:
        print_commands(spec, search, run_seeds, root, extra)
        return
    sweep_dir = sweep_folder(root, spec, resume)
    again = ["hashbench", "sweep", str(file), "--local", "--root", str(root), "--seed", str(seed), "--resume"]
    again += ["--count", str(count)] if count is not None else []
    again += ["--seeds", *map(str, seeds)] if seeds is not None else []
    again += ["--", *extra] if extra else []
    code = run_sweep(spec, search, run_seeds, sweep_dir, extra, resume_command=shlex.join(again))
    if code:
        raise SystemExit(code)


def _check(spec: Sweep, resolve: Resolver | None) -> None:
    if resolve is None:
        raise UserError(
            "the check needs the CLI's config resolution: run it as `hashbench sweep FILE --check`"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        problems = check_sweep(spec, resolve)
    for problem in problems:
        print(f"{spec.path}: {problem}", file=sys.stderr)
    if problems:
        raise SystemExit(1)
    print(f"{spec.path}: every parameter value parses and lands under its key")
