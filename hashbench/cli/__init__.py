"""The one ``hashbench`` command line; ``hashbench --help`` lists every subcommand.

* ``fit``, ``validate``, ``test``, ``predict``: a LightningCLI over :class:`~hashbench.module.HashingModule`
  and any retrieval DataModule (:mod:`hashbench.cli.training`), imported only when one of them runs.
* The tools (:mod:`hashbench.cli.commands`): typed functions whose signatures and docstrings jsonargparse
  turns into options and help. Their module imports nothing heavy, so ``--help`` and bad arguments answer
  at once; each command imports what it uses when it runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from hashbench.cli.subcommands import TRAINING_SUBCOMMANDS
from hashbench.errors import UserError


def main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``hashbench`` command: dispatch to the LightningCLI or a tool.

    A :class:`~hashbench.errors.UserError` anywhere is printed as one paragraph with exit code 2.
    """
    argv = list(sys.argv[1:] if args is None else args)
    try:
        if argv[:1] and argv[0] in TRAINING_SUBCOMMANDS:
            from hashbench.cli.training import run_training

            run_training(None if args is None else argv)
        else:
            from hashbench.cli.commands import run_tool

            run_tool(argv)
    except UserError as error:
        print(f"hashbench: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
