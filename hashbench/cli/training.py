"""``hashbench fit|validate|test|predict --config FILE [--dotted.key value …]``: the LightningCLI."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning
import yaml
from jsonargparse import ActionConfigFile, Namespace
from lightning import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger

from hashbench.cli.config_errors import HashbenchArgumentParser
from hashbench.data.base import RetrievalDataModule
from hashbench.errors import UserError
from hashbench.loggers import WandbLogger
from hashbench.module import HashingModule
from hashbench.runs import create_run_dir
from hashbench.runs.writer import RunWriter as RunFolder
from hashbench.tracking.callbacks import WandbPlots
from hashbench.tracking.describe import wandb_group, wandb_project, wandb_tags

DEFAULT_RUNS_ROOT = "runs"


def _run_name(config: Namespace) -> str:
    """The stem of the last ``--config`` file, or ``run``."""
    files = config.get("config") or []
    last = files[-1] if files else None
    return Path(str(getattr(last, "relative", last))).stem if last else "run"


def _logger_entries(logger: Any) -> list[Namespace]:
    if isinstance(logger, list):
        return [entry for entry in logger if isinstance(entry, Namespace)]
    return [logger] if isinstance(logger, Namespace) else []


def _is_hashbench_wandb(class_path: str | None) -> bool:
    module, _, name = str(class_path).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(cls, type) and issubclass(cls, WandbLogger)


def _fill_wandb_defaults(init_args: Namespace, description: dict[str, Any], run_label: str) -> None:
    """Project, group, tags and name that the user left unset, from the run (a W&B sweep agent sets
    the project and the name itself)."""
    in_sweep = "WANDB_SWEEP_ID" in os.environ
    defaults = {
        "group": wandb_group(description),
        "tags": wandb_tags(description),
        "project": None if in_sweep or "WANDB_PROJECT" in os.environ else wandb_project(description),
        "name": None if in_sweep else run_label,
    }
    for key, value in defaults.items():
        if init_args.get(key) is None and value is not None:
            init_args[key] = value


class HashbenchCLI(LightningCLI):
    """LightningCLI for :class:`HashingModule` and any :class:`RetrievalDataModule`.

    Each invocation gets a fresh run folder ``<default_root_dir>/<config name>/<timestamp>`` that holds
    the resolved config, the run's description (``run.json``), the checkpoints, the loggers' files and
    ``metrics.json`` (:class:`~hashbench.runs.RunFolder`). Every logger gets the resolved config under
    the CLI's dotted keys instead of the module's nested hyper-parameters; a W&B logger also gets its
    project, group, tags and name from the run, and :class:`~hashbench.tracking.callbacks.WandbPlots`.
    """

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        self.run_dir: Path | None = None
        self.run_folder: RunFolder | None = None
        self.config_yaml = ""
        super().__init__(
            model_class=HashingModule,
            datamodule_class=RetrievalDataModule,
            subclass_mode_data=True,
            save_config_callback=None,
            auto_configure_optimizers=False,
            trainer_defaults={"default_root_dir": DEFAULT_RUNS_ROOT, "enable_autolog_hparams": False},
            parser_kwargs={"default_env": False},
            args=args,
            run=run,
        )

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        kwargs.setdefault("dump_header", [f"lightning.pytorch=={lightning.__version__}"])
        parser = HashbenchArgumentParser(**kwargs)
        parser.add_argument(
            "-c", "--config", action=ActionConfigFile, help="A YAML config file (repeatable)."
        )
        return parser

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except (ValueError, TypeError) as error:  # raised by a component's constructor
            raise UserError(f"the config is invalid: {error}") from error

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--run_name",
            type=str | None,
            default=None,
            help="Group of the run folder <trainer.default_root_dir>/<run_name>/<timestamp> "
            "(default: the stem of the last --config file).",
        )

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        config.run_name = config.get("run_name") or _run_name(config)
        # dumped before run-specific paths are filled in, so the file can start another run
        self.config_yaml = self._parser(self.subcommand).dump(config, skip_none=False)
        root = config.trainer.get("default_root_dir") or DEFAULT_RUNS_ROOT
        self.run_dir = create_run_dir(root, config.run_name)
        self.run_folder = RunFolder(self.run_dir, self.config_yaml)
        for entry in _logger_entries(config.trainer.get("logger")):
            init_args = entry.get("init_args")
            if init_args is None:
                continue
            if init_args.get("save_dir") in (None, ".", ""):
                init_args.save_dir = str(self.run_dir)
            if _is_hashbench_wandb(entry.get("class_path")):
                label = f"{config.run_name}/{self.run_dir.name}"
                _fill_wandb_defaults(init_args, self.run_folder.description, label)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        assert self.run_dir is not None
        trainer = super().instantiate_trainer(**kwargs, default_root_dir=str(self.run_dir))
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.dirpath is None:
                callback.dirpath = str(self.run_dir / "checkpoints")
                if (
                    callback.monitor is None
                ):  # keep the final weights even when the last epoch is not validated
                    callback._save_on_train_epoch_end = True
        assert self.run_folder is not None
        trainer.callbacks.append(self.run_folder)
        uses_wandb = any(isinstance(logger, LightningWandbLogger) for logger in trainer.loggers)
        if uses_wandb and not any(isinstance(callback, WandbPlots) for callback in trainer.callbacks):
            trainer.callbacks.append(WandbPlots())
        return trainer

    def after_fit(self) -> None:
        """Evaluate the final weights (if the last epoch was not validated) and print the metrics."""
        assert self.run_folder is not None
        if (
            self.trainer.enable_validation
            and not self.run_folder.validated_last_epoch
            and not self.trainer.interrupted
        ):
            self.trainer.validate(self.model, datamodule=self.datamodule, verbose=False)
        if self.trainer.is_global_zero:
            self.run_folder.print_table("final metrics, query vs database", "val/")


def run_training(args: list[str]) -> None:
    """``hashbench fit|validate|test|predict …``: one LightningCLI run."""
    HashbenchCLI(args=args)


class _ConfigResolver(HashbenchCLI):
    """Parses like :class:`HashbenchCLI` and stops before anything is created (no run folder, no model)."""

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        config.run_name = config.get("run_name") or _run_name(config)

    def instantiate_classes(self) -> None:
        pass

    def _run_subcommand(self, subcommand: str) -> None:
        pass


def resolve_config(args: Sequence[str]) -> dict[str, Any]:
    """The config that ``hashbench <args>`` would run, as plain data (what ``--print_config`` shows).

    ``args`` start with the subcommand (``["fit", "--config", "experiments/demo.yaml", …]``). Nothing is
    created: no run folder, no model, no data.

    Raises:
        UserError: the arguments do not parse; the message is the CLI's one-paragraph explanation.
    """
    subcommand = args[0] if args else "fit"
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            resolver = _ConfigResolver(args=list(args), run=True)
    except SystemExit as exit_:
        text = errors.getvalue()
        explanation = text.split(": error: ", 1)[-1].strip().splitlines()
        raise UserError(explanation[0] if explanation else f"exit code {exit_.code}") from None
    parser = resolver._parser(subcommand)
    return yaml.safe_load(parser.dump(resolver.config[subcommand], skip_none=False))
