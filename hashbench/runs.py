"""One folder per run: resolved config, run description, checkpoints, metrics.json and curves.json,
whatever the logger."""

from __future__ import annotations

import json
import math
import os
import re
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import yaml
from lightning import Callback, LightningModule, Trainer
from rich.console import Console
from rich.table import Table

from hashbench.tracking.describe import describe_run, flatten_config

RUN_DIR_ENV = "HASHBENCH_RUN_DIR"
"""Set by the launching process; DDP workers (re-executed with LOCAL_RANK > 0) reuse its folder."""


def safe_name(name: str) -> str:
    """``name`` with every run of characters other than ``A-Za-z0-9_.-`` replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "run"


def fresh_dir(root: str | Path, name: str) -> Path:
    """Create and return a new ``root/name/YYYYmmdd-HHMMSS[-k]`` folder; never reuses an existing one."""
    stem = Path(root) / safe_name(name) / datetime.now().strftime("%Y%m%d-%H%M%S")
    for attempt in range(1000):
        candidate = stem if attempt == 0 else stem.with_name(f"{stem.name}-{attempt}")
        try:
            candidate.mkdir(parents=True)
        except FileExistsError:
            continue
        return candidate
    raise RuntimeError(f"could not create a fresh run folder under {stem.parent}")


def launcher_job_id() -> str | None:
    """The id that all processes of one multi-process job started by torchrun or ``srun`` share, else None.

    torchrun: ``torchrun-<rdzv id>`` (give every job its own ``--rdzv-id``; without one, the processes of
    a node share ``torchrun-<host>-<agent pid>``). SLURM: ``slurm-<job id>.<step id>`` for a step of
    several tasks.
    """
    env = os.environ
    if int(env.get("WORLD_SIZE", "1")) > 1 and "TORCHELASTIC_RUN_ID" in env:
        run_id = env["TORCHELASTIC_RUN_ID"]
        return f"torchrun-{run_id}" if run_id != "none" else f"torchrun-{socket.gethostname()}-{os.getppid()}"
    if int(env.get("SLURM_STEP_NUM_TASKS", "1")) > 1 and "SLURM_JOB_ID" in env:
        return f"slurm-{env['SLURM_JOB_ID']}.{env.get('SLURM_STEP_ID', '0')}"
    return None


def create_run_dir(root: str | Path, name: str) -> Path:
    """The run's folder: a fresh ``root/name/YYYYmmdd-HHMMSS[-k]``, shared by the processes of a DDP job.

    A DDP worker process started by Lightning (``LOCAL_RANK`` > 0) returns its launcher's folder (passed
    in ``HASHBENCH_RUN_DIR``); the processes of a job started by torchrun or SLURM all use
    ``root/name/<job id>`` (:func:`launcher_job_id`).
    """
    inherited = os.environ.get(RUN_DIR_ENV)
    if inherited and os.environ.get("LOCAL_RANK", "0") != "0":
        return Path(inherited)
    if job_id := launcher_job_id():
        run_dir = Path(root) / safe_name(name) / job_id
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        run_dir = fresh_dir(root, name)
    os.environ[RUN_DIR_ENV] = str(run_dir)
    return run_dir


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for name, value in metrics.items():
        number = float(value.item() if isinstance(value, torch.Tensor) else value)
        out[name] = number if math.isfinite(number) else str(number)
    return out


class RunFolder(Callback):
    """Writes ``config.yaml`` and ``run.json`` at setup, ``metrics.json`` / ``curves.json`` after fit,
    validate and test, and logs the resolved config to every logger.

    ``run.json`` describes the run (method, quantizer, bits, dataset, backbone, λ, subcommand), so runs can
    be grouped without parsing the config. ``metrics.json`` holds every scalar the run logged last
    (``train/…``, ``val/…``, ``test/…``), plus ``epoch``, ``global_step`` and the checkpoint path.
    Loggers get :attr:`hyperparameters`: the config under the CLI's dotted keys and the description
    under ``run.*``. Only global rank 0 writes.

    Args:
        run_dir: the run's folder.
        config_yaml: the resolved configuration as YAML text.
    """

    def __init__(self, run_dir: Path, config_yaml: str) -> None:
        self.run_dir = Path(run_dir)
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

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.validated_last_epoch = False

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self._started:  # the CLI's validation after fit is part of the same run
            return
        self._started = True
        if trainer.is_global_zero:
            (self.run_dir / "config.yaml").write_text(self.config_yaml)
            run = {**self.description, "subcommand": stage}
            (self.run_dir / "run.json").write_text(json.dumps(run, indent=2) + "\n")
        for logger in trainer.loggers:
            logger.log_hyperparams(self.hyperparameters)

    def _write(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        self.metrics.update(_scalars(trainer.callback_metrics))
        self.metrics.update(epoch=trainer.current_epoch, global_step=trainer.global_step)
        checkpoint = trainer.checkpoint_callback
        if checkpoint is not None and getattr(checkpoint, "best_model_path", ""):
            self.metrics["checkpoint"] = checkpoint.best_model_path
        (self.run_dir / "metrics.json").write_text(json.dumps(self.metrics, indent=2, sort_keys=True) + "\n")
        curves = getattr(pl_module, "curves", None)
        if curves:
            (self.run_dir / "curves.json").write_text(json.dumps(curves) + "\n")

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
