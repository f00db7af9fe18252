"""The Lightning callback that fills a run's folder (:class:`~hashbench.runs.folder.RunFolder`) during a
run, whatever the logger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from rich.console import Console
from rich.table import Table

from hashbench.runs.folder import RunFolder, RunStatus
from hashbench.tracking.describe import describe_run, flatten_config


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        name: float(value.item() if isinstance(value, torch.Tensor) else value)
        for name, value in metrics.items()
    }


class RunWriter(Callback):
    """Writes ``config.yaml`` and ``run.json`` (status ``running``) at setup, ``metrics.json`` /
    ``curves.json`` after fit, validate and test, and logs the resolved config to every logger.

    The status: ``running`` while a stage (fit, validate, test) runs, ``completed`` once it ended
    normally, ``failed`` (with the exception's one-line message) or ``interrupted`` (Ctrl-C) when the
    trainer stops on an exception. The CLI calls :meth:`mark_failed` / :meth:`mark_interrupted` for an
    error or Ctrl-C outside the trainer. ``metrics.json`` holds every scalar the run logged last
    (``train/…``, ``val/…``, ``test/…``), plus ``epoch``, ``global_step`` and the checkpoint path.
    Loggers get :attr:`hyperparameters`: the config under the CLI's dotted keys and the description
    under ``run.*``. Only global rank 0 writes.

    Args:
        run_dir: the run's folder.
        config_yaml: the resolved configuration as YAML text.
    """

    def __init__(self, run_dir: Path, config_yaml: str) -> None:
        self.folder = RunFolder(run_dir)
        self.run_dir = self.folder.path
        self.config_yaml = config_yaml
        config = yaml.safe_load(config_yaml) or {}
        self.description = describe_run(config)
        self.hyperparameters = {
            **flatten_config(config),
            **{f"run.{key}": value for key, value in self.description.items()},
            "run.folder": str(self.run_dir),
        }
        self.metrics: dict[str, Any] = {}
        self.validated_last_epoch = False
        self._started = False
        self._is_writer = True  # global rank 0; set at setup

    # ------------------------------------------------------------------------------------------ status
    def mark_failed(self, message: str) -> None:
        """Record that the run failed; ``message`` is kept as one line."""
        if self._is_writer:
            self.folder.set_status("failed", message)

    def mark_interrupted(self) -> None:
        """Record that the run was interrupted (Ctrl-C)."""
        if self._is_writer:
            self.folder.set_status("interrupted")

    def _set(self, trainer: Trainer, status: RunStatus) -> None:
        if trainer.is_global_zero and self._started:
            self.folder.set_status(status)

    # ------------------------------------------------------------------------------------------- hooks
    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.validated_last_epoch = False

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self._started:  # the CLI's validation (and test) after fit is part of the same run
            return
        self._started = True
        self._is_writer = trainer.is_global_zero
        if trainer.is_global_zero:
            self.folder.write_config(self.config_yaml)
            self.folder.start(self.description, stage)
        for logger in trainer.loggers:
            logger.log_hyperparams(self.hyperparameters)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._set(trainer, "running")

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == "validate":
            self._set(trainer, "running")

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._set(trainer, "running")

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):
            self.mark_interrupted()
        else:
            self.mark_failed(f"{type(exception).__name__}: {exception}")

    def _write(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        self.metrics.update(_scalars(trainer.callback_metrics))
        self.metrics.update(epoch=trainer.current_epoch, global_step=trainer.global_step)
        checkpoint = trainer.checkpoint_callback
        if isinstance(checkpoint, ModelCheckpoint) and checkpoint.best_model_path:
            self.metrics["checkpoint"] = checkpoint.best_model_path
        self.folder.write_metrics(self.metrics)
        curves = getattr(pl_module, "curves", None)
        if curves:
            self.folder.write_curves(curves)
        self._set(trainer, "completed")

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._write(trainer, pl_module)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == "validate":
            self._write(trainer, pl_module)
        elif not trainer.sanity_checking:
            self.validated_last_epoch = True

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._write(trainer, pl_module)

    def print_table(self, title: str, prefix: str) -> None:
        """Print the metrics under ``prefix`` as a table, with the run folder."""
        rows = {k: v for k, v in self.metrics.items() if k.startswith(prefix)}
        if not rows:
            return
        table = Table(title=title, min_width=len(title) + 4)
        table.add_column("metric")
        table.add_column("value", justify="right")
        for name, value in sorted(rows.items()):
            table.add_row(
                name.removeprefix(prefix), f"{value:.4f}" if isinstance(value, float) else str(value)
            )
        Console().print(table)
        print(f"run folder: {self.run_dir}")
