"""Where a run's folder is created: a fresh ``root/name/YYYYmmdd-HHMMSS[-k]``, shared by a DDP job."""

from __future__ import annotations

import os
import re
import socket
from datetime import datetime
from pathlib import Path

STAMP_FORMAT = "%Y%m%d-%H%M%S"
RUN_DIR_ENV = "HASHBENCH_RUN_DIR"
"""Set by the launching process; DDP workers (re-executed with LOCAL_RANK > 0) reuse its folder."""


def safe_name(name: str) -> str:
    """``name`` with every run of characters other than ``A-Za-z0-9_.-`` replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "run"


def fresh_dir(root: str | Path, name: str) -> Path:
    """Create and return a new ``root/name/YYYYmmdd-HHMMSS[-k]`` folder; never reuses an existing one."""
    stem = Path(root) / safe_name(name) / datetime.now().strftime(STAMP_FORMAT)
    for attempt in range(1000):
        candidate = stem if attempt == 0 else stem.with_name(f"{stem.name}-{attempt}")
        try:
            candidate.mkdir(parents=True)
        except FileExistsError:
            continue
        return candidate
    raise RuntimeError(f"could not create a fresh run folder under {stem.parent}")


def created_at(folder: Path) -> datetime | None:
    """The local time a folder made by :func:`fresh_dir` was created (its name, to the second); None for
    another name (a DDP job's ``torchrun-…`` or ``slurm-…`` folder)."""
    try:
        return datetime.strptime(folder.name[: len("YYYYmmdd-HHMMSS")], STAMP_FORMAT)
    except ValueError:
        return None


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
