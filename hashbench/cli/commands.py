"""The tool subcommands of ``hashbench`` and the top-level parser that lists every subcommand.

Each tool is a typed function; jsonargparse builds its options from the signature and its help from the
docstring. This module imports nothing heavy: each tool imports its implementation when it runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from jsonargparse import ArgumentParser

from hashbench.cli import TRAINING_SUBCOMMANDS

PROG = "hashbench"
DESCRIPTION = (
    "Deep supervised image hashing: train and evaluate (fit, validate, test, predict: a LightningCLI, "
    "`hashbench fit --help` lists its options), prepare datasets, run sweeps, and use a trained model."
)

ARGPARSE_TOOLS = {
    "prepare": ("hashbench.data.prepare", "Build a dataset's image lists and split files."),
    "sweep": ("hashbench.sweep", "Run a W&B sweep file's runs on this machine, or check its parameters."),
}
"""Tools that still parse their own arguments: module and one-line help."""

Tool = Callable[..., None]


def tools() -> dict[str, Tool]:
    """The typed tool functions by subcommand name."""
    return {}


def _first_line(function: Tool) -> str:
    return (function.__doc__ or "").strip().splitlines()[0] if function.__doc__ else ""


def build_parser() -> ArgumentParser:
    """``hashbench``'s top-level parser: every subcommand with its one-line help."""
    parser = ArgumentParser(prog=PROG, description=DESCRIPTION, exit_on_error=True)
    subcommands = parser.add_subcommands(dest="subcommand", required=True)
    for name, help_text in TRAINING_SUBCOMMANDS.items():
        subcommands.add_subcommand(name, ArgumentParser(description=help_text), help=help_text)
    for name, (_, help_text) in ARGPARSE_TOOLS.items():
        subcommands.add_subcommand(name, ArgumentParser(description=help_text), help=help_text)
    for name, function in tools().items():
        sub = ArgumentParser(description=(function.__doc__ or "").strip())
        sub.add_function_arguments(function, as_positional=True)
        subcommands.add_subcommand(name, sub, help=_first_line(function))
    return parser


def run_tool(argv: Sequence[str]) -> None:
    """Run the tool that ``argv`` names (``argv[0]``), or print the top-level help."""
    if argv[:1] and argv[0] in ARGPARSE_TOOLS:
        module = importlib.import_module(ARGPARSE_TOOLS[argv[0]][0])
        module.main(list(argv[1:]))
        return
    parser = build_parser()
    config = parser.parse_args(list(argv))
    name = config.subcommand
    arguments: dict[str, Any] = config[name].as_dict()
    arguments.pop("config", None)
    tools()[name](**arguments)
