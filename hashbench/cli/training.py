"""``hashbench fit|validate|test|predict --config FILE [--dotted.key value …]``: the LightningCLI."""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning
import yaml
from jsonargparse import Namespace
from lightning import Callback, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from hashbench.cli.checkpoints import (
    LIGHTNING_CKPT_ALIASES,
    ResumeHint,
    check_checkpoint_matches,
    refuse_selection_on_test,
)
from hashbench.cli.config_errors import ConfigFile, HashbenchArgumentParser, constructor_error
from hashbench.data.base import RetrievalDataModule
from hashbench.errors import UserError
from hashbench.loggers import AutoOfflineWandbLogger
from hashbench.module import HashingModule
from hashbench.retrieval.callback import RetrievalGrid
from hashbench.runs import create_run_dir
from hashbench.runs.codes import CodesWriter
from hashbench.runs.writer import RunWriter
from hashbench.tracking.callbacks import WandbPlots
from hashbench.tracking.describe import wandb_group, wandb_project, wandb_tags
from hashbench.tracking.diagnostics import TrainingDiagnostics

DEFAULT_RUNS_ROOT = "runs"


def _with_run_dir(callbacks: list[Callback], run_dir: Path) -> list[Callback]:
    """A ModelCheckpoint without a folder writes into ``run_dir/checkpoints``."""
    for callback in callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath is None:
            callback.dirpath = str(run_dir / "checkpoints")
    return callbacks


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
    return isinstance(cls, type) and issubclass(cls, AutoOfflineWandbLogger)


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
    ``metrics.json`` (:class:`~hashbench.runs.writer.RunWriter`). Every logger gets the resolved config under
    the CLI's dotted keys instead of the module's nested hyper-parameters; a W&B logger also gets its
    project, group, tags and name from the run, and :class:`~hashbench.tracking.callbacks.WandbPlots`.
    """

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        argv = sys.argv[1:] if args is None else args
        self.requested = argv[0] if argv and argv[0] in LightningCLI.subcommands() else None
        self.run_dir: Path | None = None
        self.run_folder: RunWriter | None = None
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

    def subcommands(self) -> dict[str, set[str]]:  # type: ignore[override]
        """Lightning's subcommands, only the requested one when known: each parser costs about 0.1 s
        of signature introspection, and a run uses one."""
        every = LightningCLI.subcommands()
        return {self.requested: every[self.requested]} if self.requested else every

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        kwargs.setdefault("dump_header", [f"lightning.pytorch=={lightning.__version__}"])
        parser = HashbenchArgumentParser(**kwargs)
        parser.add_argument("-c", "--config", action=ConfigFile, help="A YAML config file (repeatable).")
        return parser

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse, then refuse a ``--ckpt_path`` that is missing, unreadable or disagrees with the config."""
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and ckpt_path not in LIGHTNING_CKPT_ALIASES:
            model_config = yaml.safe_load(self._parser(subcommand).dump(self.config[subcommand]))["model"]
            check_checkpoint_matches(Path(ckpt_path), model_config)

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except (ValueError, TypeError, MisconfigurationException) as error:  # a constructor refused it
            self._discard_run_dir()
            raise UserError(f"the config is invalid: {constructor_error(error)}") from error
        except BaseException:
            self._discard_run_dir()
            raise

    def _discard_run_dir(self) -> None:
        """Remove the run folder of a run that never started (it is still empty)."""
        if self.run_dir is not None and self.run_dir.is_dir() and not any(self.run_dir.iterdir()):
            self.run_dir.rmdir()

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--run_name",
            type=str | None,
            default=None,
            help="Group of the run folder <trainer.default_root_dir>/<run_name>/<timestamp> "
            "(default: the stem of the last --config file).",
        )
        parser.add_argument(
            "--diagnostics",
            type=bool,
            default=True,
            help="fit only: log the paper's training diagnostics (HSWD, exact HSWD, SWD with 1,000 "
            "projections and the method's own term on 512 training codes) in the epochs that validate "
            "(every trainer.check_val_every_n_epoch, and the last), and the seconds of every epoch, to "
            "diagnostics.json and the loggers, unless a TrainingDiagnostics callback is configured "
            "(configure one for other sizes or another cadence, as the study does).",
        )
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=False,
            help="fit only: after training, also evaluate on the test queries: the final weights, or the "
            "checkpoint a ModelCheckpoint selected on a validation metric (nothing selects on test).",
        )

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        config.run_name = config.get("run_name") or _run_name(config)
        # dumped before run-specific paths are filled in, so the file can start another run
        self.config_yaml = self._parser(self.subcommand).dump(config, skip_none=False)
        root = config.trainer.get("default_root_dir") or DEFAULT_RUNS_ROOT
        try:
            self.run_dir = create_run_dir(root, config.run_name)
        except OSError as error:
            raise UserError(
                f"cannot create a run folder under trainer.default_root_dir={root!r} "
                f"({type(error).__name__}: {error.strerror or error}); give a folder (or a new path)"
            ) from None
        self.run_folder = RunWriter(self.run_dir, self.config_yaml)
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
        """The trainer with the run folder's callbacks. Without a configured ModelCheckpoint, the final
        weights are saved at each training epoch's end (kept even when the last epoch is not validated)."""
        assert self.run_dir is not None and self.run_folder is not None
        trainer_config = self.config_init[self.subcommand].trainer
        configured = trainer_config.get("callbacks") or []
        callbacks = list(configured) if isinstance(configured, list) else [configured]
        refuse_selection_on_test(callbacks)
        if trainer_config.get("enable_checkpointing") is not False and not any(
            isinstance(callback, ModelCheckpoint) for callback in callbacks
        ):
            callbacks.append(ModelCheckpoint(save_on_train_epoch_end=True))
        if (
            self.subcommand == "fit"
            and self.config[self.subcommand].get("diagnostics")
            and not any(isinstance(callback, TrainingDiagnostics) for callback in callbacks)
        ):
            every = trainer_config.get("check_val_every_n_epoch") or 1  # next to the validation mAP
            callbacks.append(TrainingDiagnostics(num_images=512, swd_projections=1000, every_n_epochs=every))
        if not any(isinstance(callback, RetrievalGrid) for callback in callbacks):
            callbacks.append(RetrievalGrid())
        loggers = trainer_config.get("logger")
        loggers = loggers if isinstance(loggers, list) else [loggers]
        uses_wandb = any(isinstance(logger, LightningWandbLogger) for logger in loggers)
        if uses_wandb and not any(isinstance(callback, WandbPlots) for callback in callbacks):
            callbacks.append(WandbPlots())
        if self.subcommand == "predict":
            callbacks.append(CodesWriter(self.run_dir))
        callbacks = [*_with_run_dir(callbacks, self.run_dir), self.run_folder, ResumeHint(self.run_dir)]
        return super().instantiate_trainer(**kwargs, callbacks=callbacks, default_root_dir=str(self.run_dir))

    def before_test(self) -> None:
        if not self.config[self.subcommand].get("ckpt_path"):
            rank_zero_warn(
                f"{self.subcommand} without --ckpt_path evaluates the UNTRAINED initial weights; pass the "
                "checkpoint of a finished run: --ckpt_path <run folder>/checkpoints/<file>.ckpt"
            )

    before_validate = before_test

    def after_fit(self) -> None:
        """Validate the final weights (unless the last epoch was), optionally test; print the metrics."""
        assert self.run_folder is not None
        if self.trainer.interrupted:
            return
        if self.trainer.enable_validation and not self.run_folder.validated_last_epoch:
            self.trainer.validate(self.model, datamodule=self.datamodule, verbose=False)
        if self.config[self.subcommand].get("test_after_fit"):
            selected = any(
                isinstance(callback, ModelCheckpoint) and callback.monitor
                for callback in self.trainer.checkpoint_callbacks
            )
            self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path="best" if selected else None)
        if not self.trainer.is_global_zero:
            return
        untrained = self.trainer.global_step == 0 and not self.model.is_fitted  # a fitted baseline
        if untrained:
            rank_zero_warn("no training step ran (max_epochs 0?): these are an UNTRAINED model's metrics")
        title = "untrained model" if untrained else "final metrics"
        self.run_folder.print_table(f"{title}, validation queries vs database", "val/")
        if self.config[self.subcommand].get("test_after_fit"):
            self.run_folder.print_table(f"{title}, test queries vs database", "test/")


def run_training(args: list[str] | None) -> None:
    """``hashbench fit|validate|test|predict …`` (``None``: the process's arguments): one LightningCLI run;
    exit code 130 after Ctrl-C."""
    try:
        HashbenchCLI(args=args)
    except SystemExit:
        if ResumeHint.interrupted:
            raise SystemExit(130) from None
        raise


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
    seed_log = logging.getLogger("lightning.fabric.utilities.seed")  # "Seed set to …" is not a resolution
    level = seed_log.level
    try:
        seed_log.setLevel(logging.WARNING)
        with contextlib.redirect_stderr(errors), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            resolver = _ConfigResolver(args=list(args), run=True)
    except SystemExit as exit_:
        text = errors.getvalue()
        explanation = text.split(": error: ", 1)[-1].strip().splitlines()
        raise UserError(explanation[0] if explanation else f"exit code {exit_.code}") from None
    finally:
        seed_log.setLevel(level)
    parser = resolver._parser(subcommand)
    return yaml.safe_load(parser.dump(resolver.config[subcommand], skip_none=False))
