"""The method configs in experiments/: current with their generator, parsed, and run by the real command.

Every config runs ``fit`` with ``fast_dev_run`` on fake data of its dataset kind through the CLI entry
point, in-process (a subprocess per config costs ~10 s of imports). The backbone block is the same in
every generated CIFAR-10 config, so most of them run with a small CNN swapped in for VGG11 (whose
init and optimizer step over 128 M parameters cost ~3 s each on CPU); one config per method runs its
real VGG11 (random weights, 32×32 images), and one runs in a real ``hashbench`` subprocess.
The dataset configs of other parts (``*_{cifar10,nuswide,coco,imagenet100}.yaml``) run in
``tests/test_data_fit.py``; here they are parsed.

The configs of the paper's other tables (``nuswide/``, ``coco/``, ``alexnet/{cifar10,nuswide}/``) equal
their CIFAR-10 VGG11 counterpart but for the data block, the backbone's name, DSDH's λ (it depends on the
training-set size) and the tags; one of each folder is parsed by the CLI (a parse costs ~1 s on this
machine). The digits study's sweep files are parsed with one combination each for every kind of command.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import re
import sys
from pathlib import Path

import pytest
import yaml
from conftest import EXPERIMENTS, run_hashbench
from fakedata import write_fake_cifar10

from hashbench.cli import main
from hashbench.sweeps.sampling import grid
from hashbench.sweeps.spec import hashbench_args, load_sweep
from hashbench.tracking.describe import flatten_config


def _generator():
    spec = importlib.util.spec_from_file_location("experiments_generate", EXPERIMENTS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


GENERATE = _generator()
GENERATED = GENERATE.render()
CIFAR10_CONFIGS = sorted(path for path in GENERATED if "/" not in path)
DIGITS_OVERLAYS = sorted(path for path in GENERATED if path.startswith("digits/"))
OTHER_TABLES = [table for table in GENERATE.PAPER_TABLES if table.folder]
STUDY_SWEEPS = sorted(path for path in GENERATED if path.startswith("study/sweeps/"))
ALL_STANDALONE = sorted(path.name for path in EXPERIMENTS.glob("*.yaml"))
VGG11_SAMPLE = [
    "dsdh_hswd_64.yaml",
    "hashnet_swd_16.yaml",
    "greedyhash_orig_32.yaml",
    "dch_hswd_32.yaml",
    "csq_swd_64.yaml",
    "dbdh_orig_16.yaml",
    "orthohash_128.yaml",
    "dpsh.yaml",
    "dsh.yaml",
    "dtsh.yaml",
    "dpn.yaml",
    "ce.yaml",
]
SMALL_CNN = [
    "--model.backbone", "hashbench.backbones.SmallCNN",
    "--model.backbone.in_channels", "3",
    "--model.backbone.width", "8",
]  # fmt: skip
VGG11_RANDOM = ["--model.backbone.init_args.weights", "null"]


@pytest.fixture(scope="module")
def cifar10_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fake_cifar10(tmp_path_factory.mktemp("cifar10"), per_class=12)


def _cifar10_args(root: Path) -> list[str]:
    return [
        "--data.init_args.root", str(root),
        "--data.init_args.batch_size", "4",
        "--data.init_args.eval_batch_size", "8",
        "--data.init_args.num_workers", "0",
        "--data.init_args.image_size", "32",
        "--data.init_args.query_per_class", "2",
        "--data.init_args.train_per_class", "4",
        "--data.init_args.val_query_per_class", "1",
    ]  # fmt: skip


def _fit_in_process(configs: list[Path], runs: Path, *extra: str) -> str:
    """``hashbench fit --config … --trainer.fast_dev_run 1`` via :func:`hashbench.cli.main`; its output."""
    args = [item for config in configs for item in ("--config", str(config))]
    base = [
        "--trainer.fast_dev_run",
        "1",
        "--trainer.logger",
        "false",
        "--trainer.default_root_dir",
        str(runs),
    ]
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        try:
            main(["fit", *args, *base, *extra])
        except SystemExit as error:  # main exits on a config or run error
            raise AssertionError(
                f"hashbench fit failed ({error.code}):\n{output.getvalue()[-4000:]}"
            ) from None
    return output.getvalue()


# ------------------------------------------------------------------------------------- current
def test_generated_configs_are_current() -> None:
    stale = [path for path, text in GENERATED.items() if (EXPERIMENTS / path).read_text() != text]
    assert not stale, f"regenerate with `python experiments/generate.py`: {stale}"
    on_disk = {
        str(path.relative_to(EXPERIMENTS))
        for path in EXPERIMENTS.rglob("*.yaml")
        if GENERATE.GENERATED_BY in path.read_text()
    }
    assert on_disk == set(GENERATED), f"generated files without a table entry: {on_disk - set(GENERATED)}"


def test_the_paper_grid_and_the_other_methods_are_there() -> None:
    folders = {"": (16, 32, 64), "nuswide/": (16, 32, 64), "coco/": (16, 32, 64)}
    folders |= {"alexnet/cifar10/": (16, 32), "alexnet/nuswide/": (16, 32)}
    for folder, all_bits in folders.items():
        for method in ("dsdh", "hashnet", "greedyhash", "dch", "csq", "dbdh"):
            for variant in ("orig", "swd", "hswd"):
                for bits in all_bits:
                    assert f"{folder}{method}_{variant}_{bits}.yaml" in GENERATED
    assert {f"orthohash_{bits}.yaml" for bits in (16, 32, 64, 128)} <= set(GENERATED)
    assert {"dpsh.yaml", "dsh.yaml", "dtsh.yaml", "dpn.yaml", "ce.yaml"} <= set(GENERATED)


def test_configs_follow_the_paper_setup() -> None:
    config = yaml.safe_load(GENERATED["dsdh_hswd_64.yaml"])
    model = config["model"]
    assert model["backbone"]["init_args"] == {"name": "vgg11", "weights": "DEFAULT"}
    assert model["backbone_lr_multiplier"] == 0.1
    assert model["quantizer"] == {"class_path": "hashbench.quantizers.HSWD"}
    assert config["data"]["class_path"] == "hashbench.data.CIFAR10"
    assert config["data"]["init_args"]["protocol"] == "paper"
    assert config["trainer"]["logger"]["class_path"] == "hashbench.loggers.AutoOfflineWandbLogger"
    original = yaml.safe_load(GENERATED["dsdh_orig_32.yaml"])["model"]
    assert original["quantizer"] == "original" and original["quantization_weight"] == pytest.approx(
        55 * 32 / (2 * 5000)
    )
    alexnet = yaml.safe_load(GENERATED["alexnet/nuswide/csq_hswd_16.yaml"])
    assert alexnet["model"]["backbone"]["init_args"]["name"] == "alexnet"
    assert (
        alexnet["model"]["precision_k"] == 1000 and alexnet["data"]["class_path"] == "hashbench.data.NUSWIDE"
    )
    swd = yaml.safe_load(GENERATED["csq_swd_16.yaml"])["model"]["quantizer"]
    assert swd == {"class_path": "hashbench.quantizers.SWD", "init_args": {"num_projections": 10000}}


# --------------------------------------------------------------------------------------- parsed
@pytest.mark.parametrize("name", ALL_STANDALONE)
def test_every_config_parses(name: str, tmp_path: Path) -> None:
    output = io.StringIO()
    with contextlib.redirect_stdout(output), pytest.raises(SystemExit) as exit_info:
        main(
            [
                "fit",
                "--config",
                str(EXPERIMENTS / name),
                "--trainer.default_root_dir",
                str(tmp_path),
                "--print_config",
            ]
        )
    assert exit_info.value.code in (0, None), output.getvalue()[-3000:]
    assert yaml.safe_load(output.getvalue())["model"]["loss"]["class_path"].startswith("hashbench.losses.")


def _counterpart(path: str) -> str:
    """The top-level CIFAR-10 VGG11 config of a config of another table."""
    return path.rsplit("/", 1)[1]


@functools.cache
def _without_table_parts(path: str) -> dict[str, object]:
    flat = flatten_config(yaml.load(GENERATED[path], Loader=yaml.CSafeLoader))
    varying = ("data", "model.backbone.init_args.name", "trainer.logger.init_args.tags", "trainer.callbacks")
    if "dsdh_orig" in path:
        varying += ("model.quantization_weight",)
    return {key: value for key, value in flat.items() if not key.startswith(varying)}


@pytest.mark.parametrize("table", OTHER_TABLES, ids=lambda table: table.folder)
def test_other_tables_equal_their_cifar10_counterparts(table) -> None:
    paths = [path for path in GENERATED if path.startswith(table.folder)]
    assert len(paths) == 6 * 3 * len(table.bits)
    for path in paths:
        assert _without_table_parts(path) == _without_table_parts(_counterpart(path)), path
        config = yaml.load(GENERATED[path], Loader=yaml.CSafeLoader)
        assert config["model"]["backbone"]["init_args"]["name"] == table.backbone
        assert config["data"] == GENERATE.DATASETS[table.dataset]["data"]


@pytest.mark.parametrize("table", OTHER_TABLES, ids=lambda table: table.folder)
def test_one_config_of_each_other_table_parses(table, tmp_path: Path) -> None:
    index = OTHER_TABLES.index(table)
    method = list(GENERATE.PAPER)[index % 6]
    variant = ("orig", "swd", "hswd")[index % 3]
    path = f"{table.folder}{method}_{variant}_{table.bits[index % len(table.bits)]}.yaml"
    resolved = _print_config([EXPERIMENTS / path], tmp_path)
    assert resolved["model"]["backbone"]["init_args"]["name"] == table.backbone
    assert resolved["data"]["class_path"] == GENERATE.DATASETS[table.dataset]["data"]["class_path"]


def _print_config(configs: list[Path], runs: Path, *extra: str) -> dict:
    output = io.StringIO()
    args = [item for config in configs for item in ("--config", str(config))]
    with contextlib.redirect_stdout(output), pytest.raises(SystemExit) as exit_info:
        main(["fit", *args, "--trainer.default_root_dir", str(runs), *extra, "--print_config"])
    assert exit_info.value.code in (0, None), output.getvalue()[-3000:]
    return yaml.safe_load(output.getvalue())


# ----------------------------------------------------------------------------------------- study
def test_study_sweeps_cover_the_grid() -> None:
    methods = ("dsdh", "hashnet", "greedyhash", "dch", "csq", "dbdh")
    expected = {f"study/sweeps/{m}_{q}.yaml" for m in methods for q in ("orig", "swd", "hswd", "hswd_exact")}
    expected |= {f"study/sweeps/{m}_hswd_pure.yaml" for m in ("dsdh", "hashnet")}
    assert set(STUDY_SWEEPS) == expected
    for path in STUDY_SWEEPS:
        sweep = load_sweep(EXPERIMENTS / path)
        assert sweep.seeds == list(GENERATE.STUDY.seeds), path
        for config in (sweep.command[i + 1] for i, token in enumerate(sweep.command) if token == "--config"):
            assert (EXPERIMENTS.parent / config).is_file(), (path, config)


@pytest.mark.parametrize(
    "name",
    ["dsdh_orig", "csq_swd", "greedyhash_hswd_exact", "hashnet_hswd_pure"],
)
def test_a_study_sweep_run_parses(name: str, tmp_path: Path) -> None:
    """The sweep's command with its last combination resolves to what the file says it runs."""
    sweep = load_sweep(EXPERIMENTS / "study" / "sweeps" / f"{name}.yaml")
    params = grid(sweep.parameters)[-1]
    args = hashbench_args(sweep, params)
    configs = [EXPERIMENTS.parent / args[i + 1] for i, token in enumerate(args) if token == "--config"]
    extra = [
        token for i, token in enumerate(args[1:], 1) if token != "--config" and args[i - 1] != "--config"
    ]
    flat = flatten_config(_print_config(configs, tmp_path, *extra))
    for key, value in params.items():
        assert flat[key] == value, (key, flat[key], value)
    assert flat["trainer.callbacks"][0]["class_path"] == "hashbench.tracking.diagnostics.TrainingDiagnostics"
    quantizer = flat["model.quantizer"]
    assert quantizer == (
        "original"
        if "_orig" in name
        else "hashbench.quantizers." + ("SWD" if "swd" in name and "hswd" not in name else "HSWD")
    )
    if name.endswith("exact"):
        assert flat["model.quantizer.init_args.target"] == "exact"
    if name.endswith("_pure"):
        assert flat["model.loss.init_args.continuation"] is False


# ------------------------------------------------------------------------------------------ run
def _one_code_length_each(names: list[str]) -> list[str]:
    """The 32-bit config of each method × quantizer, plus the configs of VGG11_SAMPLE and the rest.

    Every config parses (above); configs that differ only in the code length train alike, so one of them runs.
    """
    stem = re.compile(r"_(16|64|128)\.yaml$")
    return [name for name in names if name in VGG11_SAMPLE or not stem.search(name)]


@pytest.mark.parametrize("name", _one_code_length_each(CIFAR10_CONFIGS))
def test_cifar10_config_runs(name: str, cifar10_root: Path, tmp_path: Path) -> None:
    backbone = VGG11_RANDOM if name in VGG11_SAMPLE else SMALL_CNN
    output = _fit_in_process([EXPERIMENTS / name], tmp_path, *_cifar10_args(cifar10_root), *backbone)
    assert "mAP@all" in output


@pytest.mark.parametrize("name", DIGITS_OVERLAYS)
def test_digits_overlay_runs_with_the_demo(name: str, tmp_path: Path) -> None:
    output = _fit_in_process([EXPERIMENTS / "demo.yaml", EXPERIMENTS / name], tmp_path)
    assert "mAP@all" in output


def test_a_config_runs_alone_in_a_real_subprocess(cifar10_root: Path, tmp_path: Path) -> None:
    """``hashbench fit --config experiments/dsdh_hswd_64.yaml`` with its own W&B logger (offline)."""
    result = run_hashbench(
        "fit", "--config", "experiments/dsdh_hswd_64.yaml", "--trainer.fast_dev_run", "1",
        "--trainer.default_root_dir", tmp_path, *_cifar10_args(cifar10_root), *VGG11_RANDOM,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "mAP@all" in result.stdout
