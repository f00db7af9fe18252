"""``hashbench fit`` with 2 gloo processes on CPU (Lightning's launcher, and torchrun), then
``hashbench test`` of its weights on 2 processes and on 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import EXPERIMENTS, REPO, run_hashbench

DDP = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
ONE = ["--trainer.accelerator", "cpu", "--trainer.devices", "1"]
METRICS = ("mAP@all", "P@100", "P@H<=2", "bit_entropy", "code_usage", "quantization_error")


def _run_dirs(root: Path) -> list[Path]:
    return [p for p in root.glob("*/*") if p.is_dir()]


def test_ddp_fit_then_test_on_two_and_one_process_agree(tmp_path: Path) -> None:
    fit = run_hashbench(
        "fit", "--config", EXPERIMENTS / "demo.yaml", *DDP,
        "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "3",
        "--trainer.check_val_every_n_epoch", "1", "--trainer.logger", "false",
        "--trainer.default_root_dir", tmp_path / "fit", "--test_after_fit", "true",
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr[-3000:]
    assert "MEMBER: 2/2" in fit.stderr, "two processes must have trained"
    assert "sync_dist" not in fit.stderr, "every logged value is global: no per-rank warning"
    (run_dir,) = _run_dirs(tmp_path / "fit")  # the ranks share one run folder
    fit_metrics = json.loads((run_dir / "metrics.json").read_text())
    assert fit_metrics["global_step"] == 6 and (run_dir / "run.json").is_file()
    checkpoint = Path(fit_metrics["checkpoint"])
    assert checkpoint.parent == run_dir / "checkpoints" and checkpoint.is_file()

    tested = {}
    for devices, args in (("2", DDP), ("1", ONE)):
        root = tmp_path / f"test{devices}"
        test = run_hashbench(
            "test", "--config", run_dir / "config.yaml", "--ckpt_path", checkpoint, *args,
            "--trainer.logger", "false", "--trainer.default_root_dir", root,
        )  # fmt: skip
        assert test.returncode == 0, test.stderr[-3000:]
        (test_dir,) = _run_dirs(root)
        tested[devices] = json.loads((test_dir / "metrics.json").read_text())
    for name in METRICS:
        assert tested["2"][f"test/{name}"] == tested["1"][f"test/{name}"], name
        assert tested["1"][f"test/{name}"] == fit_metrics[f"test/{name}"], name


def test_torchrun_processes_share_one_run_folder(tmp_path: Path) -> None:
    """torchrun starts every process itself: they agree on ``<root>/<name>/torchrun-<rdzv id>``."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "hashbench", "fit", "--config", EXPERIMENTS / "demo.yaml", *DDP,
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
        "--trainer.logger", "false", "--trainer.default_root_dir", tmp_path,
    ]  # fmt: skip
    result = subprocess.run(list(map(str, command)), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MEMBER: 2/2" in result.stderr
    (run_dir,) = _run_dirs(tmp_path)
    assert run_dir.name.startswith("torchrun-")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert Path(metrics["checkpoint"]).parent == run_dir / "checkpoints" and "val/mAP@all" in metrics
