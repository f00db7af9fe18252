"""The sweep files against the real CLI, the sampling, and the local sweep runner ``hashbench sweep``."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import EXPERIMENTS, REPO, run_hashbench
from test_cli import hashbench_in_process

from hashbench.cli.training import resolve_config
from hashbench.errors import UserError
from hashbench.runs import RunFolder
from hashbench.sweeps.check import check_sweep
from hashbench.sweeps.runner import configuration_label, run_sweep, sweep_folder
from hashbench.sweeps.sampling import Search
from hashbench.sweeps.spec import hashbench_args, load_sweep

SWEEPS = sorted((EXPERIMENTS / "sweeps").glob("*.yaml"))
FAKE = (sys.executable, str(Path(__file__).with_name("fake_hashbench.py")))


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # sweep commands use paths relative to the repository, as `wandb agent` runs them


def _sweep_file(tmp_path: Path, parameters: dict, **fields: object) -> Path:
    """A copy of lambda.yaml with other parameters (and fields)."""
    raw = yaml.safe_load((EXPERIMENTS / "sweeps" / "lambda.yaml").read_text())
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({**raw, "parameters": parameters, **fields}, sort_keys=False))
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_the_sweep_files_select_on_validation_report_test_and_run_three_seeds() -> None:
    assert [p.name for p in SWEEPS] == ["bits.yaml", "lambda.yaml"]
    lam, bits = load_sweep(EXPERIMENTS / "sweeps" / "lambda.yaml"), load_sweep(SWEEPS[0])
    assert lam.method == bits.method == "grid"
    assert set(lam.parameters) == {"model.quantizer", "model.quantization_weight"}
    assert set(bits.parameters) == {"model.quantizer", "model.head.init_args.bits"}
    for sweep in (lam, bits):
        assert sweep.seeds == [0, 1, 2] and (sweep.metric, sweep.goal) == ("val/mAP@all", "maximize")
        assert sweep.command[:4] == ["hashbench", "fit", "--config", "experiments/demo.yaml"]
        assert "--test_after_fit=true" in sweep.command


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_every_parameter_value_parses_with_the_real_cli_and_lands_under_its_key(path: Path) -> None:
    assert check_sweep(load_sweep(path), resolve_config) == []


def test_misspelt_shorthand_and_unparsable_parameters_fail_the_check_without_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    sweep = load_sweep(
        _sweep_file(
            tmp_path,
            {
                "model.quantization_wieght": {"values": [0.1]},  # misspelt
                "model.head.bits": {"value": 16},  # accepted by the CLI, but not the config's key
                "model.quantizer": {"values": [None]},  # the agent passes --model.quantizer=None
            },
        )
    )
    problems = check_sweep(sweep, resolve_config)
    assert len(problems) == 3, problems
    assert "Did you mean 'model.quantization_weight'" in problems[0]
    assert "'model.head.init_args.bits'" in problems[1]
    assert "unknown class 'None'" in problems[2]
    code, out, err = hashbench_in_process(capsys, "sweep", sweep.path, "--check")
    assert code == 1 and err.count(f"{sweep.path}: ") == 3
    assert len(err.strip().splitlines()) == 3 and "Warning" not in err + out, "nothing but the problems"


def test_grid_and_optuna_random_and_bayes_configurations(tmp_path: Path) -> None:
    grid = Search(load_sweep(EXPERIMENTS / "sweeps" / "lambda.yaml"), None)
    runs = [grid.ask(i) for i in range(grid.total)]
    assert len(runs) == 15 and runs[0] == {"model.quantizer": "original", "model.quantization_weight": 0.001}
    assert Search(grid.sweep, 4).total == 4, "--count caps a grid, as `wandb agent --count`"
    parameters = {
        "model.quantization_weight": {"distribution": "log_uniform_values", "min": 0.001, "max": 10.0},
        "model.head.init_args.bits": {"values": [16, 32]},
        "trainer.max_epochs": {"min": 1, "max": 3},
        "model.loss.init_args.margin": {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.25},
        "data.init_args.batch_size": {"value": 7},
    }
    for method in ("random", "bayes"):
        sweep = load_sweep(_sweep_file(tmp_path, parameters, method=method))
        with pytest.raises(UserError, match="--count"):
            Search(sweep, None)

        def draws(seed: int, sweep: object = sweep) -> list[dict]:
            search = Search(sweep, 20, seed)  # type: ignore[arg-type]
            out = []
            for i in range(20):
                out.append(search.ask(i))
                search.tell(out[-1]["model.quantization_weight"])  # an objective the sampler can model
            return out

        drawn = draws(3)
        assert drawn == draws(3) != draws(4)
        assert all(0.001 <= run["model.quantization_weight"] <= 10.0 for run in drawn)
        assert {run["trainer.max_epochs"] for run in drawn} <= {1, 2, 3}
        assert {run["model.loss.init_args.margin"] for run in drawn} <= {0.0, 0.25, 0.5, 0.75, 1.0}
        assert {run["model.head.init_args.bits"] for run in drawn} == {16, 32}
        assert {run["data.init_args.batch_size"] for run in drawn} == {7}
    normal = load_sweep(_sweep_file(tmp_path, {"x": {"distribution": "normal"}}, method="random"))
    with pytest.raises(UserError, match="normal distribution is not supported by local sweeps"):
        Search(normal, 2)
    with pytest.raises(UserError, match="grid search needs value or values"):
        load_sweep(_sweep_file(tmp_path, parameters, method="grid"))


def test_the_command_is_the_one_the_agent_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sweep = load_sweep(EXPERIMENTS / "sweeps" / "lambda.yaml")
    params = {"model.quantizer": "hashbench.quantizers.HSWD", "model.quantization_weight": 0.1}
    assert hashbench_args(sweep, params, ["--trainer.max_epochs", "1"]) == [
        "fit", "--config", "experiments/demo.yaml",
        "--trainer.logger", "hashbench.loggers.AutoOfflineWandbLogger",
        "--test_after_fit=true",
        "--trainer.max_epochs", "1",  # extra arguments go before the parameters, which win
        "--model.quantizer=hashbench.quantizers.HSWD", "--model.quantization_weight=0.1",
    ]  # fmt: skip
    assert configuration_label(3, params) == "003_quantizer-HSWD_quantization_weight-0.1"
    assert configuration_label(0, {"config": "experiments/digits/itq.yaml"}) == "000_config-itq"
    code, out, err = hashbench_in_process(
        capsys, "sweep", sweep.path, "--local", "--count", "2", "--root", tmp_path, "--dry-run",
        "--seeds", "[5,6]", "--", "-x",
    )  # fmt: skip
    assert code == 0, err
    commands = out.strip().splitlines()[1:]  # after the line saying that --seeds replaces the file's seeds
    assert len(commands) == 4 and commands[1].startswith(f"{sys.executable} -m hashbench fit --config")
    assert (
        "--run_name 001_quantizer-original_quantization_weight-0.01_seed-6 -x --model.quantizer=original"
        in out
    )
    assert commands[3].endswith("--model.quantization_weight=0.01 --seed_everything=6")
    assert not list(tmp_path.iterdir()), "a dry run creates nothing"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "add --local"),
        (["--local", "--count", "0"], "--count must be >= 1"),
    ],
)
def test_sweep_usage_errors(args: list[str], expected: str, capsys: pytest.CaptureFixture) -> None:
    code, _, err = hashbench_in_process(capsys, "sweep", EXPERIMENTS / "sweeps" / "bits.yaml", *args)
    assert code == 2 and expected in err


def test_bad_sweep_files_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="method must be one of"):
        load_sweep(_sweep_file(tmp_path, {"a": {"value": 1}}, method="hyperband"))
    with pytest.raises(UserError, match="command must run `hashbench"):
        load_sweep(_sweep_file(tmp_path, {"a": {"value": 1}}, command=["python", "train.py", "${args}"]))
    with pytest.raises(UserError, match="nested parameters"):
        load_sweep(_sweep_file(tmp_path, {"model": {"parameters": {"a": {"value": 1}}}}))
    with pytest.raises(UserError, match="must be a validation metric"):
        load_sweep(_sweep_file(tmp_path, {"a": {"value": 1}}, metric={"name": "test/mAP@all"}))
    with pytest.raises(UserError, match="integer seeds"):
        load_sweep(_sweep_file(tmp_path, {"seed_everything": {"values": ["a"]}}))


def _fake_sweep(tmp_path: Path, lambdas: list[float], seeds: list[int]) -> Path:
    return _sweep_file(
        tmp_path,
        {"model.quantization_weight": {"values": lambdas}, "seed_everything": {"values": seeds}},
        name="fake",
        command=["hashbench", "fit", "${args}"],
    )


def test_runner_reports_failures_selects_on_validation_aggregates_seeds_and_resumes(tmp_path: Path) -> None:
    sweep = load_sweep(_fake_sweep(tmp_path, [0.01, 0.1, 1.0, -1.0], [0, 1, 2]))
    sweep_dir = sweep_folder(tmp_path / "sweeps", sweep, resume=True)  # never ran: a fresh folder
    assert run_sweep(sweep, Search(sweep, None), sweep.seeds, sweep_dir, launcher=FAKE) == 1
    runs = _rows(sweep_dir / "summary.csv")
    assert len(runs) == 12 and [r["seed"] for r in runs[:3]] == ["0", "1", "2"]
    failed = [r for r in runs if r["status"] != "completed"]
    assert {r["model.quantization_weight"] for r in failed} == {"-1.0"} and len(failed) == 3
    assert failed[0]["error"] == "ValueError: quantization_weight must be >= 0"
    assert RunFolder(failed[0]["run_dir"]).status == "failed"
    configurations = _rows(sweep_dir / "aggregate.csv")
    (selected,) = [c for c in configurations if c["selected"] == "True"]
    assert selected["model.quantization_weight"] == "0.1", "val peaks at 0.1; test is best at 0.01 and 1.0"
    assert selected["seeds"] == "3" and float(selected["val/mAP@all mean"]) == pytest.approx(0.51)
    assert float(selected["val/mAP@all std"]) == pytest.approx(0.01)
    assert float(selected["test/mAP@all ci95 high"]) - 0.49 == pytest.approx(4.3027 * 0.01 / 3**0.5, rel=1e-4)
    assert "val/unstable mean" not in selected, "a NaN metric is null in metrics.json, never averaged"
    assert configurations[3]["seeds"] == "0" and configurations[3]["failed"] == "3"

    first_ok = Path(runs[0]["run_dir"])
    resumed = sweep_folder(tmp_path / "sweeps", sweep, resume=True)
    assert resumed == sweep_dir
    assert run_sweep(sweep, Search(sweep, None), sweep.seeds, resumed, launcher=FAKE) == 1
    again = _rows(sweep_dir / "summary.csv")
    assert again[0]["run_dir"] == str(first_ok), "completed runs are skipped"
    assert [p.name for p in (sweep_dir / runs[-1]["run"]).glob("*/run.json")].__len__() == 2, "failed rerun"


def test_ctrl_c_marks_the_run_interrupted_writes_the_summary_and_exits_130(tmp_path: Path) -> None:
    path = _fake_sweep(tmp_path, [0.1], [0, 1])
    started = tmp_path / "started"
    script = (  # Ctrl-C reaches a sweep run in the foreground, where SIGINT is at its default; the tests
        # may run where it is ignored (a shell's background job), and an ignored SIGINT is inherited
        "import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "import sys\nfrom pathlib import Path\nfrom hashbench.sweeps.spec import load_sweep\n"
        "from hashbench.sweeps.sampling import Search\n"
        "from hashbench.sweeps.runner import run_sweep, sweep_folder\n"
        f"s = load_sweep({str(path)!r}); d = sweep_folder(Path({str(tmp_path / 'sweeps')!r}), s, False)\n"
        f"sys.exit(run_sweep(s, Search(s, None), s.seeds, d, launcher={FAKE!r}, resume_command='AGAIN'))"
    )
    env = {**os.environ, "FAKE_WAIT": str(started)}
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the sweep and its run
    try:
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:  # hung: leave no sweep or run behind
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130 and "continue with `AGAIN`" in err
    (summary,) = (tmp_path / "sweeps").glob("fake/*/summary.csv")
    (run,) = _rows(summary)
    assert run["status"] == "interrupted" and RunFolder(run["run_dir"]).status == "interrupted"


def test_local_sweep_runs_the_real_cli_and_records_a_failed_run(tmp_path: Path) -> None:
    path = _sweep_file(tmp_path, {"model.head.init_args.bits": {"values": [0, 8]}}, name="tiny")
    result = run_hashbench(
        "sweep", path, "--local", "--root", tmp_path / "sweeps", "--",
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.logger", "false",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "sweeps" / "tiny").iterdir()
    assert (sweep_dir / "sweep.yaml").read_text() == path.read_text()
    failed, ok = _rows(sweep_dir / "summary.csv")
    assert failed["status"] == "failed" and failed["model.head.init_args.bits"] == "0"
    assert "bits must be >= 1" in (sweep_dir / failed["run"] / "output.log").read_text()
    assert ok["status"] == "completed" and ok["run"] == "001_bits-8"
    assert (ok["method"], ok["quantizer"], ok["bits"], ok["dataset"]) == ("DPSH", "HSWD", "8", "Digits")
    run_dir = Path(ok["run_dir"])
    assert run_dir.parent == sweep_dir / "001_bits-8"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert float(ok["val/mAP@all"]) == pytest.approx(metrics["val/mAP@all"])
    assert float(ok["test/mAP@all"]) == pytest.approx(metrics["test/mAP@all"]), "--test_after_fit=true"
    assert "train/loss" not in ok, "the summary lists the final val/test metrics"
    assert "sweep tiny" in result.stdout and f"summary: {sweep_dir / 'summary.csv'}" in result.stdout


def test_the_methods_table_sweeps_cover_every_digits_overlay() -> None:
    overlays = sorted(  # every method; the fitted baselines (LSH, ITQ, SH) have no quantizer to swap
        f"experiments/digits/{p.name}"
        for p in (EXPERIMENTS / "digits").glob("*.yaml")
        if "hashbench.baselines." not in p.read_text()
    )
    for name in ("methods_original", "methods_hswd"):
        sweep = load_sweep(EXPERIMENTS / "tables" / f"{name}.yaml")
        assert sorted(sweep.parameters["config"]["values"]) == overlays
        assert sweep.seeds == [0, 1, 2] and "--test_after_fit=true" in sweep.command
