"""W&B logging done through the real command (offline), run descriptions, and the comparison helpers."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import yaml
from conftest import EXPERIMENTS, run_hashbench
from lightning import Trainer
from lightning.pytorch.demos.boring_classes import BoringModel
from test_cli import hashbench_in_process
from wandb.proto import wandb_internal_pb2

from hashbench.errors import UserError
from hashbench.runs import RunFolder, create_run_dir
from hashbench.runs.writer import RunWriter
from hashbench.tracking import compare
from hashbench.tracking.aggregate import Estimate, estimate, paired_difference, select
from hashbench.tracking.compare import RunRecord, best_lambda_runs, lambda_curves, paired_table, paper_table
from hashbench.tracking.describe import describe_run, flatten_config, variant_label

DEMO = EXPERIMENTS / "demo.yaml"
QUICK = [
    "--trainer.max_epochs",
    "1",
    "--trainer.limit_train_batches",
    "2",
    "--trainer.check_val_every_n_epoch",
    "1",
]


def wandb_records(run_dir: Path) -> Iterator[Any]:
    """The records of an offline W&B run's transaction log (``run-*.wandb``: W&B's LevelDB-style log)."""
    (log,) = run_dir.glob("run-*.wandb")
    data = log.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, chunk = 32768, 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        chunk += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            chunk = b""
            yield record


def offline_run(run_dir: Path) -> dict[str, Any]:
    """What the offline W&B run in a run folder recorded: run, config, logged keys, artifacts, images."""
    (wandb_dir,) = (run_dir / "wandb").glob("offline-run-*")
    out: dict[str, Any] = {"config": {}, "history": set(), "summary": set(), "artifacts": []}
    for record in wandb_records(wandb_dir):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["run"] = record.run
        elif kind == "config":
            out["config"].update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "history":
            out["history"] |= {item.key or "/".join(item.nested_key) for item in record.history.item}
        elif kind == "summary":
            out["summary"] |= {item.key or "/".join(item.nested_key) for item in record.summary.update}
        elif kind == "artifact":
            out["artifacts"].append(record.artifact.type)
    images = wandb_dir / "files" / "media" / "images"
    out["images"] = {str(p.relative_to(images)).rsplit("_", 2)[0] for p in images.rglob("*.png")}
    return out


def _only_run_dir(root: Path) -> Path:
    (run_dir,) = [p for p in root.glob("*/*") if p.is_dir()]
    return run_dir


def test_wandb_offline_run_has_derived_names_dotted_config_metrics_plots_and_asked_artifacts(
    tmp_path: Path,
) -> None:
    wandb_logger = ["--trainer.logger", "hashbench.loggers.AutoOfflineWandbLogger"]
    fit = run_hashbench(
        "fit", "--config", DEMO, *QUICK, *wandb_logger, "--trainer.logger.init_args.log_model", "true",
        "--trainer.default_root_dir", tmp_path / "fit",
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr[-3000:]
    fit_dir = _only_run_dir(tmp_path / "fit")
    assert json.loads((fit_dir / "run.json").read_text()) == {
        "method": "DPSH", "quantizer": "HSWD", "bits": 32, "dataset": "Digits", "backbone": "SmallCNN",
        "quantization_weight": 0.1, "subcommand": "fit", "status": "completed",
    }  # fmt: skip
    logged = offline_run(fit_dir)
    run = logged["run"]
    assert (run.project, run.run_group) == ("hashbench-digits", "Digits-DPSH-HSWD-32b")
    assert list(run.tags) == ["Digits", "DPSH", "HSWD", "32bits"]
    assert run.display_name == f"demo/{fit_dir.name}"
    config = logged["config"]
    assert config["model.quantization_weight"] == 0.1
    assert config["model.quantizer"] == "hashbench.quantizers.HSWD"
    assert config["model.head.init_args.bits"] == 32
    assert config["data"] == "hashbench.data.Digits" and config["run.method"] == "DPSH"
    assert not any(key in config for key in ("backbone", "head", "loss")), "no nested module hparams"
    assert {"train/loss/similarity", "train/loss/quantization", "val/mAP@all", "val/bit_entropy"} <= logged[
        "history"
    ]
    assert {"val/pr_curve", "val/bit_balance", "val/hamming_histograms"} <= logged["images"]
    assert "curves/val" in logged["summary"]
    assert logged["artifacts"] == ["model"], "log_model=true: the checkpoint as an artifact"

    checkpoint = json.loads((fit_dir / "metrics.json").read_text())["checkpoint"]
    test = run_hashbench(
        "test", "--config", fit_dir / "config.yaml", "--ckpt_path", checkpoint, *wandb_logger,
        "--trainer.default_root_dir", tmp_path / "test",
    )  # fmt: skip
    assert test.returncode == 0, test.stderr[-3000:]
    logged = offline_run(_only_run_dir(tmp_path / "test"))
    assert {"test/pr_curve", "test/bit_balance", "test/hamming_histograms"} <= logged["images"]
    assert {"test/mAP@all", "test/P@100", "test/P@H<=2", "test/quantization_error"} <= logged["history"]
    assert logged["artifacts"] == [], "no checkpoint artifact unless log_model is set"


def test_resolved_config_flattens_to_the_cli_keys(capsys: pytest.CaptureFixture) -> None:
    overlay = EXPERIMENTS / "digits" / "dsdh.yaml"
    code, out, err = hashbench_in_process(
        capsys, "fit", "--config", DEMO, "--config", overlay, "--model.head.bits", "16", "--print_config"
    )
    assert code == 0, err
    config = yaml.safe_load(out)
    flat = flatten_config(config)
    assert flat["model.quantizer"] == "original" and flat["model.head.init_args.bits"] == 16
    assert flat["model.loss"] == "hashbench.losses.DSDH" and flat["model.loss.init_args.eta"] == 55.0
    assert flat["trainer.max_epochs"] == 30 and flat["data.init_args.batch_size"] == 64
    description = describe_run(config)
    assert {k: description[k] for k in ("method", "quantizer", "bits", "dataset")} == {
        "method": "DSDH", "quantizer": "original", "bits": 16, "dataset": "Digits",
    }  # fmt: skip
    assert describe_run({"model": {"quantizer": None}})["quantizer"] == "none"
    labels = [variant_label("DSDH", q) for q in ("original", "SWD", "HSWD", "OT", "none")]
    assert labels == ["DSDH", "DSDH-S", "DSDH-C", "DSDH+OT", "DSDH (no term)"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "job7"}, "torchrun-job7"),
        ({"SLURM_STEP_NUM_TASKS": "4", "SLURM_JOB_ID": "123", "SLURM_STEP_ID": "2"}, "slurm-123.2"),
    ],
    ids=["torchrun", "slurm"],
)
def test_processes_of_a_torchrun_or_srun_job_share_the_run_folder(
    env: dict[str, str], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    folders = set()
    for rank in range(2):  # each process of the job, started independently
        monkeypatch.delenv("HASHBENCH_RUN_DIR", raising=False)
        monkeypatch.setenv("LOCAL_RANK", str(rank))
        folders.add(create_run_dir(tmp_path, "demo"))
    assert folders == {tmp_path / "demo" / expected}


class _Boring(BoringModel):
    """Logs a finite and a NaN validation metric; ``fail`` raises in the first training step."""

    def __init__(self, fail: type[BaseException] | None = None) -> None:
        super().__init__()
        self.fail = fail

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if self.fail is not None:
            raise self.fail("the loss exploded\non two lines")
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log_dict({"val/good": 0.5, "val/bad": torch.tensor(float("nan"))})


def _fit(tmp_path: Path, fail: type[BaseException] | None = None) -> RunFolder:
    tmp_path.mkdir()
    writer = RunWriter(tmp_path, "model:\n  quantizer: original\nseed_everything: 3\n")
    trainer = Trainer(
        fast_dev_run=1,
        callbacks=[writer],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(_Boring(fail))
    return RunFolder(tmp_path)


def test_run_folder_records_the_status_and_null_for_a_non_finite_metric(tmp_path: Path) -> None:
    done = _fit(tmp_path / "done")
    assert done.status == "completed" and done.error is None
    assert done.metrics["val/bad"] is None and done.metric("val/bad") is None
    assert "NaN" not in (done.path / "metrics.json").read_text()
    assert done.metric("val/good") == 0.5 and done.seed == 3 and done.description["quantizer"] == "original"
    with pytest.raises(RuntimeError):
        _fit(tmp_path / "failed", RuntimeError)
    failed = RunFolder(tmp_path / "failed")
    assert failed.status == "failed" and failed.error == "RuntimeError: the loss exploded on two lines"
    try:
        with pytest.raises(SystemExit):  # Lightning exits after a graceful shutdown on Ctrl-C
            _fit(tmp_path / "interrupted", KeyboardInterrupt)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert RunFolder(tmp_path / "interrupted").status == "interrupted"
    assert RunFolder.find(tmp_path) == [done, failed, RunFolder(tmp_path / "interrupted")]


def _record(
    quantizer: str, bits: int, lam: float, mAP: float, seed: int | None = None, test: float | None = None
) -> RunRecord:
    curves = {"pr_precision": [1.0, 0.5], "pr_recall": [0.2, 1.0]}
    curves |= {"bit_balance": [0.5], "hamming_hist_relevant": [3, 1], "hamming_hist_irrelevant": [1, 3]}
    metrics = {"val/mAP@all": mAP, **({} if test is None else {"test/mAP@all": test})}
    return RunRecord(
        name=f"{quantizer}-{bits}-{lam}-{seed}",
        description={"method": "DPSH", "quantizer": quantizer, "bits": bits, "dataset": "Digits",
                     "quantization_weight": lam},
        config={} if seed is None else {"seed_everything": seed},
        metrics=metrics,
        curves={"val": curves, "test": curves},
    )  # fmt: skip


def test_comparison_picks_the_best_lambda_and_reports_relative_change() -> None:
    records = [
        _record("original", 16, 0.1, 0.40),
        _record("original", 16, 1.0, 0.50),
        _record("HSWD", 16, 0.1, 0.60),
        _record("HSWD", 16, 0.1, 0.50),  # a repeat: the mean at λ=0.1 is 0.55
        _record("HSWD", 16, 1.0, 0.52),
        _record("SWD", 32, 0.1, 0.70),
    ]
    best = best_lambda_runs(records)
    assert [r.quantization_weight for r in best[("DPSH", "original", 16)]] == [1.0]
    assert len(best[("DPSH", "HSWD", 16)]) == 2
    (hswd,) = [points for variant, points in lambda_curves(records, 16).items() if variant[1] == "HSWD"]
    assert [(lam, found.mean, found.n) for lam, found in hswd] == [
        (0.1, pytest.approx(0.55), 2),
        (1.0, 0.52, 1),
    ]
    table = paper_table(records).splitlines()
    assert table[0] == "| mAP | 16 bits | 32 bits |"
    assert table[2] == "| DPSH | 0.5000 | – |"
    assert table[3] == "| DPSH-S | – | 0.7000 |"
    half_width = 12.7062 * 0.05  # t(0.975, 1 dof) × s/√n with s = 0.0707, n = 2
    assert table[4] == f"| DPSH-C | 0.5500 ± {half_width:.4f} (+10.0%) | – |"
    spread = paper_table(records, spread="std").splitlines()
    assert spread[0].startswith("| mAP (mean ± std over seeds) |")
    assert (
        spread[2] == "| DPSH | 0.5000 (n=1) | – |"
        and spread[4] == "| DPSH-C | 0.5500 ± 0.0707 (n=2) (+10.0%) | – |"
    )
    figure = compare.comparison_figure(records)
    assert len(figure.axes) == 6


class _NoTestReads(dict):
    """Metrics that fail the test when anything reads a ``test/`` value."""

    def __getitem__(self, key: str) -> Any:
        assert not key.startswith("test/"), f"selection read {key}"
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        assert not key.startswith("test/"), f"selection read {key}"
        return super().get(key, default)


def test_selection_follows_validation_even_where_test_says_otherwise() -> None:
    # λ=0.1 is best on validation and worst on test; λ=1.0 the reverse, on each of three seeds
    records = [
        _record(q, 16, lam, val + 0.01 * seed, seed, test=test + 0.01 * seed)
        for q in ("original", "HSWD")
        for lam, val, test in ((0.1, 0.6, 0.2), (1.0, 0.3, 0.9))
        for seed in range(3)
    ]
    for record in records:
        record.metrics = _NoTestReads(record.metrics)
    best = best_lambda_runs(records)
    assert {run.quantization_weight for runs in best.values() for run in runs} == {0.1}
    assert {run.seed for run in best[("DPSH", "HSWD", 16)]} == {0, 1, 2}
    best_runs = compare._best_run_per_variant(records, 16)
    assert {run.quantization_weight for run in best_runs.values()} == {0.1}
    for record in records:
        record.metrics = dict(record.metrics)
    assert paper_table(records).splitlines()[2].startswith("| DPSH | 0.2100 ± "), "reports test at that λ"
    with pytest.raises(UserError, match="validation metric"):
        select({"a": [records[0].value]}, "test/mAP@all")


def test_paired_comparison_on_the_same_seeds() -> None:
    gains = {0: 0.05, 1: 0.07, 2: 0.06}
    records = [_record("original", 16, 0.1, 0.5, seed, test=0.4 + 0.1 * seed) for seed in gains]
    records += [
        _record("HSWD", 16, 0.1, 0.5, seed, test=0.4 + 0.1 * seed + gain) for seed, gain in gains.items()
    ]
    records.append(_record("HSWD", 16, 0.1, 0.5, 9, test=0.9))  # no original run on seed 9: not paired
    found = paired_difference({0: 0.45, 1: 0.57, 2: 0.66, 9: 0.9}, {0: 0.4, 1: 0.5, 2: 0.6})
    assert found is not None and found.n == 3 and found.mean == pytest.approx(0.06)
    assert found.std == pytest.approx(0.01) and found.half_width == pytest.approx(
        4.3027 * 0.01 / 3**0.5, rel=1e-4
    )
    line = paired_table(records).splitlines()[2]
    assert line == f"| DPSH-C | 16 | 3 | +0.0600 | [{found.low:+.4f}, {found.high:+.4f}] |"
    assert estimate([0.5]) == Estimate(0.5, None, 1, None, None)


def test_load_wandb_runs_reads_config_summary_and_curves(monkeypatch: pytest.MonkeyPatch) -> None:
    curves = {"pr_precision": [1.0], "pr_recall": [1.0]}
    summary = {"val/mAP@all": 0.5, "train/loss": 1.0, "curves/val": curves, "_runtime": 3}
    config = {"model.quantization_weight": 0.1, "run.method": "DPSH", "run.quantizer": "HSWD", "run.bits": 32}
    run = SimpleNamespace(id="abc", config=config, summary=_Summary(summary))
    no_map = SimpleNamespace(id="crashed", config={}, summary=_Summary({}))
    calls = []

    class FakeApi:
        def runs(self, path: str, filters: dict | None = None) -> list:
            calls.append((path, filters))
            return [run, no_map]

    import wandb

    monkeypatch.setattr(wandb, "Api", FakeApi)
    (record,) = compare.load_wandb_runs("team/hashbench-digits", {"config.run.bits": 32})
    assert calls == [("team/hashbench-digits", {"config.run.bits": 32})]
    assert record.name == "team/hashbench-digits/abc" and record.variant == ("DPSH", "HSWD")
    assert record.metrics == {"val/mAP@all": 0.5} and record.metric("mAP") == 0.5
    assert record.curves == {"val": curves} and record.config["model.quantization_weight"] == 0.1


class _Summary:
    """The public API's run summary: keys() and item access, not a dict."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def keys(self) -> Any:
        return self._values.keys()

    def __getitem__(self, key: str) -> Any:
        return self._values[key]
