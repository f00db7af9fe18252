"""Each dataset's config through the real ``hashbench fit`` command on fake data (``fast_dev_run``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import EXPERIMENTS, run_hashbench
from fakedata import (
    write_fake_cifar10,
    write_fake_coco,
    write_fake_imagenet,
    write_fake_nuswide,
)

from hashbench.cli.commands import run_tool

TINY = (
    "--trainer.fast_dev_run", "1",
    "--trainer.logger", "false",
    "--trainer.accelerator", "cpu",
    "--model.backbone", "hashbench.backbones.SmallCNN",
    "--model.backbone.in_channels", "3",
    "--model.backbone.width", "8",
    "--data.init_args.image_size", "32",
    "--data.init_args.batch_size", "8",
    "--data.init_args.num_workers", "0",
)  # fmt: skip


def prepare(args: list[str]) -> None:
    """``hashbench prepare <args>`` in this process (a UserError propagates)."""
    run_tool(["prepare", *args])


def _fit(config: str, root: Path, runs: Path, *extra: str) -> Path:
    """Run ``hashbench fit`` and return the run folder."""
    result = run_hashbench(
        "fit", "--config", EXPERIMENTS / config, "--data.init_args.root", root,
        "--trainer.default_root_dir", runs, *TINY, *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    (run_dir,) = (runs / Path(config).stem).iterdir()
    return run_dir


def test_fit_cifar10(tmp_path: Path) -> None:
    root = write_fake_cifar10(tmp_path / "cifar10")
    run_dir = _fit(
        "dpsh_hswd_64_cifar10.yaml", root, tmp_path / "runs",
        "--data.init_args.query_per_class", "2", "--data.init_args.train_per_class", "5",
        "--data.init_args.val_query_per_class", "1",
    )  # fmt: skip
    split = json.loads((run_dir / "cifar10_split.json").read_text())
    assert (len(split["query"]), len(split["train"]), len(split["database"])) == (20, 50, 50)
    assert len(split["val_query"]) == 10
    assert split["seed"] == 0 and split["protocol"] == "paper"


def test_fit_coco(tmp_path: Path) -> None:
    root = write_fake_coco(tmp_path / "coco")
    prepare(["coco", "--root", str(root), "--num_query", "10", "--num_train", "20"])
    _fit("dpsh_hswd_64_coco.yaml", root, tmp_path / "runs")


def test_fit_nuswide_with_the_image_cache(tmp_path: Path) -> None:
    root = write_fake_nuswide(tmp_path / "nuswide")
    prepare(["nuswide", "--root", str(root), "--num_query", "10", "--num_train", "20"])
    _fit(
        "dpsh_hswd_64_nuswide.yaml",
        root,
        tmp_path / "runs",
        "--data.init_args.image_cache",
        tmp_path / "cache",
    )
    assert sorted(path.name.split("-")[0] for path in (tmp_path / "cache").iterdir()) == [
        "evaluation",
        "train",
    ]


def test_fit_imagenet100(tmp_path: Path) -> None:
    root = write_fake_imagenet(tmp_path / "imagenet", train_per_class=3, val_per_class=1)
    prepare(["imagenet100", "--root", str(root), "--classes", str(root / "imagenet100_classes.txt"),
             "--train_per_class", "1", "--query_per_class", "1", "--val_per_class", "1"])  # fmt: skip
    _fit("dpsh_hswd_64_imagenet100.yaml", root, tmp_path / "runs")


def test_fit_with_a_missing_root_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hashbench.cli import main as cli_main  # in-process: the same entry point, without a subprocess

    monkeypatch.setenv("HASHBENCH_RUN_DIR", "")  # restored after the test; the CLI sets it
    missing = tmp_path / "nowhere"
    args = ["fit", "--config", EXPERIMENTS / "dpsh_hswd_64_nuswide.yaml", "--data.init_args.root", missing,
            "--trainer.default_root_dir", tmp_path / "runs", *TINY]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        cli_main(list(map(str, args)))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"hashbench: error: NUS-WIDE: the data root {missing} does not exist" in err
    assert "hashbench prepare nuswide" in err and "Traceback" not in err


def test_data_only_configs_compose_with_a_method_config(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hashbench.cli import main as cli_main  # in-process: only the config is resolved

    monkeypatch.setenv("HASHBENCH_RUN_DIR", "")  # restored after the test; the CLI sets it

    for name, class_path in (("mirflickr", "hashbench.data.MIRFlickr"), ("voc", "hashbench.data.VOC")):
        args = ["fit", "--config", EXPERIMENTS / "dpsh_hswd_64_coco.yaml",
                "--config", EXPERIMENTS / "data" / f"{name}.yaml", "--print_config"]  # fmt: skip
        with pytest.raises(SystemExit) as exit_info:
            cli_main(list(map(str, args)))
        assert exit_info.value.code in (0, None)
        data = yaml.safe_load(capsys.readouterr().out)["data"]
        assert data["class_path"] == class_path
        assert (data["init_args"]["top_k"], data["init_args"]["root"]) == (None, f"data/{name}")
