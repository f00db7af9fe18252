"""The one owner of the run folder's format: its file names, and typed reading and writing of each file.

A run folder holds::

    config.yaml     the resolved config (``hashbench fit --config config.yaml`` runs it again)
    run.json        what the run is (method, quantizer, bits, dataset, backbone, λ), its subcommand, and
                    its status: running, completed, failed (with a one-line error) or interrupted
    metrics.json    every scalar the run logged last (train/…, val/…, test/…; null where not finite),
                    epoch, global_step and the checkpoint path
    curves.json     per stage (val, test): PR curve, bit balance, Hamming-distance histograms
    checkpoints/    the checkpoints

Every file is replaced atomically, so a reader never sees half a file. This module imports no torch.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from hashbench.runs.dirs import created_at
from hashbench.tracking.describe import describe_run, flatten_config

RunStatus = Literal["running", "completed", "failed", "interrupted"]
STATUSES: tuple[RunStatus, ...] = ("running", "completed", "failed", "interrupted")

CONFIG_FILE = "config.yaml"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
CURVES_FILE = "curves.json"
CHECKPOINTS_DIR = "checkpoints"

Curves = dict[str, dict[str, list[float]]]
"""``{stage: {curve name: values}}``, e.g. ``{"val": {"pr_precision": [...], ...}}``."""


def _finite_or_none(value: Any) -> Any:
    """A float that is not finite becomes None (JSON null); anything else as it is."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so readers see the old or the new file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


class RunFolder:
    """A run's folder: typed accessors for what a run wrote, and the writes themselves.

    Reading never raises for a missing or unreadable file: the accessor returns its empty value
    (``{}``, ``None``), so a folder of a run that crashed early can still be listed.

    Args:
        path: the run's folder.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunFolder) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @classmethod
    def find(cls, root: str | Path) -> list[RunFolder]:
        """Every run folder under ``root`` (any depth, ``root`` itself included), sorted by path."""
        root = Path(root)
        folders = {p.parent for name in (RUN_FILE, CONFIG_FILE) for p in root.rglob(name)}
        return [cls(path) for path in sorted(folders)]

    # ------------------------------------------------------------------------------------------ reading
    def _json(self, name: str) -> Any:
        try:
            return json.loads((self.path / name).read_text())
        except (OSError, ValueError):
            return None

    @property
    def config_yaml(self) -> str:
        """The resolved config as written (YAML text), or ``""``."""
        try:
            return (self.path / CONFIG_FILE).read_text()
        except OSError:
            return ""

    @property
    def nested_config(self) -> dict[str, Any]:
        """The resolved config as nested data."""
        try:
            loaded = yaml.safe_load(self.config_yaml)
        except yaml.YAMLError:
            return {}
        return loaded if isinstance(loaded, dict) else {}

    @property
    def config(self) -> dict[str, Any]:
        """The resolved config under the CLI's dotted keys (``model.head.init_args.bits``)."""
        return flatten_config(self.nested_config)

    @property
    def run(self) -> dict[str, Any]:
        """``run.json`` as written: the description, ``subcommand``, ``status`` and maybe ``error``."""
        run = self._json(RUN_FILE)
        return run if isinstance(run, dict) else {}

    @property
    def description(self) -> dict[str, Any]:
        """Method, quantizer, bits, dataset, backbone and λ (from the config if ``run.json`` is missing)."""
        run = self.run
        if not run:
            return describe_run(self.nested_config)
        return {key: value for key, value in run.items() if key not in ("subcommand", "status", "error")}

    @property
    def status(self) -> RunStatus | None:
        """``running``, ``completed``, ``failed`` or ``interrupted``; None when no ``run.json`` says."""
        status = self.run.get("status")
        return cast(RunStatus, status) if status in STATUSES else None

    @property
    def error(self) -> str | None:
        """The one-line error of a failed run."""
        return self.run.get("error")

    @property
    def seed(self) -> int | None:
        """The run's ``seed_everything`` (None when unset or not an int)."""
        seed = self.config.get("seed_everything")
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else None

    @property
    def metrics(self) -> dict[str, Any]:
        """``metrics.json``: metric name → number (None where the value was not finite), and
        ``epoch``, ``global_step``, ``checkpoint``."""
        metrics = self._json(METRICS_FILE)
        return metrics if isinstance(metrics, dict) else {}

    def metric(self, name: str) -> float | None:
        """A final metric as a finite float (``val/mAP@all``), or None when absent or not finite."""
        value = self.metrics.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return None
        return float(value)

    @property
    def curves(self) -> Curves:
        """``curves.json``: ``{stage: {curve name: values}}``."""
        curves = self._json(CURVES_FILE)
        return curves if isinstance(curves, dict) else {}

    @property
    def checkpoint(self) -> Path | None:
        """The checkpoint the run selected (or its last one): the one ``metrics.json`` names (looked up in
        this folder's checkpoints/ if the folder moved), else the newest checkpoint; None without any."""
        named = self.metrics.get("checkpoint")
        for candidate in (Path(named), self.checkpoints_dir / Path(named).name) if named else ():
            if candidate.is_file():
                return candidate
        found = sorted(self.checkpoints_dir.glob("*.ckpt"), key=lambda path: path.stat().st_mtime)
        return found[-1] if found else None

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    @property
    def started(self) -> datetime | None:
        """When the run started (local time, to the second, from the folder's name); None if unknown."""
        return created_at(self.path)

    @property
    def finished(self) -> datetime | None:
        """When the run last wrote ``metrics.json`` (its end; local time); None if it wrote none."""
        try:
            return datetime.fromtimestamp((self.path / METRICS_FILE).stat().st_mtime)
        except OSError:
            return None

    # ------------------------------------------------------------------------------------------ writing
    def write_config(self, config_yaml: str) -> None:
        """Write the resolved config (YAML text)."""
        _replace(self.path / CONFIG_FILE, config_yaml)

    def start(self, description: dict[str, Any], subcommand: str) -> None:
        """Write ``run.json`` with the description, the subcommand and status ``running``."""
        self._write_run({**description, "subcommand": subcommand, "status": "running"})

    def set_status(self, status: RunStatus, error: str | None = None) -> None:
        """Set the status in ``run.json`` (``error``: one line, kept for ``failed`` only)."""
        run = {key: value for key, value in self.run.items() if key != "error"}
        run["status"] = status
        if status == "failed":
            run["error"] = " ".join((error or "unknown error").split())
        self._write_run(run)

    def _write_run(self, run: dict[str, Any]) -> None:
        _replace(self.path / RUN_FILE, json.dumps(run, indent=2) + "\n")

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        """Write ``metrics.json``; values that are not finite are written as null."""
        clean = {key: _finite_or_none(value) for key, value in metrics.items()}
        _replace(self.path / METRICS_FILE, json.dumps(clean, indent=2, sort_keys=True) + "\n")

    def write_curves(self, curves: Curves) -> None:
        """Write ``curves.json``."""
        _replace(self.path / CURVES_FILE, json.dumps(curves) + "\n")
