"""A sweep's results: ``summary.csv`` (a row per run) and ``aggregate.csv`` (a row per configuration over
its seeds, the configuration chosen on the validation metric marked ``selected``)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hashbench.runs.folder import RunFolder
from hashbench.tracking.aggregate import Estimate, Goal, estimate, select

SUMMARY_FILE = "summary.csv"
AGGREGATE_FILE = "aggregate.csv"
DESCRIPTION_KEYS = ("method", "quantizer", "bits", "dataset")


@dataclass
class RunResult:
    """One run of a sweep: its configuration, seed, outcome and folder.

    Attributes:
        configuration: the configuration's label (``003_quantizer-HSWD_quantization_weight-0.1``).
        label: the run's label (the configuration's, with ``_seed-S`` when the sweep has seeds).
        params: the sweep's parameters for this run (dotted key → value), without the seed.
        seed: ``seed_everything`` of the run, None when the sweep sets none.
        status: completed, failed or interrupted.
        seconds: wall time of the run.
        folder: the run folder, None if the run made none.
        error: why a run failed (one line).
    """

    configuration: str
    label: str
    params: dict[str, Any]
    seed: int | None
    status: str
    seconds: float = 0.0
    folder: RunFolder | None = None
    error: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.folder is not None:
            metrics = self.folder.metrics
            self.metrics = {k: v for k, v in metrics.items() if k.startswith(("val/", "test/"))}

    def value(self, key: str) -> float | None:
        """A final metric of a completed run, else None."""
        value = self.metrics.get(key) if self.status == "completed" else None
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    def row(self) -> dict[str, Any]:
        description = self.folder.description if self.folder else {}
        return {
            "run": self.label,
            "status": self.status,
            "seed": "" if self.seed is None else self.seed,
            "seconds": round(self.seconds, 1),
            "run_dir": str(self.folder.path) if self.folder else "",
            "error": self.error,
            **self.params,
            **{key: description.get(key) for key in DESCRIPTION_KEYS},
            **self.metrics,
        }


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    fields: dict[str, None] = {}
    for row in rows:
        fields.update(dict.fromkeys(row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(rows)


def selection_metric(metric: str | None, results: Sequence[RunResult]) -> str | None:
    """The sweep's metric, else the validation mAP the runs logged."""
    if metric:
        return metric
    return next((key for r in results for key in r.metrics if key.startswith("val/mAP@")), None)


def by_configuration(results: Sequence[RunResult]) -> dict[str, list[RunResult]]:
    grouped: dict[str, list[RunResult]] = {}
    for result in results:
        grouped.setdefault(result.configuration, []).append(result)
    return grouped


def selected_configuration(results: Sequence[RunResult], metric: str | None, goal: Goal) -> str | None:
    """The configuration whose mean ``metric`` (a ``val/`` metric) over its completed runs is best."""
    if metric is None:
        return None
    return select({c: [r.value for r in runs] for c, runs in by_configuration(results).items()}, metric, goal)


def aggregate_rows(results: Sequence[RunResult], selected: str | None) -> list[dict[str, Any]]:
    """A row per configuration: its parameters, the seeds completed, and per metric the mean, standard
    deviation and 95% t interval over them."""
    rows = []
    for configuration, runs in by_configuration(results).items():
        completed = [r for r in runs if r.status == "completed"]
        row: dict[str, Any] = {
            "configuration": configuration,
            **runs[0].params,
            "seeds": len(completed),
            "failed": sum(r.status != "completed" for r in runs),
            "selected": configuration == selected,
        }
        for key in sorted({k for r in completed for k in r.metrics}):
            found = estimate([r.value(key) for r in completed])
            if found is not None:
                row |= {
                    f"{key} mean": found.mean,
                    f"{key} std": found.std,
                    f"{key} ci95 low": found.low,
                    f"{key} ci95 high": found.high,
                }
        rows.append(row)
    return rows


def write_summary(
    sweep_dir: Path, results: Sequence[RunResult], metric: str | None, goal: Goal
) -> str | None:
    """Write ``summary.csv`` and ``aggregate.csv``; return the selected configuration."""
    metric = selection_metric(metric, results)
    selected = selected_configuration(results, metric, goal)
    _write_csv(sweep_dir / SUMMARY_FILE, [r.row() for r in results])
    _write_csv(sweep_dir / AGGREGATE_FILE, aggregate_rows(results, selected))
    return selected


def _cell(found: Estimate | None) -> str:
    return "" if found is None else str(found)


def print_summary(
    name: str, results: Sequence[RunResult], metric: str | None, selected: str | None, sweep_dir: Path
) -> None:
    """A table per configuration: runs completed, the selection metric and its test counterpart."""
    from rich.console import Console
    from rich.table import Table

    metric = selection_metric(metric, results)
    reported = metric.replace("val/", "test/", 1) if metric else None
    table = Table(title=f"sweep {name}")
    table.add_column("configuration", overflow="fold")
    for column in ("completed", *([metric, reported] if metric and reported else [])):
        table.add_column(column, justify="right")
    for configuration, runs in by_configuration(results).items():
        completed = [r for r in runs if r.status == "completed"]
        cells = [configuration + (" *" if configuration == selected else ""), f"{len(completed)}/{len(runs)}"]
        if metric and reported:
            cells += [_cell(estimate([r.value(metric) for r in completed]))]
            cells += [_cell(estimate([r.value(reported) for r in completed]))]
        table.add_row(*cells)
    Console().print(table)
    if selected and metric:
        print(f"* selected on {metric} (validation); {reported} reports it")
    print(f"summary: {sweep_dir / SUMMARY_FILE}, per configuration: {sweep_dir / AGGREGATE_FILE}")
