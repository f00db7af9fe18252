"""HashingModule: backbone → hash head → similarity loss + λ · quantizer, evaluated by Hamming ranking."""

from __future__ import annotations

import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import torch
from lightning import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from hashbench.backbones import Backbone
from hashbench.data.base import RetrievalDataModule
from hashbench.heads import HashHead
from hashbench.losses.base import HashLoss, TrainingContext
from hashbench.metrics import RetrievalMetric, pack_codes
from hashbench.quantizers import Quantizer

# RetrievalMetric gathers its states across ranks itself, so its values are already global.
warnings.filterwarnings("ignore", message=r".*self\.log\('(val|test)/.*sync_dist=True", category=UserWarning)

Batch = tuple[Tensor, Tensor, Tensor]
EvalStage = Literal["val", "test"]
ROLES = ("query", "database")  # the order of the evaluation dataloaders


class HashingModule(LightningModule):
    """A deep hashing model composed from swap-in parts.

    The objective per training batch is ``sum(loss terms except "quantization") + λ · L_q`` where
    ``L_q`` is the loss's own quantization term (``quantizer="original"``), a plug-in
    :class:`~hashbench.quantizers.Quantizer`, or nothing (``quantizer=None``).
    Validation and test rank the database by Hamming distance to each query with codes
    ``sign(h)`` (sign(0) = +1) and log ``{stage}/mAP@K``, ``{stage}/P@1000`` and the diagnostics.

    Args:
        backbone: feature extractor.
        head: hash layer; built here on the backbone's feature size.
        loss: similarity loss returning named terms.
        quantizer: ``"original"`` (the loss's own term), a plug-in quantizer, or ``None``.
        quantization_weight: λ, the weight of the quantization term.
        quantizer_input: what the quantizer sees: the head's ``raw`` output u (as the HSWD
            authors' code) or its ``activated`` output h. The original term always sees what its
            method defines.
        backbone_lr_multiplier: learning rate of the backbone relative to the head's
            (0.1 when fine-tuning a pretrained backbone, as the papers do).
        optimizer: optimizer factory; its learning rate is the head's.
        scheduler: learning-rate scheduler factory, stepped once per epoch.
        precision_k: K of P@K.
        hamming_radius: r of the precision within Hamming radius r.
    """

    def __init__(
        self,
        backbone: Backbone,
        head: HashHead,
        loss: HashLoss,
        quantizer: Quantizer | Literal["original"] | None = "original",
        quantization_weight: float = 0.1,
        quantizer_input: Literal["raw", "activated"] = "raw",
        backbone_lr_multiplier: float = 1.0,
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | None = None,
        precision_k: int = 1000,
        hamming_radius: int = 2,
    ) -> None:
        super().__init__()
        if quantization_weight < 0:
            raise ValueError(f"quantization_weight (λ) must be >= 0, got {quantization_weight}")
        if backbone_lr_multiplier < 0:
            raise ValueError(f"backbone_lr_multiplier must be >= 0, got {backbone_lr_multiplier}")
        self.save_hyperparameters()
        self.backbone = backbone
        self.head = head
        self.head.build(backbone.out_features)
        self.loss = loss
        self.quantizer = quantizer
        self.quantization_weight = quantization_weight
        self.quantizer_input = quantizer_input
        self.backbone_lr_multiplier = backbone_lr_multiplier
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.precision_k = precision_k
        self.hamming_radius = hamming_radius
        self.curves: dict[str, dict[str, list[float]]] = {}

    @property
    def bits(self) -> int:
        return self.head.bits

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Images ``(N, C, H, W)`` → raw codes ``u`` and activated codes ``h``, each ``(N, bits)``."""
        return self.head(self.backbone(images))

    # ----------------------------------------------------------------------------------- setup
    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if not isinstance(datamodule, RetrievalDataModule):
            raise TypeError(
                f"HashingModule needs a RetrievalDataModule (train/query/database splits), got {datamodule!r}"
            )
        context = TrainingContext(
            bits=self.bits,
            num_classes=datamodule.num_classes,
            num_train=len(datamodule.train_dataset),  # type: ignore[arg-type]
            multi_label=datamodule.multi_label,
        )
        self.loss.setup(context)
        self.val_metric = self._new_metric(datamodule.top_k, datamodule.multi_label)
        self.test_metric = self._new_metric(datamodule.top_k, datamodule.multi_label)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.loss.context is not None:
            checkpoint["loss_context"] = asdict(self.loss.context)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Allocate the loss's state before its weights load (``load_from_checkpoint`` has no ``setup``)."""
        if self.loss.context is None and "loss_context" in checkpoint:
            self.loss.setup(TrainingContext(**checkpoint["loss_context"]))

    def _new_metric(self, top_k: int | None, multi_label: bool) -> RetrievalMetric:
        """Multi-label data also gets ACG, NDCG and WAP at ``top_k`` (graded by shared labels)."""
        return RetrievalMetric(
            bits=self.bits,
            top_k=top_k,
            precision_k=self.precision_k,
            radius=self.hamming_radius,
            multi_label=multi_label,
        ).to(self.device)

    # -------------------------------------------------------------------------------- training
    def on_train_epoch_start(self) -> None:
        self.loss.on_train_epoch_start(self.current_epoch)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        images, labels, indices = batch
        u, h = self(images)
        terms = self.loss(u, h, labels, indices)
        original = terms.pop("quantization", None)
        if self.quantizer == "original":
            quantization = original
        elif self.quantizer is None:
            quantization = None
        else:
            quantization = self.quantizer(u if self.quantizer_input == "raw" else h)
        total = torch.stack(list(terms.values())).sum()
        if quantization is not None:
            terms["quantization"] = quantization
            total = total + self.quantization_weight * quantization
        batch_size = len(images)
        for name, value in terms.items():
            self.log(f"train/loss/{name}", value, on_step=False, on_epoch=True, batch_size=batch_size)
        self.log("train/loss", total, prog_bar=True, on_step=True, on_epoch=True, batch_size=batch_size)
        return total

    # ------------------------------------------------------------------------------ evaluation
    def _update_metric(self, metric: RetrievalMetric, batch: Batch, dataloader_idx: int) -> None:
        images, labels, indices = batch
        _, h = self(images)
        metric.update(h, labels, indices, ROLES[dataloader_idx])

    def validation_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._update_metric(self.val_metric, batch, dataloader_idx)

    def test_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._update_metric(self.test_metric, batch, dataloader_idx)

    def _log_retrieval(self, stage: EvalStage, metric: RetrievalMetric) -> None:
        result = metric.compute()
        metric.reset()
        scalars = {f"{stage}/{name}": value for name, value in result.items() if value.ndim == 0}
        self.log_dict(scalars, sync_dist=False, add_dataloader_idx=False)
        self.curves[stage] = {
            name.removeprefix("curve/"): value.tolist() for name, value in result.items() if value.ndim == 1
        }

    def on_validation_epoch_end(self) -> None:
        self._log_retrieval("val", self.val_metric)

    def on_test_epoch_end(self) -> None:
        self._log_retrieval("test", self.test_metric)

    def on_predict_epoch_start(self) -> None:
        self._predictions: dict[str, list[dict[str, Tensor]]] = {role: [] for role in ROLES}

    def predict_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Tensor]:
        """Bit-packed codes ``(N, ceil(bits/8))`` uint8 with labels and split indices."""
        images, labels, indices = batch
        _, h = self(images)
        codes = {"codes": pack_codes(h), "labels": labels, "indices": indices}
        self._predictions[ROLES[dataloader_idx]].append({k: v.cpu() for k, v in codes.items()})
        return codes

    def on_predict_epoch_end(self) -> None:
        """Save ``{"bits", "query": {...}, "database": {...}}`` to ``codes.pt`` in the run folder.

        Each role holds ``codes`` (packed uint8), ``labels`` and ``indices`` (positions in its split).
        Under DDP every rank writes its shard to ``codes_rank<r>.pt``.
        """
        result: dict[str, object] = {"bits": self.bits}
        for role, parts in self._predictions.items():
            result[role] = {
                key: torch.cat([part[key] for part in parts]) for key in ("codes", "labels", "indices")
            }
        suffix = "" if self.trainer.world_size == 1 else f"_rank{self.global_rank}"
        torch.save(result, Path(self.trainer.default_root_dir) / f"codes{suffix}.pt")

    # ------------------------------------------------------------------------------ optimizers
    def configure_optimizers(self) -> Any:
        backbone_params = [p for p in self.backbone.parameters() if p.requires_grad]
        backbone_ids = {id(p) for p in backbone_params}
        other_params = [p for p in self.parameters() if p.requires_grad and id(p) not in backbone_ids]
        groups = [
            {"params": params, "name": name}
            for name, params in (("backbone", backbone_params), ("head", other_params))
            if params
        ]
        optimizer = self.optimizer_factory(groups)
        for group in optimizer.param_groups:
            if group["name"] == "backbone":
                group["lr"] *= self.backbone_lr_multiplier
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer)}}
