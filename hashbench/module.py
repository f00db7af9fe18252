"""HashingModule: backbone → hash head → similarity loss + λ · quantizer, evaluated by Hamming ranking."""

from __future__ import annotations

import random
from dataclasses import asdict
from typing import Any, Literal, cast

import numpy as np
import torch
from lightning import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from hashbench.backbones import Backbone
from hashbench.baselines import FittedHead
from hashbench.data.base import RetrievalDataModule
from hashbench.errors import UserError
from hashbench.heads import HashHead
from hashbench.losses.base import HashLoss, TrainingContext
from hashbench.metrics import RetrievalMetric, pack_codes
from hashbench.quantizers import Quantizer

Batch = tuple[Tensor, Tensor, Tensor]
EvalStage = Literal["val", "test"]
ROLES = ("query", "database")  # the order of the evaluation dataloaders


class HashingModule(LightningModule):
    """A deep hashing model composed from swap-in parts.

    The objective per training batch is ``sum(loss terms except "quantization") + λ · L_q`` where
    ``L_q`` is the loss's own quantization term (``quantizer="original"``), a plug-in
    :class:`~hashbench.quantizers.Quantizer`, or nothing (``quantizer=None``).
    A fitted head (:mod:`hashbench.baselines`: LSH, ITQ, spectral hashing) is fitted on the backbone's
    training features when the fit starts, and nothing is trained (no optimizer, no training step).
    Validation and test rank the database by Hamming distance to each query with codes
    ``sign(c)`` (sign(0) = +1), ``c = loss.codes(u, h)`` what the method binarises (h unless the
    loss says otherwise), and log ``{stage}/mAP@K``, ``{stage}/P@{precision_k}`` and the diagnostics.

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
        channels_last: keep the backbone's 4-D weights and its input images channels-last (NHWC) in
            memory. The same model and results up to floating-point rounding; convolutions run faster on
            CPUs (oneDNN: a quarter off a training step of the small CNN, ``benchmarks/step_overhead.py
            --layout``) and on GPUs' tensor cores. ``false``: PyTorch's default (NCHW).
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
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        if quantization_weight < 0:
            raise ValueError(f"quantization_weight (λ) must be >= 0, got {quantization_weight}")
        if backbone_lr_multiplier < 0:
            raise ValueError(f"backbone_lr_multiplier must be >= 0, got {backbone_lr_multiplier}")
        if precision_k < 1:
            raise ValueError(f"precision_k (K of P@K) must be >= 1, got {precision_k}")
        if not 0 <= hamming_radius <= head.bits:
            raise ValueError(f"hamming_radius must be in [0, bits={head.bits}], got {hamming_radius}")
        self.save_hyperparameters()
        self.channels_last = channels_last
        self.backbone = backbone.to(memory_format=torch.channels_last) if channels_last else backbone
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
        self.automatic_optimization = not isinstance(head, FittedHead)

    @property
    def bits(self) -> int:
        return self.head.bits

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Images ``(N, C, H, W)`` → raw codes ``u`` and activated codes ``h``, each ``(N, bits)``."""
        return self.head(self.features(images))

    def features(self, images: Tensor) -> Tensor:
        """The backbone's features ``(N, F)`` of images ``(N, C, H, W)`` (made channels-last first with
        ``channels_last``)."""
        if self.channels_last and images.dim() == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.backbone(images)

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
        """Save the loss's context and the random generators' states (so a resumed fit is exact)."""
        if self.loss.context is not None:
            checkpoint["loss_context"] = asdict(self.loss.context)
        checkpoint["rng_states"] = rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Allocate the loss's state before its weights load (``load_from_checkpoint`` has no ``setup``);
        when resuming a fit, restore the random generators."""
        if self.loss.context is None and "loss_context" in checkpoint:
            self.loss.setup(TrainingContext(**checkpoint["loss_context"]))
        if "rng_states" in checkpoint and self._trainer is not None and self.trainer.state.fn == "fit":
            set_rng_states(checkpoint["rng_states"])

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
    @property
    def is_fitted(self) -> bool:
        """Whether the head is a fitted baseline that has been fitted (it has no training steps)."""
        return isinstance(self.head, FittedHead) and self.head.is_fitted

    def on_fit_start(self) -> None:
        """Fit a fitted head on the training features (unless a checkpoint already holds its fit)."""
        if isinstance(self.head, FittedHead) and not self.head.is_fitted:
            self.head.fit(self._training_features())

    def _training_features(self) -> Tensor:
        """The backbone's features ``(N, F)`` of the training split in its order: evaluation mode, no
        gradient, evaluation transforms, a loader of its own (no shuffle, no draw from the global
        generator)."""
        datamodule = getattr(self.trainer, "datamodule", None)
        assert isinstance(datamodule, RetrievalDataModule)  # checked in setup
        loader = datamodule.eval_loader(datamodule.train_dataset)
        was_training = self.backbone.training
        self.backbone.eval()
        parts = []
        with torch.no_grad():
            for images, _, _ in loader:
                parts.append(self.features(datamodule.model_input(images.to(self.device))).float())
        self.backbone.train(was_training)
        return torch.cat(parts)

    def on_train_epoch_start(self) -> None:
        self.loss.on_train_epoch_start(self.current_epoch)
        self._epoch_sums: dict[str, Tensor] = {}
        self._epoch_samples = 0

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor | None:
        if isinstance(self.head, FittedHead):
            return None  # fitted when the fit started: nothing to train
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
        if not bool(torch.isfinite(total) & torch.isfinite(u).all()):
            raise self._divergence(terms, u)
        self._accumulate({**terms, "total": total}, len(images))
        return total

    def _accumulate(self, terms: dict[str, Tensor], batch_size: int) -> None:
        """Add the batch's terms, weighted by its size, to the epoch's sums (logged once per epoch)."""
        for name, value in terms.items():
            weighted = value.detach() * batch_size
            self._epoch_sums[name] = (
                self._epoch_sums[name] + weighted if name in self._epoch_sums else weighted
            )
        self._epoch_samples += batch_size

    def on_train_epoch_end(self) -> None:
        """Log each term's mean over the epoch's samples (``train/loss`` is the objective), averaged over
        DDP ranks: one reduction per epoch instead of one log call per step."""
        for name, value in self._epoch_sums.items():
            key = "train/loss" if name == "total" else f"train/loss/{name}"
            self.log(key, value / self._epoch_samples, prog_bar=name == "total", sync_dist=True)

    def _divergence(self, terms: dict[str, Tensor], u: Tensor) -> UserError:
        """The error that stops a run whose loss or codes are no longer finite."""
        bad = [f"{name} = {value.item():g}" for name, value in terms.items() if not torch.isfinite(value)]
        what = f"the loss term {', '.join(bad)}" if bad else "the objective"
        if not bool(torch.isfinite(u).all()):
            what = f"{what} and the codes u" if bad else "the codes u"
        learning_rates = ", ".join(f"{group['lr']:g}" for group in self.trainer.optimizers[0].param_groups)
        return UserError(
            f"training diverged at epoch {self.current_epoch}, step {self.global_step}: {what} "
            f"{'is' if ' and ' not in what else 'are'} not finite. Lower the learning rate "
            f"(model.optimizer.init_args.lr; now {learning_rates}) or λ (model.quantization_weight; now "
            f"{self.quantization_weight:g}), or train in 32-bit precision (trainer.precision; now "
            f"{self.trainer.precision})."
        )

    # ------------------------------------------------------------------------------ evaluation
    def _update_metric(self, metric: RetrievalMetric, batch: Batch, dataloader_idx: int) -> None:
        images, labels, indices = batch
        codes = self.loss.codes(*self(images))
        if not bool(torch.isfinite(codes).all()):
            raise UserError(
                f"the model's codes are not finite on the {ROLES[dataloader_idx]} images: the weights "
                "diverged; lower the learning rate or λ (model.quantization_weight)"
            )
        metric.update(codes, labels, indices, ROLES[dataloader_idx])

    def validation_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._update_metric(self.val_metric, batch, dataloader_idx)

    def test_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._update_metric(self.test_metric, batch, dataloader_idx)

    def _log_retrieval(self, stage: EvalStage, metric: RetrievalMetric) -> None:
        result = metric.compute()
        metric.reset()
        scalars = {f"{stage}/{name}": value for name, value in result.items() if value.ndim == 0}
        # identical on every rank (the metric gathers its states), so the mean over ranks changes nothing
        self.log_dict(scalars, sync_dist=True, add_dataloader_idx=False)
        self.curves[stage] = {
            name.removeprefix("curve/"): value.tolist() for name, value in result.items() if value.ndim == 1
        }

    def on_validation_epoch_end(self) -> None:
        self._log_retrieval("val", self.val_metric)

    def on_test_epoch_end(self) -> None:
        self._log_retrieval("test", self.test_metric)

    def predict_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Tensor]:
        """Bit-packed codes ``(N, ceil(bits/8))`` uint8 with labels and split indices (the CLI's
        :class:`~hashbench.runs.codes.CodesWriter` saves them to ``codes.pt``)."""
        images, labels, indices = batch
        return {"codes": pack_codes(self.loss.codes(*self(images))), "labels": labels, "indices": indices}

    # ------------------------------------------------------------------------------ optimizers
    def configure_optimizers(self) -> Any:
        if isinstance(self.head, FittedHead):
            return None  # a fitted baseline trains nothing
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


def rng_states() -> dict[str, Any]:
    """The states of torch's (CPU and CUDA), numpy's and Python's global generators, as plain tensors and
    tuples (loadable with ``torch.load(weights_only=True)``)."""
    state = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state(legacy=True))
    kind, keys, position, has_gauss, cached = state
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (
            str(kind),
            torch.from_numpy(keys.astype(np.int64)),
            int(position),
            int(has_gauss),
            float(cached),
        ),
        "python": random.getstate(),
    }


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`rng_states` saved."""
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    random.setstate(states["python"])
