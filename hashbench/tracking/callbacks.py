"""``WandbPlots``: a run's retrieval curves as W&B plots."""

from __future__ import annotations

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import WandbLogger

from hashbench.tracking.plots import curve_figures


class WandbPlots(Callback):
    """Logs ``pl_module.curves[stage]`` to every W&B logger after each validation and at test end.

    Per stage (``val``, ``test``) three images — ``{stage}/pr_curve``, ``{stage}/bit_balance`` and
    ``{stage}/hamming_histograms`` (relevant vs irrelevant pairs) — at the current global step, and the
    raw curves in the run summary under ``curves/{stage}`` (what ``hashbench.tracking.compare`` reads).
    The CLI adds this callback by itself when a W&B logger is configured; without one it does nothing.
    """

    def _log(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        curves = getattr(pl_module, "curves", {}).get(stage)
        loggers = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        if not curves or not loggers or not trainer.is_global_zero:
            return
        import wandb

        figures = curve_figures(curves, title=f"{stage}, step {trainer.global_step}")
        images = {f"{stage}/{name}": wandb.Image(figure) for name, figure in figures.items()}
        for logger in loggers:
            logger.experiment.log({**images, "trainer/global_step": trainer.global_step})
            logger.experiment.summary[f"curves/{stage}"] = curves

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self._log(trainer, pl_module, "val")

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._log(trainer, pl_module, "test")
