"""The tool subcommands of ``hashbench`` and the top-level parser that lists every subcommand.

Each tool is a typed function; jsonargparse builds its options from the signature and its help from the
docstring (``--flag true`` for a bool, ``'[a, b]'`` or ``--option+ a --option+ b`` for a list). This module
and the tools' modules import nothing heavy: each tool imports its implementation when it runs.

Some parameter names are not options but are filled in here (:data:`INJECTED`): ``command`` receives the
command line itself (recorded in what the tool writes), ``args`` everything after ``--`` (arguments passed
on to other runs), ``resolve`` the LightningCLI's config resolution (for the sweep's check).
"""

from __future__ import annotations

import inspect
import shlex
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from docstring_parser import parse as parse_docstring
from jsonargparse import ActionYesNo, ArgumentParser

from hashbench.cli.subcommands import TRAINING_SUBCOMMANDS

PROG = "hashbench"
DESCRIPTION = (
    "Deep supervised image hashing: train and evaluate (fit, validate, test, predict: a LightningCLI, "
    "`hashbench fit --help` lists its options), prepare datasets, run sweeps, and use a trained model."
)
GROUP_HELP = {"prepare": "Build a dataset's image lists and split files from its official files."}

Tool = Callable[..., Any]
INJECTED = ("command", "args", "resolve")
"""Tool parameters filled in by :func:`run_tool`, not options."""
VARIADIC_POSITIONALS = {"search": "images"}
"""Tool parameters given as one or more plain positional values (``hashbench search RUN a.png b.png``)."""


def _resolve_config(args: list[str]) -> dict[str, Any]:
    """The LightningCLI's config resolution, for the sweep's check (imported only when it runs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # import-time warnings of Lightning's modules
        from hashbench.cli.training import resolve_config

        return resolve_config(args)


def tools() -> dict[str, Tool | dict[str, Tool]]:
    """The typed tool functions by subcommand name; a dict is a group of subcommands."""
    from hashbench.data import prepare
    from hashbench.retrieval import commands as retrieval
    from hashbench.sweeps.command import sweep

    return {
        "prepare": {
            "cifar10": prepare.prepare_cifar10,
            "coco": prepare.prepare_coco,
            "nuswide": prepare.prepare_nuswide,
            "imagenet100": prepare.prepare_imagenet100,
            "mirflickr": prepare.prepare_mirflickr,
            "voc": prepare.prepare_voc,
        },
        "sweep": sweep,
        "index": retrieval.index,
        "search": retrieval.search,
        "serve": retrieval.serve,
    }


def _summary(function: Tool) -> str:
    return (function.__doc__ or "").strip().splitlines()[0] if function.__doc__ else ""


def _function_parser(name: str, function: Tool, positional: bool = True) -> ArgumentParser:
    """The options of one tool, from its signature and docstring: required parameters positional (or
    ``--name`` options when not ``positional``), a bool a flag (``--dry_run``, also ``--dry-run``;
    ``--no_dry_run`` turns it off)."""
    parser = ArgumentParser(description=" ".join((function.__doc__ or "").split("Args:")[0].split()))
    described = {
        param.arg_name: param.description for param in parse_docstring(function.__doc__ or "").params
    }
    signature = inspect.signature(function, eval_str=True)
    flags = [p for p in signature.parameters.values() if p.annotation is bool and p.name not in INJECTED]
    variadic = VARIADIC_POSITIONALS.get(name)
    skip: set[str | int] = {*INJECTED, *(flag.name for flag in flags), *([variadic] if variadic else [])}
    parser.add_function_arguments(function, as_group=False, as_positional=positional, skip=skip)
    for flag in flags:
        spellings = dict.fromkeys([f"--{flag.name}", f"--{flag.name.replace('_', '-')}"])
        parser.add_argument(
            *spellings, action=ActionYesNo, default=flag.default, help=described.get(flag.name)
        )
    if variadic:
        parser.add_argument(variadic, nargs="+", help=described.get(variadic))
    return parser


def build_parser() -> ArgumentParser:
    """``hashbench``'s top-level parser: every subcommand with its one-line help."""
    parser = ArgumentParser(prog=PROG, description=DESCRIPTION, exit_on_error=True)
    subcommands = parser.add_subcommands(dest="subcommand", required=True)
    for name, help_text in TRAINING_SUBCOMMANDS.items():
        subcommands.add_subcommand(name, ArgumentParser(description=help_text), help=help_text)
    for name, tool in tools().items():
        if isinstance(tool, dict):
            group = ArgumentParser(description=GROUP_HELP[name])
            subcommands.add_subcommand(name, group, help=GROUP_HELP[name])
            members = group.add_subcommands(dest="subcommand", required=True)
            for member_name, function in tool.items():
                members.add_subcommand(
                    member_name,
                    _function_parser(member_name, function, positional=False),
                    help=_summary(function),
                )
        else:
            subcommands.add_subcommand(name, _function_parser(name, tool), help=_summary(tool))
    return parser


def run_tool(argv: Sequence[str]) -> None:
    """Run the tool that ``argv`` names (``argv[0]``), or print the top-level help."""
    argv = list(argv)
    own, passed_on = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    config = build_parser().parse_args(own)
    tool: Tool | dict[str, Tool] = tools()[config.subcommand]
    arguments = config[config.subcommand]
    while isinstance(tool, dict):
        tool = tool[arguments.subcommand]
        arguments = arguments[arguments.subcommand]
    values = {key: value for key, value in arguments.as_dict().items() if key != "config"}
    injected = {"command": shlex.join([PROG, *argv]), "args": passed_on, "resolve": _resolve_config}
    parameters = inspect.signature(tool).parameters
    tool(**values, **{name: value for name, value in injected.items() if name in parameters})
