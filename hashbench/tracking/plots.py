"""Matplotlib plots of one run's curves (``curves.json`` / ``HashingModule.curves[stage]``).

Figures are made with :class:`matplotlib.figure.Figure`, not pyplot, so they work in any process
(training workers included) and are freed with their last reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

Curves = Mapping[str, Sequence[float]]


def plot_pr_curve(ax: Axes, curves: Curves, label: str | None = None, **style: Any) -> None:
    """Precision vs recall of the Hamming ball, radius 0..bits (micro-averaged over queries)."""
    ax.plot(curves["pr_recall"], curves["pr_precision"], marker=".", markersize=3, label=label, **style)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02), title="PR (Hamming ball)")


def plot_bit_balance(ax: Axes, curves: Curves) -> None:
    """Fraction of +1 per bit over the database; 0.5 is balanced."""
    balance = curves["bit_balance"]
    ax.bar(range(len(balance)), balance, color="tab:blue", width=0.8)
    ax.axhline(0.5, color="black", linestyle="--", linewidth=1)
    ax.set(xlabel="bit", ylabel="fraction of +1", ylim=(0, 1), title="bit balance (database)")


def plot_hamming_histograms(ax: Axes, curves: Curves, label: str | None = None, **style: Any) -> None:
    """Distribution of query–database Hamming distances, relevant pairs (solid) vs irrelevant (dashed)."""
    prefix = f"{label}: " if label else ""
    for kind, linestyle in (("relevant", "-"), ("irrelevant", "--")):
        counts = curves[f"hamming_hist_{kind}"]
        total = sum(counts) or 1.0
        ax.step(
            range(len(counts)),
            [c / total for c in counts],
            where="mid",
            linestyle=linestyle,
            label=f"{prefix}{kind}",
            **style,
        )
    ax.set(xlabel="Hamming distance", ylabel="fraction of pairs", title="Hamming distances")


def curve_figures(curves: Curves, title: str = "") -> dict[str, Figure]:
    """One small figure per plot: ``pr_curve``, ``bit_balance``, ``hamming_histograms``."""
    figures = {}
    for name, draw in (
        ("pr_curve", plot_pr_curve),
        ("bit_balance", plot_bit_balance),
        ("hamming_histograms", plot_hamming_histograms),
    ):
        figure = Figure(figsize=(4.5, 3.5), layout="constrained")
        ax = figure.add_subplot()
        draw(ax, curves)
        if name == "hamming_histograms":
            ax.legend(fontsize="small")
        if title:
            figure.suptitle(title, fontsize="medium")
        figures[name] = figure
    return figures
