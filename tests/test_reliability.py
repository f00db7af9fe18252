"""Runs fail loudly and resume exactly: divergence, checkpoints, interruptions, bad arguments.

Each fit is the digits demo cut to a few batches, in this process (``hashbench.cli.main``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import EXPERIMENTS
from lightning import Callback, LightningModule, Trainer
from test_cli import hashbench_in_process

from hashbench.runs.folder import RunFolder

DEMO = EXPERIMENTS / "demo.yaml"
QUIET = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false", "--trainer.callbacks", "null"]
SHORT = ["--trainer.limit_train_batches", "4", "--trainer.check_val_every_n_epoch", "2", *QUIET]


class InterruptAtEpoch(Callback):
    """Raises KeyboardInterrupt (as Ctrl-C does) when the given training epoch starts."""

    def __init__(self, epoch: int = 1) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise KeyboardInterrupt


def fit(capsys: pytest.CaptureFixture, root: Path, *extra: object) -> tuple[int, str, str]:
    return hashbench_in_process(
        capsys, "fit", "--config", DEMO, *SHORT, "--trainer.default_root_dir", root, *extra
    )


def run_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*/*") if p.is_dir())


def final_state(run_dir: Path) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    (checkpoint,) = (run_dir / "checkpoints").glob("*.ckpt")
    weights = torch.load(checkpoint, weights_only=True)["state_dict"]
    return {k: v for k, v in metrics.items() if k.startswith(("val/", "train/"))}, weights


@pytest.fixture(scope="module")
def four_epochs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 epochs straight, validated at epochs 2 and 4."""
    from hashbench.cli import main

    root = tmp_path_factory.mktemp("straight")
    main(
        [
            "fit",
            "--config",
            str(DEMO),
            *SHORT,
            "--trainer.max_epochs",
            "4",
            "--trainer.default_root_dir",
            str(root),
        ]
    )
    (run_dir,) = run_dirs(root)
    return run_dir


def test_resuming_from_an_epoch_checkpoint_ends_exactly_as_the_uninterrupted_run(
    four_epochs: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code, _, err = fit(capsys, tmp_path / "first", "--trainer.max_epochs", "2")
    assert code == 0, err
    (checkpoint,) = (run_dirs(tmp_path / "first")[0] / "checkpoints").glob("*.ckpt")
    code, _, err = fit(capsys, tmp_path / "resumed", "--trainer.max_epochs", "4", "--ckpt_path", checkpoint)
    assert code == 0, err
    metrics, weights = final_state(run_dirs(tmp_path / "resumed")[0])
    expected_metrics, expected_weights = final_state(four_epochs)
    assert metrics == expected_metrics and "train/loss" in metrics
    assert all(torch.equal(weights[name], value) for name, value in expected_weights.items())


def test_validating_more_often_changes_nothing(
    four_epochs: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code, _, err = fit(
        capsys, tmp_path, "--trainer.max_epochs", "4", "--trainer.check_val_every_n_epoch", "1"
    )
    assert code == 0, err
    metrics, weights = final_state(run_dirs(tmp_path)[0])
    expected_metrics, expected_weights = final_state(four_epochs)
    assert metrics == expected_metrics
    assert all(torch.equal(weights[name], value) for name, value in expected_weights.items())


def test_a_diverged_run_stops_with_the_term_the_step_and_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code, _, err = fit(
        capsys, tmp_path, "--model.optimizer", "torch.optim.SGD", "--model.optimizer.init_args.lr", "1e30"
    )
    assert code == 2
    assert "training diverged at epoch 0, step 1" in err and "similarity = nan" in err
    assert "model.optimizer.init_args.lr" in err and "model.quantization_weight" in err
    (run_dir,) = run_dirs(tmp_path)
    run = RunFolder(run_dir)
    assert run.status == "failed" and "training diverged" in (run.error or "")
    metrics = run_dir / "metrics.json"  # written only if the run logged any; non-finite values are null
    assert not metrics.is_file() or "nan" not in metrics.read_text().lower()


def test_a_checkpoint_that_disagrees_with_the_config_is_refused(
    four_epochs: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (checkpoint,) = (four_epochs / "checkpoints").glob("*.ckpt")
    code, _, err = hashbench_in_process(
        capsys, "test", "--config", four_epochs / "config.yaml", "--ckpt_path", checkpoint,
        "--model.head.init_args.bits", "16", "--trainer.default_root_dir", tmp_path, *QUIET,
    )  # fmt: skip
    assert code == 2
    assert "model.head.init_args.bits: checkpoint 32, config 16" in err
    assert run_dirs(tmp_path) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ckpt_path", "missing.ckpt"], "--ckpt_path missing.ckpt: no such file"),
        (["--ckpt_path", "{not_a_checkpoint}"], "is not a checkpoint written by `hashbench fit`"),
        (["--model.hamming_radius", "-1"], "hamming_radius must be in [0, bits=32], got -1"),
        (["--model.precision_k", "0"], "precision_k (K of P@K) must be >= 1, got 0"),
        (["--data.init_args.batch_size", "0"], "the config is invalid: batch_size must be >= 1, got 0"),
        (["--trainer.default_root_dir", "{a_file}"], "cannot create a run folder under"),
        (
            ["--trainer.callbacks", "lightning.pytorch.callbacks.RichProgressBar"],
            "`enable_progress_bar=False` but found `RichProgressBar`",
        ),
        (
            [
                "--trainer.callbacks",
                "lightning.pytorch.callbacks.ModelCheckpoint",
                "--trainer.callbacks.monitor",
                "test/mAP@all",
            ],
            "would select on the test queries; monitor a validation metric instead (e.g. 'val/mAP@all')",
        ),
        (["--config", "{bad_yaml}"], "bad.yaml: not valid YAML (line 2, column 1)"),
    ],
)
def test_bad_arguments_get_one_clear_line_and_leave_no_run_folder(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "a_file").write_text("")
    (tmp_path / "not_a_checkpoint").write_text("not a checkpoint")
    (tmp_path / "bad.yaml").write_text("model: [1,\n")
    args = [arg.format(a_file=tmp_path / "a_file", not_a_checkpoint=tmp_path / "not_a_checkpoint",
                       bad_yaml=tmp_path / "bad.yaml") for arg in args]  # fmt: skip
    root = tmp_path / "runs"
    code, _, err = fit(capsys, root, *args)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not root.exists() or run_dirs(root) == []


def test_untrained_metrics_are_labelled(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.warns(UserWarning, match="UNTRAINED model's metrics"):
        code, out, err = fit(capsys, tmp_path, "--trainer.max_epochs", "0")
    assert code == 0, err
    assert "untrained model, validation queries vs database" in out
    with pytest.warns(UserWarning, match="test without --ckpt_path evaluates the UNTRAINED initial weights"):
        code, _, err = hashbench_in_process(
            capsys, "test", "--config", DEMO, "--trainer.default_root_dir", tmp_path, *QUIET
        )
    assert code == 0, err


def test_ctrl_c_prints_the_resume_command_and_exits_130(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code, out, _ = fit(
        capsys, tmp_path, "--trainer.max_epochs", "3", "--trainer.callbacks", f"{__name__}.InterruptAtEpoch"
    )
    assert code == 130
    (run_dir,) = run_dirs(tmp_path)
    (checkpoint,) = (run_dir / "checkpoints").glob("*.ckpt")
    assert f"hashbench fit --config {run_dir / 'config.yaml'} --ckpt_path {checkpoint}" in out
