"""The one ``hashbench`` command line; ``hashbench --help`` lists every subcommand.

* ``fit``, ``validate``, ``test``, ``predict``: a LightningCLI over :class:`~hashbench.module.HashingModule`
  and any retrieval DataModule (:mod:`hashbench.cli.training`), imported only when one of them runs.
* The tools (:mod:`hashbench.cli.commands`): typed functions whose signatures and docstrings jsonargparse
  turns into options and help. Their module imports nothing heavy, so ``--help`` and bad arguments answer
  at once; each command imports what it uses when it runs.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from hashbench.cli.subcommands import TRAINING_SUBCOMMANDS
from hashbench.errors import UserError


@contextmanager
def _long_lived_objects() -> Iterator[None]:
    """Pause the cycle collector while heavy modules import, then freeze what exists (:func:`gc.freeze`).

    Importing Lightning creates millions of objects that live as long as the process (modules,
    functions, classes). Every full collection rescanned them all, and interpreter shutdown once more;
    frozen, they are never rescanned (and forked DataLoader workers share their memory pages).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``hashbench`` command: dispatch to the LightningCLI or a tool.

    A :class:`~hashbench.errors.UserError` anywhere is printed as one paragraph with exit code 2.
    """
    argv = list(sys.argv[1:] if args is None else args)
    try:
        if argv[:1] and argv[0] in TRAINING_SUBCOMMANDS:
            with _long_lived_objects():
                from hashbench.cli.training import run_training
            run_training(None if args is None else argv)
        else:
            from hashbench.cli.commands import run_tool

            run_tool(argv)
    except UserError as error:
        print(f"hashbench: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if args is None:  # the process ends next: its last collection need not scan what the command made
        gc.freeze()
