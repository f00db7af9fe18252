"""Checkpoints on the command line: refuse a bad ``--ckpt_path`` or one that disagrees with the config,
refuse selection on test metrics, and say how to resume after Ctrl-C."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from hashbench.errors import UserError
from hashbench.tracking.describe import flatten_config

LIGHTNING_CKPT_ALIASES = ("best", "last", "hpc", "registry")
"""``ckpt_path`` values Lightning resolves itself."""

IGNORED_HYPERPARAMETERS = ("_instantiator",)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at ``path``, loaded safely (``weights_only``) on the CPU.

    Raises:
        UserError: the file is missing or is not a checkpoint that hashbench wrote.
    """
    if not path.is_file():
        raise UserError(
            f"--ckpt_path {path}: no such file. A run keeps its checkpoints in "
            "<trainer.default_root_dir>/<run name>/<timestamp>/checkpoints/ (the fit prints its run folder)."
        )
    try:
        checkpoint = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:  # torch.load raises many types on a file that is not a checkpoint
        message = str(error).strip().splitlines()
        reason = f"{type(error).__name__}: {message[0]}" if message else type(error).__name__
        raise UserError(
            f"--ckpt_path {path} is not a checkpoint written by `hashbench fit` ({reason[:200]}); "
            "give a .ckpt file from a run folder's checkpoints/"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise UserError(f"--ckpt_path {path} is not a Lightning checkpoint (it has no state_dict)")
    return checkpoint


def _differences(given: Mapping[str, Any], saved: Mapping[str, Any]) -> list[str]:
    """``key: saved → given`` for every key of both whose values differ (numbers compared as numbers)."""

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
            return float(a) == float(b)
        return a == b or str(a) == str(b)

    return [
        f"model.{key}: checkpoint {saved[key]!r}, config {given[key]!r}"
        for key in sorted(given.keys() & saved.keys())
        if not same(given[key], saved[key])
    ]


def check_checkpoint_matches(path: Path, model_config: Mapping[str, Any]) -> None:
    """Refuse a checkpoint whose saved model hyper-parameters differ from the resolved ``model`` config.

    Lightning would otherwise load the checkpoint's values over the user's silently.

    Raises:
        UserError: the checkpoint is unreadable, or names every key that differs.
    """
    checkpoint = read_checkpoint(path)
    saved = {
        key: value
        for key, value in (checkpoint.get("hyper_parameters") or {}).items()
        if key not in IGNORED_HYPERPARAMETERS
    }
    differences = _differences(flatten_config(model_config), flatten_config(saved))
    if differences:
        raise UserError(
            f"the config disagrees with --ckpt_path {path}: {'; '.join(differences)}. Use the run's own "
            "config (its run folder's config.yaml), or set these keys to the checkpoint's values."
        )


def refuse_selection_on_test(callbacks: Iterable[Callback]) -> None:
    """Nothing selects on the test queries: a ModelCheckpoint or EarlyStopping on ``test/…`` is refused.

    Raises:
        UserError: naming the callback and a validation metric to monitor instead.
    """
    for callback in callbacks:
        monitor = (
            getattr(callback, "monitor", None)
            if isinstance(callback, ModelCheckpoint | EarlyStopping)
            else None
        )
        if monitor and str(monitor).startswith("test/"):
            raise UserError(
                f"{type(callback).__name__}(monitor={monitor!r}) would select on the test queries; monitor a "
                f"validation metric instead (e.g. {'val/' + str(monitor).removeprefix('test/')!r})"
            )


class ResumeHint(Callback):
    """After Ctrl-C during fit, print the command that resumes the run from its newest checkpoint.

    ``interrupted`` is set for the process, so the command line can exit with code 130.
    """

    interrupted: ClassVar[bool] = False

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        ResumeHint.interrupted = False

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt) or trainer.state.fn != "fit":
            return
        ResumeHint.interrupted = True
        if not trainer.is_global_zero:
            return
        checkpoints = sorted((self.run_dir / "checkpoints").glob("*.ckpt"), key=lambda p: p.stat().st_mtime)
        config = self.run_dir / "config.yaml"
        if checkpoints:
            print(
                f"\ninterrupted at epoch {trainer.current_epoch}. Resume from the last finished epoch with:\n"
                f"  hashbench fit --config {config} --ckpt_path {checkpoints[-1]}"
            )
        else:
            print(
                "\ninterrupted before the first epoch ended: no checkpoint to resume from; "
                f"rerun with --config {config}"
            )
