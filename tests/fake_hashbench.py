"""Stands in for ``python -m hashbench fit …`` in the sweep runner's tests: no training, a run folder written
through :class:`~hashbench.runs.folder.RunFolder` with metrics computed from the arguments.

``--model.quantization_weight=λ`` (default 0.1): val/mAP@all peaks at λ = 0.1 while test/mAP@all =
1 − val/mAP@all (best test where validation is worst); λ < 0 fails. HSWD adds 0.05, each seed 0.01.
``FAKE_WAIT=<file>``: touch the file, then wait for Ctrl-C (the run becomes interrupted).
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import yaml

from hashbench.runs import RunFolder, create_run_dir

argv = sys.argv[1:]
options = dict(arg[2:].split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg)
root, name = argv[argv.index("--trainer.default_root_dir") + 1], argv[argv.index("--run_name") + 1]
lam, seed = float(options.get("model.quantization_weight", 0.1)), int(options.get("seed_everything", 0))
quantizer = options.get("model.quantizer", "original").rsplit(".", 1)[-1]
bits = int(options.get("model.head.init_args.bits", 32))
folder = RunFolder(create_run_dir(root, name))
folder.write_config(
    yaml.safe_dump({"model": {"quantizer": quantizer, "quantization_weight": lam}, "seed_everything": seed})
)
folder.start(
    {"method": "DPSH", "quantizer": quantizer, "bits": bits, "dataset": "Fake", "quantization_weight": lam},
    "fit",
)
if lam < 0:
    print("ValueError: quantization_weight must be >= 0")
    folder.set_status("failed", "ValueError: quantization_weight must be >= 0")
    sys.exit(1)
if os.environ.get("FAKE_WAIT"):
    Path(os.environ["FAKE_WAIT"]).touch()
    try:
        time.sleep(120)
    except KeyboardInterrupt:
        folder.set_status("interrupted")
        sys.exit(1)
val = 0.5 - 0.1 * abs(math.log10(lam) + 1) + 0.01 * seed + (0.05 if quantizer == "HSWD" else 0.0)
folder.write_metrics({"val/mAP@all": val, "test/mAP@all": 1 - val, "val/unstable": math.nan})
curves = {"pr_precision": [1.0, val], "pr_recall": [0.1, 1.0], "bit_balance": [0.5] * bits}
curves |= {"hamming_hist_relevant": [3, 1], "hamming_hist_irrelevant": [1, 3]}
folder.write_curves({"val": curves, "test": curves})
folder.set_status("completed")
