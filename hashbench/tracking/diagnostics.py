"""``TrainingDiagnostics``: the HSWD paper's per-epoch diagnostics (Fig. 3, Table 3, Fig. 2) of any run.

Whatever quantizer trains the model, after each training epoch the callback measures, on a fixed subset
of training images (the first ``num_images`` of the training split, in order), in eval mode and without
gradient: sampled HSWD², HSWD² against the exact target, SWD² with ``swd_projections`` random directions
(all three on what a plug-in quantizer sees: u or h, ``model.quantizer_input``) and the method's own
quantization term (``None`` for methods without one). It also times each training epoch, validation
excluded. At the end of fit it keeps the codes h of the first ``scatter_images`` database items for
the picture of the code space (:mod:`hashbench.tracking.codes_figure`).

Evaluation consumes none of the training's randomness: the sampled targets and directions come from
torch's global RNG inside :func:`torch.random.fork_rng` seeded with ``seed`` (the same draws every
epoch), the images are read without a DataLoader iterator on the global generator, and the loss is
measured on a copy, so code banks and other state are untouched.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from lightning import Callback, LightningModule, Trainer
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from hashbench.losses.base import HashLoss
from hashbench.quantizers import HSWD, SWD

DIAGNOSTICS_FILE = "diagnostics.json"
CODES_FILE = "database_codes.npz"
MEASURES = ("hswd", "hswd_exact", "swd", "original")
"""The per-epoch distances, each also logged as ``diagnostics/<name>``."""


@contextmanager
def evaluating(module: torch.nn.Module, seed: int) -> Iterator[None]:
    """Eval mode, no gradient and a forked global RNG seeded with ``seed``; every submodule's mode and
    every RNG state (CPU and all CUDA devices) are restored afterwards."""
    modes = {sub: sub.training for sub in module.modules()}
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        module.eval()
        try:
            yield
        finally:
            for sub, mode in modes.items():
                sub.training = mode


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TrainingDiagnostics(Callback):
    """Per-epoch HSWD², exact-target HSWD², SWD² and the original term on training codes; epoch times.

    Writes ``diagnostics.json`` to the run folder (``trainer.default_root_dir``) after every measured
    epoch: ``{"settings": {…}, "epochs": [{"epoch", "global_step", "train_epoch_s", "hswd",
    "hswd_exact", "swd", "original", "val_mAP"}, …]}`` (distances unweighted, squared as the quantizers
    return them; ``original`` is null without a term; ``val_mAP`` is the mAP of the validation run in
    that epoch, null when none ran), and logs the same values to every logger as ``diagnostics/<name>``
    and ``time/train_epoch_s`` at the epoch's global step. ``train_epoch_s`` is the wall time from the
    epoch's start (its discrete steps included) to its last optimizer step, validation excluded, in
    seconds. At the end of fit it saves ``database_codes.npz``: ``h`` (float16, ``(n, bits)``) and
    ``labels`` (uint8 multi-hot) of the first ``scatter_images`` database items. The history is kept in
    checkpoints, so a resumed run continues its file.

    Args:
        num_images: training images measured (the first ones of the training split).
        swd_projections: random directions of the SWD measurement (the paper's Fig. 3: 10,000).
        seed: seed of the sampled HSWD target and the SWD directions (and of any random transform).
        every_n_epochs: measure the distances every n-th epoch (and the last); times are kept every epoch.
        batch_size: images per forward pass and per original-term batch (default: the training batch size).
        scatter_images: database items whose codes are saved at the end of fit (0: none).
        num_workers: loader processes for the measured images (seeded by ``seed``; 0 reads them here).
    """

    def __init__(
        self,
        num_images: int = 1024,
        swd_projections: int = 10000,
        seed: int = 0,
        every_n_epochs: int = 1,
        batch_size: int | None = None,
        scatter_images: int = 2000,
        num_workers: int = 0,
    ) -> None:
        if num_images < 2:
            raise ValueError(f"num_images must be >= 2 (a distribution needs two codes), got {num_images}")
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.num_images = num_images
        self.swd_projections = swd_projections
        self.seed = seed
        self.every_n_epochs = every_n_epochs
        self.batch_size = batch_size
        self.scatter_images = scatter_images
        self.num_workers = num_workers
        self.history: list[dict[str, Any]] = []
        self._hswd = HSWD()
        self._hswd_exact = HSWD(target="exact")
        self._swd = SWD(num_projections=swd_projections)
        self._timer_start: float | None = None
        self._elapsed = 0.0
        self._epoch_seconds = 0.0
        self._val_map: float | None = None

    # ------------------------------------------------------------------------------------ timing
    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._elapsed, self._epoch_seconds, self._val_map = 0.0, 0.0, None
        self._timer_start = time.perf_counter()

    def _pause(self, pl_module: LightningModule) -> None:
        if self._timer_start is not None:
            _synchronize(pl_module.device)
            self._elapsed += time.perf_counter() - self._timer_start
            self._timer_start = None

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._timer_start is None:
            return
        if batch_idx + 1 >= trainer.num_training_batches:  # the last step: wait for the device once
            _synchronize(pl_module.device)
        self._epoch_seconds = self._elapsed + time.perf_counter() - self._timer_start

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self._pause(pl_module)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn != "fit" or trainer.sanity_checking:
            return
        value = next((v for k, v in trainer.callback_metrics.items() if k.startswith("val/mAP@")), None)
        self._val_map = None if value is None else float(value)
        self._timer_start = time.perf_counter()  # only batch ends read it: a final validation adds nothing

    # ------------------------------------------------------------------------------- measurement
    def _loader(self, trainer: Trainer, dataset: Dataset, count: int) -> DataLoader:
        datamodule = trainer.datamodule  # type: ignore[attr-defined]
        size = len(dataset)  # type: ignore[arg-type]
        return DataLoader(
            Subset(dataset, range(min(count, size))),
            batch_size=self.batch_size or datamodule.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=datamodule.collate_fn,
            generator=torch.Generator().manual_seed(self.seed),  # the global generator stays untouched
        )

    def _forward(
        self, pl_module: LightningModule, loader: DataLoader
    ) -> list[tuple[Tensor, Tensor, Tensor, Tensor]]:
        """``[(u, h, labels, indices), …]`` per batch, on the module's device."""
        datamodule = pl_module.trainer.datamodule  # type: ignore[attr-defined]
        batches = []
        for images, labels, indices in loader:
            u, h = pl_module(datamodule.model_input(images.to(pl_module.device)))
            batches.append((u, h, labels.to(pl_module.device), indices.to(pl_module.device)))
        return batches

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, float | None]:
        """The four distances on the fixed training subset (see the class docstring)."""
        dataset = trainer.datamodule.train_dataset  # type: ignore[attr-defined]
        with evaluating(pl_module, self.seed):
            batches = self._forward(pl_module, self._loader(trainer, dataset, self.num_images))
            raw = pl_module.quantizer_input == "raw"  # type: ignore[attr-defined]
            codes = torch.cat([u if raw else h for u, h, _, _ in batches])
            values: dict[str, float | None] = {
                "hswd": float(self._hswd(codes)),
                "hswd_exact": float(self._hswd_exact(codes)),
                "swd": float(self._swd(codes)),
                "original": self._original_term(pl_module, batches),
            }
        return values

    @staticmethod
    def _original_term(
        pl_module: LightningModule, batches: list[tuple[Tensor, Tensor, Tensor, Tensor]]
    ) -> float | None:
        """The loss's own ``quantization`` term, averaged over the batches (weighted by size), computed
        by a copy of the loss so that its state (code banks, DSDH's B) is not changed; None without one."""
        loss = cast(HashLoss, copy.deepcopy(pl_module.loss))
        total, count = 0.0, 0
        for u, h, labels, indices in batches:
            term = loss(u, h, labels, indices).get("quantization")
            if term is None:
                return None
            total += float(term) * len(u)
            count += len(u)
        return total / count

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._pause(pl_module)
        epoch = trainer.current_epoch
        max_epochs = trainer.max_epochs or -1
        last = trainer.should_stop or (max_epochs > 0 and epoch + 1 >= max_epochs)
        measured = (epoch + 1) % self.every_n_epochs == 0 or last
        values = self.measure(trainer, pl_module) if measured else dict.fromkeys(MEASURES)
        record = {
            "epoch": epoch,
            "global_step": trainer.global_step,
            "train_epoch_s": self._epoch_seconds,
            **values,
            "val_mAP": self._val_map,
        }
        self.history.append(record)
        logged = {f"diagnostics/{k}": v for k, v in values.items() if v is not None}
        for logger in trainer.loggers:
            logger.log_metrics(
                {**logged, "time/train_epoch_s": self._epoch_seconds}, step=trainer.global_step
            )
        if trainer.is_global_zero:
            self._write(trainer)

    def _write(self, trainer: Trainer) -> None:
        settings = {
            "num_images": self.num_images,
            "swd_projections": self.swd_projections,
            "seed": self.seed,
            "every_n_epochs": self.every_n_epochs,
            "quantizer_input": getattr(trainer.lightning_module, "quantizer_input", None),
        }
        text = json.dumps({"settings": settings, "epochs": self.history}, indent=1)
        (Path(trainer.default_root_dir) / DIAGNOSTICS_FILE).write_text(text + "\n")

    # ------------------------------------------------------------------------------- code picture
    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        datamodule = getattr(trainer, "datamodule", None)
        if self.scatter_images < 1 or datamodule is None or not hasattr(datamodule, "database_dataset"):
            return
        with evaluating(pl_module, self.seed):
            batches = self._forward(
                pl_module, self._loader(trainer, datamodule.database_dataset, self.scatter_images)
            )
        if trainer.is_global_zero:
            np.savez_compressed(
                Path(trainer.default_root_dir) / CODES_FILE,
                h=torch.cat([h for _, h, _, _ in batches]).cpu().numpy().astype(np.float16),
                labels=torch.cat([labels for _, _, labels, _ in batches]).cpu().numpy().astype(np.uint8),
            )

    # ------------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))


def read_diagnostics(folder: Path) -> list[dict[str, Any]]:
    """The per-epoch records a run's :class:`TrainingDiagnostics` wrote (``diagnostics.json``); empty when
    the run has none."""
    path = Path(folder) / DIAGNOSTICS_FILE
    return list(json.loads(path.read_text())["epochs"]) if path.is_file() else []
