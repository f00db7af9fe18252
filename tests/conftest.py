"""Shared fixtures: tests never touch the network or the user's W&B account."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.delenv("HASHBENCH_RUN_DIR", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread: with two, torch's OpenMP threads spin when another process holds a core
    (20× slower on a shared 2-core machine); the thread count also changes the last digits of the mAP."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_hashbench(
    *args: object, cwd: Path | None = None, timeout: float = 600, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess:
    """Run the real ``hashbench`` command (``python -m hashbench``) in a subprocess.

    ``env`` adds variables to this process's environment; a ``None`` value removes one.
    """
    merged = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **(env or {})}
    env = {key: value for key, value in merged.items() if value is not None}
    return subprocess.run(
        [sys.executable, "-m", "hashbench", *map(str, args)],
        cwd=cwd or REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
