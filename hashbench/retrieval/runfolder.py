"""Where a finished run keeps what retrieval needs: its resolved config and its final checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

from hashbench.errors import UserError


def run_files(run_dir: str | Path) -> tuple[Path, Path]:
    """``(config.yaml, final checkpoint)`` of the run folder ``run_dir``.

    The final checkpoint is the one ``metrics.json`` names (moved with the folder if the folder was
    moved), else the newest file in ``checkpoints/``.

    Raises:
        UserError: the folder is missing, or is not a run folder, or holds no checkpoint.
    """
    run_dir = Path(run_dir).expanduser()
    if not run_dir.is_dir():
        raise UserError(f"the run folder {run_dir} does not exist; give a folder that `hashbench fit` made.")
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise UserError(
            f"{run_dir} is not a run folder (it has no config.yaml); give the folder "
            "runs/<name>/<timestamp> that `hashbench fit` printed."
        )
    named = None
    metrics = run_dir / "metrics.json"
    if metrics.is_file():
        named = json.loads(metrics.read_text()).get("checkpoint")
    if named and (run_dir / "checkpoints" / Path(named).name).is_file():
        return config, run_dir / "checkpoints" / Path(named).name
    checkpoints = sorted((run_dir / "checkpoints").glob("*.ckpt"), key=lambda path: path.stat().st_mtime)
    if not checkpoints:
        raise UserError(f"the run folder {run_dir} holds no checkpoint (checkpoints/*.ckpt): did fit finish?")
    return config, checkpoints[-1]
