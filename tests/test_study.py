"""The study machinery: the diagnostics callback in a real fit, and the report generator end to end."""

from __future__ import annotations

import contextlib
import io
import json
import re
import statistics
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import EXPERIMENTS
from scipy import stats

from hashbench.cli import main
from hashbench.errors import UserError
from hashbench.tracking.codes_figure import main as codes_figure_main
from hashbench.tracking.study import Run, Setting, load_run, run_time, write_report

TINY = [
    "--trainer.max_epochs", "2",
    "--trainer.limit_train_batches", "2",
    "--trainer.check_val_every_n_epoch", "1",
    "--trainer.logger", "false",
    "--data.init_args.train_per_class", "8",
    "--model.backbone.init_args.width", "4",
    "--model.head.init_args.bits", "8",
]  # fmt: skip


def _fit(tmp_path: Path, name: str, *configs: Path) -> Path:
    args = ["fit", "--config", str(EXPERIMENTS / "demo.yaml")]
    args += [item for config in configs for item in ("--config", str(config))]
    args += [*TINY, "--trainer.default_root_dir", str(tmp_path), "--run_name", name]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        main(args)
    return next((tmp_path / name).iterdir())


@pytest.fixture(scope="module")
def fits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same 2-epoch DSDH fit on digits without and with the diagnostics callback."""
    root = tmp_path_factory.mktemp("fits")
    callback = root / "diagnostics.yaml"
    callback.write_text(
        yaml.safe_dump(
            {
                "trainer": {
                    "callbacks": [
                        {
                            "class_path": "hashbench.tracking.diagnostics.TrainingDiagnostics",
                            "init_args": {"num_images": 50, "swd_projections": 100, "scatter_images": 30},
                        }
                    ]
                }
            }
        )
    )
    overlay = EXPERIMENTS / "digits" / "dsdh.yaml"
    return _fit(root, "plain", overlay), _fit(root, "measured", overlay, callback)


def test_diagnostics_are_written_per_epoch(fits: tuple[Path, Path]) -> None:
    _, run = fits
    epochs = json.loads((run / "diagnostics.json").read_text())["epochs"]
    assert [e["epoch"] for e in epochs] == [0, 1]
    for record in epochs:
        for key in ("hswd", "hswd_exact", "swd", "original", "train_epoch_s"):
            assert np.isfinite(record[key]) and record[key] > 0, (key, record)
        assert record["val_mAP"] is not None  # validated every epoch here
    with np.load(run / "database_codes.npz") as codes:
        assert codes["h"].shape == (30, 8) and codes["labels"].shape == (30, 10)


def test_default_diagnostics_measure_in_the_epochs_that_validate(tmp_path: Path) -> None:
    """Without a configured callback, a fit measures the distances where it validates (every
    check_val_every_n_epoch) and in the last epoch (validated after the fit), and times every epoch."""
    args = ["fit", "--config", str(EXPERIMENTS / "demo.yaml"), *TINY, "--trainer.max_epochs", "3"]
    args += ["--trainer.check_val_every_n_epoch", "2", "--trainer.default_root_dir", str(tmp_path)]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        main(args)
    (run,) = tmp_path.glob("demo/*")
    epochs = json.loads((run / "diagnostics.json").read_text())["epochs"]
    assert [(e["epoch"], e["swd"] is not None, e["val_mAP"] is not None) for e in epochs] == [
        (0, False, False),
        (1, True, True),
        (2, True, False),
    ]
    assert all(e["train_epoch_s"] > 0 for e in epochs)


def test_diagnostics_leave_training_unchanged(fits: tuple[Path, Path]) -> None:
    """Measuring consumes none of the training's randomness and touches no state: same final weights."""
    plain, measured = (
        torch.load(next((run / "checkpoints").glob("*.ckpt")), weights_only=False) for run in fits
    )
    assert plain["state_dict"].keys() == measured["state_dict"].keys()
    for key, value in plain["state_dict"].items():
        assert torch.equal(value, measured["state_dict"][key]), key


def test_a_real_run_folder_loads_into_the_report(fits: tuple[Path, Path]) -> None:
    run = load_run(fits[1])
    assert run is not None
    assert (run.setting.method, run.setting.quantizer, run.setting.bits, run.seed) == (
        "DSDH",
        "original",
        8,
        0,
    )
    assert run.seconds_per_epoch is not None and run.value("val/mAP@all") is not None


def test_codes_figure_command_writes_a_png(fits: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "codes.png"
    with contextlib.redirect_stdout(io.StringIO()):
        codes_figure_main([str(fits[1]), "--out", str(out)])
    assert out.read_bytes()[:4] == b"\x89PNG"


# ------------------------------------------------------------------------------------- the report
def _write_run(
    folder: Path,
    method: str,
    quantizer: str,
    weight: float,
    seed: int,
    val: float,
    test: float,
    term: bool = True,
    **loss: bool,
) -> None:
    """A minimal run folder as the CLI and the diagnostics callback write them."""
    folder.mkdir(parents=True)
    spec: object = "original" if quantizer == "original" else {"class_path": "hashbench.quantizers.HSWD"}
    if quantizer == "HSWD-exact":
        spec = {"class_path": "hashbench.quantizers.HSWD", "init_args": {"target": "exact"}}
    config = {
        "seed_everything": seed,
        "model": {
            "head": {"bits": 8},
            "loss": {"class_path": f"hashbench.losses.{method}", "init_args": loss},
            "quantizer": spec,
            "quantization_weight": weight,
        },
        "data": {"class_path": "hashbench.data.Digits"},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    name = "original" if quantizer == "original" else "HSWD"
    description = {"method": method, "quantizer": name, "bits": 8, "quantization_weight": weight}
    (folder / "run.json").write_text(json.dumps(description))
    metrics = {
        "val/mAP@all": val,
        "test/mAP@all": test,
        "test/bit_entropy": 0.5 + seed / 10,
        "test/quantization_error": 0.1 * (seed + 1),
        **({"train/loss/quantization": 0.3} if term else {}),
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    epochs = [
        {"epoch": e, "train_epoch_s": 1.0 + seed + e, "hswd": 1 / (e + 1), "hswd_exact": 0.9 / (e + 1),
         "swd": 0.5 / (e + 1), "original": 0.3, "val_mAP": None}
        for e in range(3)
    ]  # fmt: skip
    (folder / "diagnostics.json").write_text(json.dumps({"settings": {}, "epochs": epochs}))
    rng = np.random.default_rng(seed)
    labels = np.eye(10, dtype=np.uint8)[rng.integers(0, 10, 40)]
    np.savez_compressed(
        folder / "database_codes.npz", h=rng.normal(size=(40, 8)).astype(np.float16), labels=labels
    )


SEEDS = (0, 1, 2)
# test mAP per seed: the original term at λ=1 (chosen: best validation), HSWD at λ=0.1 (chosen), HSWD at
# λ=1 (better on test, worse on validation: must not be chosen)
ORIGINAL = {0: 0.50, 1: 0.55, 2: 0.45}
HSWD_CHOSEN = {0: 0.70, 1: 0.72, 2: 0.69}
HSWD_OTHER = {0: 0.95, 1: 0.96, 2: 0.97}


@pytest.fixture(scope="module")
def study_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("study")
    for seed in SEEDS:
        _write_run(
            root / f"o1_{seed}", "DSDH", "original", 1.0, seed, 0.6, ORIGINAL[seed], discrete_step=True
        )
        _write_run(root / f"o2_{seed}", "DSDH", "original", 2.0, seed, 0.4, 0.99, discrete_step=True)
        _write_run(root / f"h1_{seed}", "DSDH", "HSWD", 0.1, seed, 0.8, HSWD_CHOSEN[seed], discrete_step=True)
        _write_run(root / f"h2_{seed}", "DSDH", "HSWD", 1.0, seed, 0.7, HSWD_OTHER[seed], discrete_step=True)
        # pure replacement that loses on every seed; exact target with a tie
        _write_run(root / f"p_{seed}", "DSDH", "HSWD", 0.1, seed, 0.5, ORIGINAL[seed] - 0.1 - seed / 100,
                   discrete_step=False)  # fmt: skip
        tied = ORIGINAL[seed] + (0.05, -0.05, 0.01)[seed]
        _write_run(root / f"e_{seed}", "DSDH", "HSWD-exact", 0.1, seed, 0.5, tied, discrete_step=True)
        # a method whose original form has no quantization term: its λ did nothing
        _write_run(root / f"n_{seed}", "HashNet", "original", 0.1, seed, 0.5, 0.4, term=False)
    (root / "failed").mkdir()
    (root / "failed" / "config.yaml").write_text("seed_everything: 0\n")
    return root


@pytest.fixture(scope="module")
def report(study_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The report of the study root (written once: its figures take seconds) and its folder."""
    out = tmp_path_factory.mktemp("docs") / "study.md"
    return write_report(study_root, out, "val/mAP@all", "test/mAP@all", "t"), out.parent


def _row(text: str, label: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| {label} |"))


def test_report_chooses_lambda_on_validation_and_reports_test(report: tuple[str, Path]) -> None:
    text = report[0]
    for label, values, weight in (("DSDH", ORIGINAL, "1"), ("DSDH-C", HSWD_CHOSEN, "0.1")):
        mean, std = statistics.mean(values.values()), statistics.stdev(values.values())
        expected = f"{mean:.4f} ± {std:.4f} (λ {weight}, n=3)"
        assert expected in _row(text, label), (label, _row(text, label))


def test_report_shows_no_lambda_where_no_term_trained(report: tuple[str, Path]) -> None:
    assert "(no term, n=3)" in _row(report[0], "HashNet")
    assert "λ values ['0.1', '1', '2']" in report[0]


def test_report_states_when_the_runs_ran(tmp_path: Path) -> None:
    def run(start: str, end: str) -> Run:
        return Run(tmp_path, Setting("DSDH", "kept", "HSWD", 8), 0.1, 0, {}, [],
                   datetime.fromisoformat(start), datetime.fromisoformat(end))  # fmt: skip

    text = run_time([run("2026-12-02 10:00:00", "2026-12-02 10:20:00"), run("2026-12-02 10:00:00",
                     "2026-12-02 10:40:00"), run("2026-12-02 10:40:00", "2026-12-02 11:00:00")])  # fmt: skip
    assert "ran from 2026-12-02 10:00 to 11:00 (60 minutes of wall clock" in text
    assert "took 1600.0 s on average (80 minutes in all)" in text


def test_report_gives_paired_intervals_and_verdicts(report: tuple[str, Path]) -> None:
    text, folder = report
    diffs = [HSWD_CHOSEN[s] - ORIGINAL[s] for s in SEEDS]
    low, high = stats.t.interval(0.95, len(diffs) - 1, loc=np.mean(diffs), scale=stats.sem(diffs))

    def change_row(label: str) -> str:
        return next(line for line in text.splitlines() if line.startswith(f"| {label} |") and "[" in line)

    assert f"{np.mean(diffs):+.4f} [{low:+.4f}, {high:+.4f}] **win**" in change_row("DSDH-C")
    assert "**loss**" in change_row("DSDH-C pure")
    assert "**tie**" in change_row("DSDH-C exact")
    assert re.search(r"HSWD agrees \(a win\) in 1 of 1 settings", text)
    for figure in ("study_fig3.png", "study_fig2.png"):
        assert f"]({figure})" in text and (folder / figure).read_bytes()[:4] == b"\x89PNG"


def test_report_compares_pure_replacement_with_mechanism_kept(report: tuple[str, Path]) -> None:
    diffs = [ORIGINAL[s] - 0.1 - s / 100 - HSWD_CHOSEN[s] for s in SEEDS]
    row = next(line for line in report[0].splitlines() if line.startswith("| DSDH-C pure | 8 |"))
    assert row.startswith(f"| DSDH-C pure | 8 | {np.mean(diffs):+.4f} [") and row.endswith("| no (3 seeds) |")


def test_report_reports_code_diagnostics_and_epoch_times(report: tuple[str, Path]) -> None:
    text = report[0]
    row = next(line for line in text.splitlines() if line.startswith("| DSDH-C | 8 | 0.1 |"))
    entropy = statistics.mean(0.5 + s / 10 for s in SEEDS)
    error = statistics.mean(0.1 * (s + 1) for s in SEEDS)
    seconds = statistics.mean(statistics.mean([1.0 + s + 1, 1.0 + s + 2]) for s in SEEDS)  # epoch 0 left out
    assert row == f"| DSDH-C | 8 | 0.1 | {entropy:.4f} | {error:.4f} | {seconds:.3f} |"


def test_report_refuses_test_selection_and_missing_test_metrics(study_root: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="never on a test metric"):
        write_report(study_root, tmp_path / "s.md", "test/mAP@all", "test/mAP@all", "t")
    with pytest.raises(UserError, match="run `test` after fit"):
        write_report(study_root, tmp_path / "s.md", "val/mAP@all", "test/P@1000", "t")
