"""``RetrievalGrid``: at the end of ``test``, a picture of a few queries with their top k."""

from __future__ import annotations

import numpy as np
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torchmetrics.utilities import dim_zero_cat

from hashbench.metrics import RetrievalMetric, dedup_by_index
from hashbench.retrieval.codes import CodeIndex
from hashbench.retrieval.pictures import Cell, relevance, result_grid, save_figure


class RetrievalGrid(Callback):
    """Draws ``queries`` test queries (evenly spaced over the query split) with their top ``k`` of the
    database, the Hamming distance under each, framed green (relevant: shares a label) or red, and writes
    it to ``<default_root_dir>/<filename>`` (the run folder under the CLI) and to every W&B logger as
    ``test/retrieval_grid``.

    The codes are the ones the test already computed: the module's ``test_metric`` holds the packed codes,
    labels and indices of both splits until the module's own ``on_test_epoch_end`` computes and resets it,
    and a callback's hook runs just before it. Under DDP they are gathered first (every rank takes part).
    Pictures come from the DataModule's ``picture(role, position)``; a dataset without it is skipped
    with a warning.

    Args:
        queries: rows of the grid.
        k: results per query.
        filename: file name of the PNG in the run folder.
    """

    def __init__(self, queries: int = 5, k: int = 10, filename: str = "test_retrieval_grid.png") -> None:
        if queries < 1 or k < 1:
            raise ValueError(f"queries and k must be >= 1, got {queries} and {k}")
        self.queries = queries
        self.k = k
        self.filename = filename

    @staticmethod
    def _split(metric: RetrievalMetric, role: str) -> tuple[Tensor, Tensor, Tensor]:
        """Codes, labels and split positions of ``role``, de-duplicated and sorted by position."""
        index, codes, labels = (
            dim_zero_cat(getattr(metric, f"{role}_{name}")) for name in ("index", "codes", "labels")
        )
        index, codes, labels = dedup_by_index(index, codes, labels)
        return index, codes, labels

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        metric = getattr(pl_module, "test_metric", None)
        if not isinstance(metric, RetrievalMetric) or not metric.database_codes:
            return
        distributed = trainer.world_size > 1
        if distributed:
            metric.sync()
        try:
            q_index, q_codes, q_labels = self._split(metric, "query")
            x_index, x_codes, x_labels = self._split(metric, "database")
        finally:
            if distributed:
                metric.unsync()
        if trainer.is_global_zero:
            self._draw(trainer, metric.bits, (q_index, q_codes, q_labels), (x_index, x_codes, x_labels))

    def _draw(self, trainer: Trainer, bits: int, query: tuple, database: tuple) -> None:
        datamodule = trainer.datamodule  # type: ignore[attr-defined]
        q_index, q_codes, q_labels = (t.cpu().numpy() for t in query)
        x_index, x_codes, x_labels = (t.cpu().numpy() for t in database)
        code_index = CodeIndex(bits)
        code_index.add(x_codes, [str(i) for i in x_index])
        rows_picked = np.unique(
            np.linspace(0, len(q_index) - 1, min(self.queries, len(q_index))).round().astype(int)
        )
        positions, distances = code_index.search(q_codes[rows_picked], min(self.k, len(x_index)))
        try:
            rows = [
                (
                    Cell(datamodule.picture("query", int(q_index[row])), f"query {q_index[row]}"),
                    [
                        Cell(
                            datamodule.picture("database", int(x_index[p])),
                            f"d = {d}",
                            relevance(q_labels[row], x_labels[p]),
                        )
                        for p, d in zip(positions[i], distances[i], strict=True)
                    ],
                )
                for i, row in enumerate(rows_picked)
            ]
        except NotImplementedError as error:
            rank_zero_warn(f"RetrievalGrid: no picture of the test results ({error})")
            return
        figure = result_grid(rows, f"test: top {positions.shape[1]} by Hamming distance (green: relevant)")
        save_figure(figure, f"{trainer.default_root_dir}/{self.filename}")
        loggers = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        if loggers:
            import wandb

            for logger in loggers:
                logger.experiment.log(
                    {"test/retrieval_grid": wandb.Image(figure), "trainer/global_step": trainer.global_step}
                )


__all__ = ["RetrievalGrid"]
