"""The real ``hashbench`` command, end to end, in subprocesses."""

from __future__ import annotations

import gc
import json
import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from conftest import EXPERIMENTS, run_hashbench

from hashbench.cli import main
from hashbench.module import HashingModule

DEMO = EXPERIMENTS / "demo.yaml"
QUICK = [
    "--trainer.max_epochs",
    "2",
    "--trainer.limit_train_batches",
    "3",
    "--trainer.check_val_every_n_epoch",
    "1",
]


def _only_run_dir(root: Path) -> Path:
    runs = [p for p in root.glob("*/*") if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def from_checkpoint(
    subcommand: str, run_dir: Path, root: Path, *extra: object
) -> subprocess.CompletedProcess:
    """``hashbench <subcommand>`` on a finished run's config and checkpoint, logger off, runs in ``root``."""
    checkpoint = json.loads((run_dir / "metrics.json").read_text())["checkpoint"]
    return run_hashbench(
        subcommand,
        "--config",
        run_dir / "config.yaml",
        "--ckpt_path",
        checkpoint,
        "--trainer.default_root_dir",
        root,
        "--trainer.logger",
        "false",
        *extra,
    )


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One short demo fit, shared by the tests that read its run folder."""
    root = tmp_path_factory.mktemp("runs")
    result = run_hashbench("fit", "--config", DEMO, *QUICK, "--trainer.default_root_dir", root)
    assert result.returncode == 0, result.stderr[-3000:]
    return _only_run_dir(root), result.stdout


def test_fit_writes_run_folder_and_prints_metric_table(fitted: tuple[Path, str]) -> None:
    run_dir, stdout = fitted
    assert run_dir.parent.name == "demo"
    assert "final metrics, validation queries vs database" in stdout and "mAP@all" in stdout
    assert f"run folder: {run_dir}" in stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["val/mAP@all"] <= 1.0
    assert {"val/P@100", "val/P@H<=2", "val/bit_entropy", "train/loss", "train/loss/similarity"} <= set(
        metrics
    )
    assert metrics["epoch"] == 2
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["model"]["head"]["init_args"]["bits"] == 32
    assert config["trainer"]["max_epochs"] == 2
    assert (
        Path(metrics["checkpoint"]).is_file()
        and Path(metrics["checkpoint"]).parent == run_dir / "checkpoints"
    )
    assert (run_dir / "lightning_logs").is_dir()  # the CSV logger writes inside the run folder


def test_validate_from_checkpoint_reproduces_final_metrics(fitted: tuple[Path, str], tmp_path: Path) -> None:
    run_dir, _ = fitted
    fit_metrics = json.loads((run_dir / "metrics.json").read_text())
    result = from_checkpoint("validate", run_dir, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    val_metrics = json.loads((_only_run_dir(tmp_path) / "metrics.json").read_text())
    for name in ("mAP@all", "P@100", "P@H<=2", "bit_entropy", "quantization_error"):
        assert val_metrics[f"val/{name}"] == pytest.approx(fit_metrics[f"val/{name}"], abs=1e-6), name


def test_load_from_checkpoint_needs_no_arguments(fitted: tuple[Path, str]) -> None:
    run_dir, _ = fitted
    checkpoint = json.loads((run_dir / "metrics.json").read_text())["checkpoint"]
    model = HashingModule.load_from_checkpoint(checkpoint)
    state = torch.load(checkpoint, weights_only=False)["state_dict"]
    assert model.bits == 32 and type(model.loss).__name__ == "DPSH"
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, state[name])
    assert any(name.startswith("loss.") for name in state), "the DPSH code bank is checkpointed"


def test_predict_writes_packed_codes_to_the_run_folder(fitted: tuple[Path, str], tmp_path: Path) -> None:
    run_dir, _ = fitted
    result = from_checkpoint("predict", run_dir, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = torch.load(_only_run_dir(tmp_path) / "codes.pt")
    assert saved["bits"] == 32
    assert saved["query"]["codes"].shape == (200, 4) and saved["query"]["codes"].dtype == torch.uint8
    assert saved["database"]["indices"].tolist() == list(range(797))


def test_ddp_validate_with_two_gloo_ranks_equals_one_process(
    fitted: tuple[Path, str], tmp_path: Path
) -> None:
    """Uneven shards (597 validation database items on 2 ranks) exercise the dedup of DistributedSampler's
    padding."""
    run_dir, _ = fitted
    fit_metrics = json.loads((run_dir / "metrics.json").read_text())
    result = from_checkpoint(
        "validate",
        run_dir,
        tmp_path,
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "2",
        "--trainer.strategy",
        "ddp",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MEMBER: 2/2" in result.stderr, "two processes must have run"
    val_metrics = json.loads((_only_run_dir(tmp_path) / "metrics.json").read_text())
    for name in ("mAP@all", "P@100", "P@H<=2", "bit_entropy", "code_usage", "quantization_error"):
        assert val_metrics[f"val/{name}"] == fit_metrics[f"val/{name}"], name


def test_runs_never_share_a_folder_and_work_without_logger(tmp_path: Path) -> None:
    args = ["fit", "--config", DEMO, "--trainer.fast_dev_run", "1", "--trainer.logger", "false"]
    for _ in range(2):
        result = run_hashbench(*args, "--trainer.default_root_dir", tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(p for p in tmp_path.glob("demo/*") if p.is_dir())
    assert len(runs) == 2
    for run in runs:
        assert (run / "config.yaml").is_file() and (run / "metrics.json").is_file()


def hashbench_in_process(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    """Run ``hashbench.cli.main`` in this process (parse-level checks need no subprocess)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_training_imports_pause_the_collector_and_freeze_what_they_made() -> None:
    """Lightning imports with the cycle collector paused; afterwards the collector runs again (also when
    an import fails) and what the imports made is frozen, never rescanned."""
    from hashbench.cli import _long_lived_objects

    assert gc.isenabled()
    try:
        with pytest.raises(ImportError), _long_lived_objects():
            assert not gc.isenabled()
            import hashbench.no_such_module  # noqa: F401
        assert gc.isenabled() and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_python_m_hashbench_help() -> None:
    result = run_hashbench("fit", "--help")
    assert result.returncode == 0 and "--model.quantization_weight" in result.stdout


def test_print_config_with_overrides(capsys: pytest.CaptureFixture) -> None:
    code, out, err = hashbench_in_process(
        capsys,
        "fit",
        "--config",
        DEMO,
        "--model.quantization_weight",
        "0.5",
        "--model.quantizer.target",
        "exact",
        "--print_config",
    )
    assert code == 0, err
    printed = yaml.safe_load(out)
    assert printed["model"]["quantization_weight"] == 0.5
    assert printed["model"]["quantizer"]["init_args"]["target"] == "exact"


def test_multiple_config_files_compose(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    override = tmp_path / "bits16.yaml"
    override.write_text("model:\n  head:\n    bits: 16\n")
    code, out, err = hashbench_in_process(
        capsys, "fit", "--config", DEMO, "--config", override, "--print_config"
    )
    assert code == 0, err
    assert yaml.safe_load(out)["model"]["head"]["init_args"]["bits"] == 16


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--config", "experiments/no_such.yaml"], "no_such.yaml"),
        (
            ["--config", str(DEMO), "--model.quantization_wieght", "1"],
            "Did you mean 'model.quantization_weight'",
        ),
        (["--config", str(DEMO), "--trainer.max_epoch", "1"], "Did you mean 'trainer.max_epochs'"),
        (["--config", str(DEMO), "--model.quantizer.targt", "exact"], "Did you mean 'target'"),
        (["--config", str(DEMO), "--model.quantization_weight", "abc"], "quantization_weight"),
        (["--config", str(DEMO), "--model.head.bits", "0"], "bits must be >= 1"),
        (["--config", str(DEMO), "--model.quantizer", "HSWDD"], "Did you mean 'HSWD'"),
        (["--config", str(DEMO), "--data.init_args.query_per_class", "500"], "lower them"),
    ],
    ids=[
        "missing-config",
        "unknown-key",
        "abbreviated-key",
        "unknown-nested-key",
        "wrong-type",
        "bits-below-one",
        "unknown-quantizer",
        "impossible-split",
    ],
)
def test_user_errors_are_short_and_exit_2(
    args: list[str], expected: str, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    code, _, err = hashbench_in_process(capsys, "fit", *args, "--trainer.default_root_dir", tmp_path)
    assert code == 2, err
    assert expected in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) <= 3, err


def test_user_error_through_the_real_command() -> None:
    result = run_hashbench("fit", "--config", DEMO, "--model.head.init_args.bitz", "3")
    assert result.returncode == 2
    assert "has no option 'bitz'. Did you mean 'bits'?" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 3


def test_wandb_goes_offline_by_itself_without_credentials(tmp_path: Path) -> None:
    home = tmp_path / "home"  # no ~/.netrc, no WANDB_API_KEY, no WANDB_MODE
    home.mkdir()
    result = run_hashbench(
        "fit",
        "--config",
        DEMO,
        "--trainer.logger",
        "hashbench.loggers.AutoOfflineWandbLogger",
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "2",
        "--trainer.default_root_dir",
        tmp_path / "runs",
        env={"HOME": str(home), "WANDB_MODE": None, "WANDB_API_KEY": None, "WANDB_DIR": None},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "W&B: no credentials found, logging offline" in result.stdout + result.stderr
    run_dir = _only_run_dir(tmp_path / "runs")
    assert list((run_dir / "wandb").glob("offline-run-*")), "the offline W&B run lives in the run folder"
