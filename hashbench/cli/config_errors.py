"""Short, actionable messages for configuration errors, with suggestions for misspelt keys and classes."""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Any, NoReturn, get_args

import yaml
from jsonargparse import ActionConfigFile, ArgumentParser
from lightning.pytorch.cli import LightningArgumentParser

_CLASS_PROBLEM = re.compile(
    r"Problem with given class_path '([\w.]+)':\s*(.*?)(?=\n\s*- Expected|\n\s*Given value|\Z)", re.S
)
_OPTION_NOT_ACCEPTED = re.compile(r"Option '([\w.]+)' is not accepted")
_UNRECOGNIZED = re.compile(r"unrecognized arguments: (--[\w.]+)")
_NOT_ACCEPTED_KEY = re.compile(r"does not accept option '([\w.]+)'")
_BAD_CLASS_NAME = re.compile(r'Parser key "([\w.]+)":.*?Expected a dot import path string: ([\w.]+)', re.S)
_PARSER_KEY = re.compile(r'^Parser key "([\w.]+)":\s*', re.S)


def _did_you_mean(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=3, cutoff=0.6)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _keys(parser: ArgumentParser) -> list[str]:
    return [
        a.dest
        for a in parser._actions
        if a.dest and a.dest not in ("help", "config") and not a.dest.endswith(".help")
    ]


def _class_options(class_path: str) -> list[str]:
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return []
    return [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "args", "kwargs")]


def _subclass_names(parser: ArgumentParser, key: str) -> list[str]:
    action = next((a for a in parser._actions if a.dest == key), None)
    names: set[str] = set()
    for base in get_args(getattr(action, "_typehint", None)) or [getattr(action, "_typehint", None)]:
        if inspect.isclass(base):
            pending = [base]
            while pending:
                cls = pending.pop()
                pending.extend(cls.__subclasses__())
                if cls is not base and cls.__module__.startswith("hashbench"):
                    names.add(cls.__name__)
    return sorted(names)


def explain(parser: ArgumentParser, message: str) -> str:
    """Turn a jsonargparse error message into one paragraph that says what is wrong and how to fix it."""
    if match := _BAD_CLASS_NAME.search(message):
        key, name = match.groups()
        known = _subclass_names(parser, key)
        return f"{key}: unknown class {name!r}.{_did_you_mean(name, known)} Known: {', '.join(known)}."
    if match := _CLASS_PROBLEM.search(message):
        class_path, problem = match.groups()
        key = m.group(1) if (m := _PARSER_KEY.match(message)) else "value"
        if option := _OPTION_NOT_ACCEPTED.search(problem):
            options = _class_options(class_path)
            return (
                f"{key} ({class_path}) has no option {option.group(1)!r}."
                f"{_did_you_mean(option.group(1), options)} Its options: {', '.join(options)}."
            )
        return _tidy(f"{key} ({class_path}): " + " ".join(problem.split()))
    for pattern in (_UNRECOGNIZED, _NOT_ACCEPTED_KEY):
        if match := pattern.search(message):
            key = match.group(1).lstrip("-")
            return f"unknown option {key!r}.{_did_you_mean(key, _keys(parser))}"
    lines = (line.strip() for line in message.splitlines() if not line.strip().startswith("Given value"))
    return _tidy(" ".join(lines))


def _tidy(text: str) -> str:
    """``Parser key "a.b": Expected a <class 'float'>`` → ``a.b: expected a float``."""
    text = re.sub(r"<class '(?:\w+\.)*(\w+)'>", r"\1", text)
    text = re.sub(r'Parser key "([\w.]+)":\s*', r"\1: ", text)
    return text.replace("Expected a", "expected a").replace("Got value:", "got")


def constructor_error(error: Exception) -> str:
    """What a component's constructor said, without jsonargparse's Union wrapping (``- message`` lines)."""
    lines = [line.strip() for line in str(error).splitlines()]
    reasons = [line[2:] for line in lines if line.startswith("- ") and not line.startswith("- Expected a")]
    return "; ".join(reasons) if reasons else " ".join(lines)


class ConfigFile(ActionConfigFile):
    """``--config FILE``: a file that is not valid YAML is reported with its name, line and column."""

    def __call__(self, parser: Any, cfg: Any, values: Any, option_string: str | None = None) -> None:
        path = Path(str(values))
        if path.is_file():
            try:
                yaml.safe_load(path.read_text())
            except yaml.YAMLError as error:
                mark = getattr(error, "problem_mark", None)
                where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
                problem = getattr(error, "problem", None) or str(error)
                parser.error(f"{path}: not valid YAML{where}: {problem}")
        super().__call__(parser, cfg, values, option_string)


class HashbenchArgumentParser(LightningArgumentParser):
    """LightningCLI's parser: configuration errors as one short paragraph (exit code 2), no abbreviations.

    An abbreviated option such as ``--trainer.max_epoch`` is an error, not silently ``max_epochs``:
    a misspelt key in a sweep must not run as something else.
    """

    def _get_option_tuples(self, option_string: str) -> list:
        given = option_string.split("=", 1)[0]
        matches = super()._get_option_tuples(option_string)
        return [match for match in matches if "." not in given or match[1] == given]

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:
            super().error(message, ex)
        parser: Any = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
        sys.stderr.write(
            f"{prog}: error: {explain(parser, message)}\n"
            f"See `{prog} --help` for every option and `--print_config` for the resolved config.\n"
        )
        raise SystemExit(2)
