"""The result grid: queries in rows, their top k to the right, the Hamming distance under each, framed
green (relevant: shares a label with the query) or red (irrelevant) when labels are known.

Made with :class:`matplotlib.figure.Figure`, not pyplot, so it works in any process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

RELEVANT, IRRELEVANT, UNKNOWN = "#1a9850", "#d73027", "#bbbbbb"


@dataclass
class Cell:
    """One picture of the grid with its caption; ``relevant`` is ``None`` when labels are unknown."""

    picture: Image.Image
    caption: str
    relevant: bool | None = None


def relevance(query_labels: np.ndarray | None, result_labels: np.ndarray | None) -> bool | None:
    """Whether two multi-hot label rows share a label; ``None`` if either is unknown."""
    if query_labels is None or result_labels is None:
        return None
    return bool(np.any((np.asarray(query_labels) != 0) & (np.asarray(result_labels) != 0)))


def result_grid(rows: list[tuple[Cell, list[Cell]]], title: str = "", cell_inches: float = 1.2) -> Figure:
    """One row per query: the query (framed black), a gap, then its results in rank order."""
    columns = 1 + max(len(results) for _, results in rows)
    figure = Figure(
        figsize=(cell_inches * (columns + 0.3), cell_inches * 1.25 * len(rows)), layout="constrained"
    )
    axes = figure.subplots(len(rows), columns + 1, squeeze=False, width_ratios=[1, 0.3] + [1] * (columns - 1))
    for row, (query, results) in zip(axes, rows, strict=True):
        cells: list[Cell | None] = [query, None, *results]
        for ax, cell in zip(row, cells + [None] * (len(row) - len(cells)), strict=True):
            ax.set_xticks([])
            ax.set_yticks([])
            if cell is None:
                ax.set_axis_off()
                continue
            grey = cell.picture.mode in ("L", "1", "I", "F")
            ax.imshow(
                np.asarray(cell.picture),
                cmap="gray" if grey else None,
                vmin=0,
                vmax=255,
                interpolation="nearest",
            )
            color = (
                "black"
                if cell is query
                else {True: RELEVANT, False: IRRELEVANT, None: UNKNOWN}[cell.relevant]
            )
            for spine in ax.spines.values():
                spine.set_edgecolor(color)
                spine.set_linewidth(4 if cell is not query else 2)
            ax.set_xlabel(cell.caption, fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` as a PNG at 100 dpi (the parent folder must exist)."""
    path = Path(path)
    figure.savefig(path, dpi=100)
    return path
