"""Run a sweep's configurations, each over its seeds, one run at a time in a subprocess.

Each run is the sweep's own ``command`` (``hashbench fit --config … ${args}``), with ``${args}`` formatted
as the W&B agent does (``--key=value``), so a failed run does not stop the sweep. Layout::

    <root>/<sweep name>/<timestamp>/
        sweep.yaml                         the sweep file as run
        summary.csv                        a row per run: status, seed, parameters, description, metrics
        aggregate.csv                      a row per configuration: mean, std, 95% interval over seeds
        000_<params>[_seed-S]/output.log   the run's stdout and stderr
        000_<params>[_seed-S]/<timestamp>/ the run folder (config.yaml, run.json, metrics.json, …)

Ctrl-C lets the current run shut down (its status becomes ``interrupted``), writes the summaries and
exits 130; ``--resume`` continues in the newest folder of the sweep and skips the completed runs.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hashbench.errors import UserError
from hashbench.runs.dirs import RUN_DIR_ENV, fresh_dir, safe_name
from hashbench.runs.folder import RunFolder
from hashbench.sweeps.sampling import Search
from hashbench.sweeps.spec import SEED_KEY, Sweep, hashbench_args
from hashbench.sweeps.summary import RunResult, print_summary, selection_metric, write_summary
from hashbench.tracking.aggregate import estimate

SWEEP_FILE = "sweep.yaml"
LOG_FILE = "output.log"
HASHBENCH = (sys.executable, "-m", "hashbench")
SHUTDOWN_SECONDS = 60.0
"""How long an interrupted run may take to shut down before it is killed."""


def _short(value: Any) -> str:
    """``hashbench.quantizers.HSWD`` → ``HSWD``, ``experiments/digits/itq.yaml`` → ``itq``; numbers as is."""
    if not isinstance(value, str):
        return str(value)
    if value.endswith((".yaml", ".yml")):
        return Path(value).stem
    return value.rsplit(".", 1)[-1]


def configuration_label(index: int, params: dict[str, Any]) -> str:
    """``003_quantizer-HSWD_quantization_weight-0.1``: the index and the parameters' short names."""
    parts = [f"{key.rsplit('.', 1)[-1]}-{_short(value)}" for key, value in params.items()]
    return safe_name("_".join([f"{index:03d}", *parts]))[:110]


def run_label(configuration: str, seed: int | None) -> str:
    return configuration if seed is None else f"{configuration}_seed-{seed}"


def sweep_folder(root: Path, sweep: Sweep, resume: bool) -> Path:
    """A fresh ``root/<name>/<timestamp>``; with ``resume``, the newest folder of this sweep file, or a
    fresh one if it never ran under ``root`` (so one command starts a study and continues it)."""
    folders = (root / safe_name(sweep.name)).glob(f"*/{SWEEP_FILE}") if resume else ()
    candidates = sorted(p.parent for p in folders)
    if not candidates:
        folder = fresh_dir(root, sweep.name)
        (folder / SWEEP_FILE).write_text(sweep.path.read_text())
        return folder
    folder = candidates[-1]
    if (folder / SWEEP_FILE).read_text() != sweep.path.read_text():
        raise UserError(f"--resume: {sweep.path} changed since {folder} started; run it without --resume")
    return folder


def _finished(run_dir: Path) -> RunFolder | None:
    """The run folder of a completed earlier run under ``run_dir``, if any."""
    done = [f for f in RunFolder.find(run_dir) if f.status == "completed"] if run_dir.is_dir() else []
    return done[-1] if done else None


def _launch(command: list[str], log_path: Path, env: dict[str, str]) -> tuple[int, bool]:
    """Run ``command``; (exit code, whether Ctrl-C interrupted it). On Ctrl-C the run (which got the
    signal too) gets :data:`SHUTDOWN_SECONDS` to shut down before it is killed."""
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            return process.wait(), False
        except KeyboardInterrupt:
            try:
                process.wait(timeout=SHUTDOWN_SECONDS)
            except (subprocess.TimeoutExpired, KeyboardInterrupt):
                process.kill()
            return process.wait(), True


def _outcome(code: int, interrupted: bool, folder: RunFolder | None) -> tuple[str, str]:
    """(status, error) of a finished subprocess from its exit code and its run folder's status."""
    if interrupted:
        if folder is not None and folder.status in (None, "running"):
            folder.set_status("interrupted")
        return "interrupted", ""
    status = folder.status if folder else None
    if code == 0 and status == "completed":
        return "completed", ""
    if status == "failed" and folder is not None:
        return "failed", folder.error or f"exit {code}"
    return "failed", f"exit {code}" + ("" if folder else " before the run folder was written")


def run_sweep(
    sweep: Sweep,
    search: Search,
    seeds: Sequence[int] | None,
    sweep_dir: Path,
    extra: Sequence[str] = (),
    launcher: Sequence[str] = HASHBENCH,
    resume_command: str = "hashbench sweep FILE --local --resume",
) -> int:
    """Run every configuration of ``search`` over ``seeds``; write the summaries after each run.

    Args:
        sweep: the sweep file.
        search: the configurations (grid or an Optuna sampler, told each configuration's mean metric).
        seeds: ``seed_everything`` of each run of a configuration; None: the config's own seed, one run.
        sweep_dir: the sweep's folder (made by :func:`sweep_folder`).
        extra: arguments for every run, before the sweep's parameters.
        launcher: the command that runs ``hashbench``.
        resume_command: the command line that continues the sweep, printed on Ctrl-C.

    Returns:
        0 when every run completed, 1 when some failed, 130 when interrupted.
    """
    env = {key: value for key, value in os.environ.items() if key != RUN_DIR_ENV}
    env["PYTHONUNBUFFERED"] = "1"  # output.log follows the run
    metric = sweep.metric
    results: list[RunResult] = []
    per_seed: list[int | None] = list(seeds) if seeds else [None]
    for index in range(search.total):
        params = search.ask(index)
        configuration = configuration_label(index, params)
        mine: list[RunResult] = []
        for seed in per_seed:
            label = run_label(configuration, seed)
            run_params = params if seed is None else {**params, SEED_KEY: seed}
            done = _finished(sweep_dir / label)
            if done is not None:
                print(f"[{index + 1}/{search.total}] {label}: completed earlier, skipped", flush=True)
                mine.append(RunResult(configuration, label, params, seed, "completed", folder=done))
                continue
            own = ["--trainer.default_root_dir", str(sweep_dir), "--run_name", label, *extra]
            command = [*launcher, *hashbench_args(sweep, run_params, own)]
            print(f"[{index + 1}/{search.total}] {label}", flush=True)
            (sweep_dir / label).mkdir(parents=True, exist_ok=True)
            started = time.monotonic()
            code, interrupted = _launch(command, sweep_dir / label / LOG_FILE, env)
            folders = RunFolder.find(sweep_dir / label)
            folder = folders[-1] if folders else None
            status, error = _outcome(code, interrupted, folder)
            result = RunResult(
                configuration, label, params, seed, status, time.monotonic() - started, folder, error
            )
            mine.append(result)
            results_now = [*results, *mine]
            write_summary(sweep_dir, results_now, metric, sweep.goal)
            print(f"    {status} in {result.seconds:.0f}s; log: {sweep_dir / label / LOG_FILE}", flush=True)
            if interrupted:
                print(
                    f"interrupted: {sweep_dir / 'summary.csv'} lists the runs so far; "
                    f"continue with `{resume_command}`",
                    file=sys.stderr,
                )
                return 130
        results += mine
        chosen = selection_metric(metric, results)
        found = estimate([r.value(chosen) for r in mine]) if chosen else None
        search.tell(found.mean if found else None)
    selected = write_summary(sweep_dir, results, metric, sweep.goal)
    print_summary(sweep.name, results, metric, selected, sweep_dir)
    return 0 if all(r.status == "completed" for r in results) else 1


def dry_run(
    sweep: Sweep, search: Search, seeds: Sequence[int] | None, root: Path, extra: Sequence[str]
) -> None:
    """Print the commands a grid sweep would run (random and bayes: the first draws, untold)."""
    sweep_dir = root / safe_name(sweep.name) / "<timestamp>"
    for index in range(search.total):
        params = search.ask(index)
        configuration = configuration_label(index, params)
        for seed in list(seeds) if seeds else [None]:
            own = [
                "--trainer.default_root_dir",
                str(sweep_dir),
                "--run_name",
                run_label(configuration, seed),
                *extra,
            ]
            run_params = params if seed is None else {**params, SEED_KEY: seed}
            print(shlex.join([*HASHBENCH, *hashbench_args(sweep, run_params, own)]))
        search.tell(None)
