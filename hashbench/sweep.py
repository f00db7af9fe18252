"""``hashbench sweep``'s argparse front end until the CLI builds it from
:func:`hashbench.sweeps.command.sweep` (then this module goes)."""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hashbench.sweeps.command import sweep


def _resolve(args: list[str]) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # import-time warnings of Lightning's modules
        from hashbench.cli.training import resolve_config

        return resolve_config(args)


def main(argv: Sequence[str]) -> None:
    """``hashbench sweep FILE [--local] [--count N] [--seed S] [--root DIR] [--dry-run] [--check]
    [--seeds S …] [--resume] [-- ARGS…]``."""
    argv = list(argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(
        prog="hashbench sweep",
        description=(sweep.__doc__ or "").split("\n\n")[0],
        epilog="ARGS after -- go to every run, before the sweep's parameters "
        "(e.g. -- --trainer.max_epochs 1 --trainer.logger false).",
    )
    parser.add_argument("file", type=Path, help="a W&B sweep file (experiments/sweeps/*.yaml)")
    parser.add_argument("--local", action="store_true", help="run here, without a W&B server")
    parser.add_argument(
        "--count", type=int, help="configurations to run (random/bayes: required; grid: first N)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampler (default 0)")
    parser.add_argument("--root", type=Path, default=Path("runs/sweeps"), help="default: runs/sweeps")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--check", action="store_true", help="resolve every parameter value, run nothing")
    parser.add_argument("--seeds", type=int, nargs="+", help="seed_everything of each run of a configuration")
    parser.add_argument("--resume", action="store_true", help="continue the newest folder of this sweep")
    options = parser.parse_args(own)
    sweep(**vars(options), args=extra, resolve=_resolve)
