"""The tool subcommands of ``hashbench`` and the top-level parser that lists every subcommand.

Each tool is a typed function; jsonargparse builds its options from the signature and its help from the
docstring. This module imports nothing heavy: each tool imports its implementation when it runs.
"""

from __future__ import annotations

import importlib
import inspect
import shlex
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
    "sweep": ("hashbench.sweep", "Run a W&B sweep file's runs on this machine, or check its parameters."),
}
"""Tools that still parse their own arguments: module and one-line help."""

GROUP_HELP = {"prepare": "Build a dataset's image lists and split files from its official files."}

Tool = Callable[..., Any]
RECORDS_COMMAND = "command"
"""A tool parameter that receives the command line itself (not an option)."""


def prepare_tools() -> dict[str, Tool]:
    """``hashbench prepare <dataset>``: one typed function per dataset."""
    from hashbench.data import prepare

    return {
        "cifar10": prepare.prepare_cifar10,
        "coco": prepare.prepare_coco,
        "nuswide": prepare.prepare_nuswide,
        "imagenet100": prepare.prepare_imagenet100,
        "mirflickr": prepare.prepare_mirflickr,
        "voc": prepare.prepare_voc,
    }


def tools() -> dict[str, Tool | dict[str, Tool]]:
    """The typed tool functions by subcommand name; a dict is a group of subcommands."""
    return {"prepare": prepare_tools()}


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
    for name, tool in tools().items():
        if isinstance(tool, dict):
            group = ArgumentParser(description=GROUP_HELP[name])
            subcommands.add_subcommand(name, group, help=GROUP_HELP[name])
            members = group.add_subcommands(dest="subcommand", required=True)
            for member_name, function in tool.items():
                members.add_subcommand(member_name, _function_parser(function), help=_first_line(function))
        else:
            subcommands.add_subcommand(name, _function_parser(tool), help=_first_line(tool))
    return parser


def _function_parser(function: Tool) -> ArgumentParser:
    parser = ArgumentParser(description=" ".join((function.__doc__ or "").split("Args:")[0].split()))
    parser.add_function_arguments(function, as_group=False, skip={RECORDS_COMMAND})
    return parser


def run_tool(argv: Sequence[str]) -> None:
    """Run the tool that ``argv`` names (``argv[0]``), or print the top-level help."""
    if argv[:1] and argv[0] in ARGPARSE_TOOLS:
        module = importlib.import_module(ARGPARSE_TOOLS[argv[0]][0])
        module.main(list(argv[1:]))
        return
    parser = build_parser()
    config = parser.parse_args(list(argv))
    tool: Tool | dict[str, Tool] = tools()[config.subcommand]
    arguments = config[config.subcommand]
    while isinstance(tool, dict):
        tool = tool[arguments.subcommand]
        arguments = arguments[arguments.subcommand]
    values = {key: value for key, value in arguments.as_dict().items() if key != "config"}
    if RECORDS_COMMAND in inspect.signature(tool).parameters:
        values[RECORDS_COMMAND] = shlex.join([PROG, *argv])
    tool(**values)
