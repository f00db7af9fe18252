"""The sweep files against the real CLI parser, and the local sweep runner ``hashbench sweep``."""

from __future__ import annotations

import csv
import json
import random
import sys
from pathlib import Path

import pytest
import yaml
from conftest import EXPERIMENTS, REPO, run_hashbench
from test_cli import hashbench_in_process

from hashbench.errors import UserError
from hashbench.sweep import check_sweep, combinations, hashbench_args, load_sweep, run_label, sample

SWEEPS = sorted((EXPERIMENTS / "sweeps").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # sweep commands use paths relative to the repository, as `wandb agent` runs them


def _sweep_file(tmp_path: Path, parameters: dict, **fields: object) -> Path:
    """A copy of lambda.yaml with other parameters (and fields)."""
    raw = yaml.safe_load((EXPERIMENTS / "sweeps" / "lambda.yaml").read_text())
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({**raw, "parameters": parameters, **fields}, sort_keys=False))
    return path


def test_the_sweep_files_are_lambda_and_bits() -> None:
    assert [p.name for p in SWEEPS] == ["bits.yaml", "lambda.yaml"]
    lam, bits = load_sweep(EXPERIMENTS / "sweeps" / "lambda.yaml"), load_sweep(SWEEPS[0])
    assert lam.method == bits.method == "grid"
    assert set(lam.parameters) == {"model.quantizer", "model.quantization_weight"}
    assert set(bits.parameters) == {"model.quantizer", "model.head.init_args.bits"}
    assert lam.command[:4] == ["hashbench", "fit", "--config", "experiments/demo.yaml"]


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_every_parameter_value_parses_with_the_real_cli_and_lands_under_its_key(path: Path) -> None:
    assert check_sweep(load_sweep(path)) == []


def test_misspelt_shorthand_and_unparsable_parameters_fail_the_check(
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
    problems = check_sweep(sweep)
    assert len(problems) == 3, problems
    assert "Did you mean 'model.quantization_weight'" in problems[0]
    assert "'model.head.init_args.bits'" in problems[1]
    assert "unknown class 'None'" in problems[2]
    code, _, err = hashbench_in_process(capsys, "sweep", sweep.path, "--check")
    assert code == 1 and err.count(f"{sweep.path}: ") == 3


def test_grid_random_and_bayes_combinations(tmp_path: Path) -> None:
    grid = load_sweep(EXPERIMENTS / "sweeps" / "lambda.yaml")
    runs = combinations(grid, None)
    assert len(runs) == 15 and runs[0] == {"model.quantizer": "original", "model.quantization_weight": 0.001}
    assert combinations(grid, 4) == runs[:4], "--count caps a grid, as `wandb agent --count`"
    parameters = {
        "model.quantization_weight": {"distribution": "log_uniform_values", "min": 0.001, "max": 10.0},
        "model.head.init_args.bits": {"values": [16, 32]},
        "trainer.max_epochs": {"min": 1, "max": 3},
        "seed_everything": {"value": 7},
    }
    for method in ("random", "bayes"):
        sweep = load_sweep(_sweep_file(tmp_path, parameters, method=method))
        with pytest.raises(UserError, match="--count"):
            combinations(sweep, None)
        drawn = combinations(sweep, 20, seed=3)
        assert drawn == combinations(sweep, 20, seed=3) != combinations(sweep, 20, seed=4)
        assert all(0.001 <= run["model.quantization_weight"] <= 10.0 for run in drawn)
        assert {run["trainer.max_epochs"] for run in drawn} <= {1, 2, 3}
        assert {run["model.head.init_args.bits"] for run in drawn} == {16, 32}
        assert {run["seed_everything"] for run in drawn} == {7}
    normal = sample({"x": {"distribution": "q_normal", "mu": 10, "sigma": 3, "q": 2}}, random.Random(0))
    assert normal["x"] % 2 == 0
    with pytest.raises(UserError, match="grid search needs value or values"):
        load_sweep(_sweep_file(tmp_path, parameters, method="grid"))


def test_the_command_is_the_one_the_agent_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sweep = load_sweep(EXPERIMENTS / "sweeps" / "lambda.yaml")
    params = {"model.quantizer": "hashbench.quantizers.HSWD", "model.quantization_weight": 0.1}
    assert hashbench_args(sweep, params, ["--trainer.max_epochs", "1"]) == [
        "fit", "--config", "experiments/demo.yaml", "--trainer.logger", "hashbench.loggers.WandbLogger",
        "--trainer.max_epochs", "1",  # extra arguments go before the parameters, which win
        "--model.quantizer=hashbench.quantizers.HSWD", "--model.quantization_weight=0.1",
    ]  # fmt: skip
    assert run_label(3, params) == "003_quantizer-HSWD_quantization_weight-0.1"
    code, out, err = hashbench_in_process(
        capsys, "sweep", sweep.path, "--local", "--count", "2", "--root", tmp_path, "--dry-run", "--", "-x"
    )
    assert code == 0, err
    commands = out.strip().splitlines()
    assert len(commands) == 2 and commands[1].startswith(f"{sys.executable} -m hashbench fit --config")
    assert "--run_name 001_quantizer-original_quantization_weight-0.01 -x --model.quantizer=original" in out
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


def test_local_sweep_records_a_failed_run_and_goes_on(tmp_path: Path) -> None:
    path = _sweep_file(tmp_path, {"model.head.init_args.bits": {"values": [0, 8]}}, name="tiny")
    result = run_hashbench(
        "sweep", path, "--local", "--root", tmp_path / "sweeps", "--",
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.logger", "false",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "sweeps" / "tiny").iterdir()
    assert (sweep_dir / "sweep.yaml").read_text() == path.read_text()
    with (sweep_dir / "summary.csv").open() as handle:
        failed, ok = list(csv.DictReader(handle))
    assert failed["status"] == "failed (exit 2)" and failed["model.head.init_args.bits"] == "0"
    assert "bits must be >= 1" in (sweep_dir / failed["run"] / "output.log").read_text()
    assert ok["status"] == "ok" and ok["run"] == "001_bits-8"
    assert (ok["method"], ok["quantizer"], ok["bits"], ok["dataset"]) == ("DPSH", "HSWD", "8", "Digits")
    run_dir = Path(ok["run_dir"])
    assert run_dir.parent == sweep_dir / "001_bits-8"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert float(ok["val/mAP@all"]) == pytest.approx(metrics["val/mAP@all"])
    assert "train/loss" not in ok, "the summary lists the final val/test metrics"
    assert "sweep tiny" in result.stdout and f"summary: {sweep_dir / 'summary.csv'}" in result.stdout
