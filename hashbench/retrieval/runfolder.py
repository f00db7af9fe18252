"""Where a finished run keeps what retrieval needs: its resolved config and its final checkpoint, read
through the run folder's one owner (:class:`hashbench.runs.folder.RunFolder`)."""

from __future__ import annotations

from pathlib import Path

from hashbench.errors import UserError
from hashbench.runs.folder import CONFIG_FILE, RunFolder


def run_files(run_dir: str | Path) -> tuple[Path, Path]:
    """``(config.yaml, final checkpoint)`` of the run folder ``run_dir`` (:attr:`RunFolder.checkpoint`).

    Raises:
        UserError: the folder is missing, or is not a run folder, or holds no checkpoint.
    """
    run_dir = Path(run_dir).expanduser()
    if not run_dir.is_dir():
        raise UserError(f"the run folder {run_dir} does not exist; give a folder that `hashbench fit` made.")
    if not (run_dir / CONFIG_FILE).is_file():
        raise UserError(
            f"{run_dir} is not a run folder (it has no {CONFIG_FILE}); give the folder "
            "runs/<name>/<timestamp> that `hashbench fit` printed."
        )
    checkpoint = RunFolder(run_dir).checkpoint
    if checkpoint is None:
        raise UserError(f"the run folder {run_dir} holds no checkpoint (checkpoints/*.ckpt): did fit finish?")
    return run_dir / CONFIG_FILE, checkpoint
