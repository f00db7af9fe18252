"""The code space of runs as a picture (the HSWD paper's Fig. 2): database codes in 2-D, coloured by class.

    python -m hashbench.tracking.codes_figure RUN_A [RUN_B …] --out docs/codes.png [--title A --title B]

Each run folder holds ``database_codes.npz`` (written at the end of fit by
:class:`~hashbench.tracking.diagnostics.TrainingDiagnostics`): the continuous codes h of the first
database items and their labels. Two-bit codes are drawn as they are; longer codes by their first two
principal components (centred, by SVD). One panel per run, side by side, with the dashed lines of the
sign boundaries for 2-bit codes.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hashbench.errors import UserError
from hashbench.tracking.diagnostics import CODES_FILE


def read_codes(folder: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(h, labels)`` of a run folder: codes ``(n, bits)`` float, class ``(n,)`` (the first label)."""
    path = Path(folder) / CODES_FILE
    if not path.is_file():
        raise UserError(f"{path} does not exist: the run was not trained with TrainingDiagnostics")
    with np.load(path) as data:
        return data["h"].astype(np.float64), data["labels"].argmax(axis=1)


def project_2d(h: np.ndarray) -> tuple[np.ndarray, tuple[str, str]]:
    """Codes ``(n, bits)`` → ``(n, 2)``: the two bits themselves for 2-bit codes, else the first two
    principal components; with the axis names."""
    if h.shape[1] == 2:
        return h, ("bit 1", "bit 2")
    centred = h - h.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T, ("PC 1", "PC 2")


def scatter_codes(ax: Axes, folder: str | Path, title: str) -> None:
    """One run's database codes in 2-D on ``ax``, one colour per class."""
    h, labels = read_codes(folder)
    points, (xlabel, ylabel) = project_2d(h)
    for cls in np.unique(labels):
        chosen = labels == cls
        ax.scatter(points[chosen, 0], points[chosen, 1], s=4, alpha=0.6, color=f"C{cls % 10}", label=str(cls))
    if h.shape[1] == 2:
        ax.axhline(0, color="gray", linestyle="--", linewidth=0.8)
        ax.axvline(0, color="gray", linestyle="--", linewidth=0.8)
    ax.set(title=f"{title} ({h.shape[1]} bits)", xlabel=xlabel, ylabel=ylabel)


def codes_figure(folders: Sequence[str | Path], titles: Sequence[str]) -> Figure:
    """One panel per run folder, side by side, with a shared class legend."""
    figure = Figure(figsize=(4.2 * len(folders), 4.2), layout="constrained")
    axes = figure.subplots(1, len(folders), squeeze=False)[0]
    for ax, folder, title in zip(axes, folders, titles, strict=True):
        scatter_codes(ax, folder, title)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, title="class", loc="outside right center", markerscale=3)
    return figure


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hashbench.tracking.codes_figure", description=__doc__)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders holding database_codes.npz")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--title", action="append", help="a panel title per run (default: the folder name)")
    args = parser.parse_args(argv)
    titles = args.title or [run.parent.name for run in args.runs]
    if len(titles) != len(args.runs):
        raise SystemExit(f"give one --title per run: {len(args.runs)} runs, {len(titles)} titles")
    try:
        figure = codes_figure(args.runs, titles)
    except UserError as error:
        raise SystemExit(f"error: {error}") from None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
