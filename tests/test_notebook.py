"""notebooks/compare_runs.ipynb, executed headlessly on the runs of the two sweep files (shrunk)."""

from __future__ import annotations

import csv
from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import EXPERIMENTS, REPO
from nbclient import NotebookClient
from test_sweep import FAKE

from hashbench.sweeps.runner import run_sweep, sweep_folder
from hashbench.sweeps.sampling import Search
from hashbench.sweeps.spec import load_sweep

NOTEBOOK = REPO / "notebooks" / "compare_runs.ipynb"


def _tiny_sweep(tmp: Path, name: str, shrink: dict[str, list]) -> Path:
    """The sweep file ``name`` with fewer values for some parameters."""
    raw = yaml.safe_load((EXPERIMENTS / "sweeps" / f"{name}.yaml").read_text())
    for key, values in shrink.items():
        raw["parameters"][key]["values"] = values
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def sweep_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two sweep files, shrunk, run by the sweep runner with a stand-in for training (the real CLI's
    runs are tested in test_sweep.py): λ ∈ {0.01, 1} × {original, HSWD} × seeds {0, 1} at 32 bits, and
    SWD at 16 bits on seed 0: 9 runs."""
    tmp = tmp_path_factory.mktemp("sweeps")
    quantizers = ["original", "hashbench.quantizers.HSWD"]
    shrunk = {
        "lambda": {
            "model.quantization_weight": [0.01, 1.0],
            "model.quantizer": quantizers,
            "seed_everything": [0, 1],
        },
        "bits": {
            "model.head.init_args.bits": [16],
            "model.quantizer": ["hashbench.quantizers.SWD"],
            "seed_everything": [0],
        },
    }
    for name, shrink in shrunk.items():
        sweep = load_sweep(_tiny_sweep(tmp, name, shrink))
        sweep_dir = sweep_folder(tmp / "runs", sweep, resume=False)
        assert run_sweep(sweep, Search(sweep, None), sweep.seeds, sweep_dir, launcher=FAKE) == 0
    return tmp / "runs"


def test_tiny_sweeps_write_their_summaries(sweep_runs: Path) -> None:
    summaries = {p.parent.parent.name: p for p in sweep_runs.glob("*/*/summary.csv")}
    assert set(summaries) == {"lambda", "bits"}
    with summaries["lambda"].open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8 and {row["status"] for row in rows} == {"completed"}
    assert {row["model.quantizer"] for row in rows} == {"original", "hashbench.quantizers.HSWD"}
    assert {row["quantizer"] for row in rows} == {"original", "HSWD"} and {row["seed"] for row in rows} == {
        "0",
        "1",
    }
    with (summaries["lambda"].parent / "aggregate.csv").open() as handle:
        configurations = list(csv.DictReader(handle))
    assert len(configurations) == 4 and {c["seeds"] for c in configurations} == {"2"}
    assert [c["selected"] for c in configurations].count("True") == 1


def test_notebook_runs_headless_on_the_sweep_runs(
    sweep_runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figure = tmp_path / "compare_runs.png"
    monkeypatch.setenv("HASHBENCH_RUNS", str(sweep_runs))
    monkeypatch.setenv("HASHBENCH_FIGURE", str(figure))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    text = "\n".join(
        str(output.get("text", "")) + str(output.get("data", {}).get("text/markdown", ""))
        for output in outputs
    )
    assert "9 runs on Fake" in text
    assert (
        "| mAP | 16 bits | 32 bits |" in text and "| val mAP | mAP | stage |" in text and "| test |" in text
    )
    assert "| DPSH-C |" in text and "| DPSH-S |" in text and "%)" in text and " ± " in text
    assert "| mAP: quantizer − original | bits | seeds |" in text and "| DPSH-C | 32 | 2 |" in text
    assert "| bit_entropy |" in text and "| quantization_error |" in text
    assert any("image/png" in output.get("data", {}) for output in outputs), "the main figure is shown"
    assert figure.stat().st_size > 10_000


def test_committed_notebook_has_no_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
