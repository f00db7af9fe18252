"""Compare runs: load them from local run folders or a W&B project, then tables and figures across runs.

A run is grouped by its description (method, quantizer, bits, dataset, λ) — ``run.json`` in a run
folder, the ``run.*`` config keys in W&B — and measured by its final metrics: the test metrics when the
run has them, else the final validation (both rank the database by Hamming distance to the queries).
Where several runs share method, quantizer and bits, the figures and the table use the λ with the best
mean mAP (mean over repeated runs at that λ).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hashbench.runs.folder import RunFolder
from hashbench.tracking.describe import variant_label
from hashbench.tracking.plots import plot_hamming_histograms, plot_pr_curve

QUANTIZER_ORDER = ("original", "none", "SWD", "HSWD")
"""Row and colour order of the quantizers; others follow alphabetically."""

Variant = tuple[str, str]  # (method, quantizer)


@dataclass
class RunRecord:
    """One run: where it is, what it is, its config (dotted keys), final metrics and curves."""

    name: str
    description: dict[str, Any]
    config: dict[str, Any]
    metrics: dict[str, Any]
    curves: dict[str, dict[str, list[float]]]

    @property
    def stage(self) -> str:
        """``test`` when the run has test metrics, else ``val``."""
        return "test" if any(key.startswith("test/mAP@") for key in self.metrics) else "val"

    def metric(self, name: str) -> float | None:
        """A final metric of :attr:`stage`: ``mAP`` (any @K) or a name as logged (``bit_entropy``)."""
        if name == "mAP":
            name = next(
                (k.split("/", 1)[1] for k in self.metrics if k.startswith(f"{self.stage}/mAP@")), name
            )
        value = self.metrics.get(f"{self.stage}/{name}")
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None

    @property
    def variant(self) -> Variant:
        return str(self.description.get("method")), str(self.description.get("quantizer"))

    @property
    def bits(self) -> int:
        return int(self.description.get("bits") or 0)

    @property
    def quantization_weight(self) -> float:
        return float(self.description.get("quantization_weight") or 0.0)

    @property
    def dataset(self) -> str:
        return str(self.description.get("dataset"))

    @property
    def final_curves(self) -> dict[str, list[float]]:
        return self.curves.get(self.stage) or {}


def load_local_runs(root: str | Path) -> list[RunRecord]:
    """Every run folder under ``root`` (any depth) whose ``metrics.json`` has a final mAP; a run's name
    is its folder relative to ``root``."""
    records = []
    for folder in RunFolder.find(root):
        record = RunRecord(
            name=str(folder.path.relative_to(root)),
            description=folder.description,
            config=folder.config,
            metrics=folder.metrics,
            curves=folder.curves,
        )
        if record.metric("mAP") is not None:
            records.append(record)
    return records


def load_wandb_runs(path: str, filters: dict[str, Any] | None = None) -> list[RunRecord]:
    """The runs of a W&B project ``entity/project`` (needs an account) that have a final mAP.

    ``filters`` is W&B's MongoDB-style query, e.g. ``{"config.run.dataset": "CIFAR10"}``.
    """
    import wandb

    records = []
    for run in wandb.Api().runs(path, filters=filters):
        config = dict(run.config)
        summary = {key: run.summary[key] for key in run.summary.keys()}  # noqa: SIM118 (not a dict)
        curves = {
            stage: {name: list(values) for name, values in dict(summary[f"curves/{stage}"]).items()}
            for stage in ("val", "test")
            if f"curves/{stage}" in summary
        }
        record = RunRecord(
            name=f"{path}/{run.id}",
            description={k.removeprefix("run."): v for k, v in config.items() if k.startswith("run.")},
            config=config,
            metrics={k: v for k, v in summary.items() if k.startswith(("val/", "test/"))},
            curves=curves,
        )
        if record.metric("mAP") is not None:
            records.append(record)
    return records


def most_common(values: Iterable[Any]) -> Any:
    """The most frequent value (the first seen on a tie), or None."""
    counts = Counter(values)
    return max(counts, key=counts.__getitem__) if counts else None


def _mean(values: Sequence[float | None]) -> float | None:
    numbers = [v for v in values if v is not None]
    return sum(numbers) / len(numbers) if numbers else None


def best_lambda_runs(records: Sequence[RunRecord]) -> dict[tuple[str, str, int], list[RunRecord]]:
    """Per (method, quantizer, bits): the runs at the λ whose mean mAP is best."""
    settings: dict[tuple[str, str, int, float], list[RunRecord]] = defaultdict(list)
    for record in records:
        settings[(*record.variant, record.bits, record.quantization_weight)].append(record)
    best: dict[tuple[str, str, int], list[RunRecord]] = {}
    for (method, quantizer, bits, _), runs in settings.items():
        key = (method, quantizer, bits)
        mean = _mean([run.metric("mAP") for run in runs]) or 0.0
        if key not in best or mean > (_mean([run.metric("mAP") for run in best[key]]) or 0.0):
            best[key] = runs
    return best


def lambda_curves(records: Sequence[RunRecord], bits: int) -> dict[Variant, list[tuple[float, float]]]:
    """Per variant with at least two λ at ``bits``: ``[(λ, mean mAP), …]`` sorted by λ."""
    settings: dict[Variant, dict[float, list[float | None]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record.bits == bits:
            settings[record.variant][record.quantization_weight].append(record.metric("mAP"))
    return {
        variant: sorted((lam, _mean(values) or 0.0) for lam, values in by_lambda.items())
        for variant, by_lambda in settings.items()
        if len(by_lambda) >= 2
    }


def _variant_order(variant: Variant) -> tuple[str, int, str]:
    method, quantizer = variant
    rank = QUANTIZER_ORDER.index(quantizer) if quantizer in QUANTIZER_ORDER else len(QUANTIZER_ORDER)
    return method, rank, quantizer


def _variants(records: Iterable[RunRecord]) -> list[Variant]:
    return sorted({record.variant for record in records}, key=_variant_order)


def paper_table(records: Sequence[RunRecord], metric: str = "mAP") -> str:
    """A Markdown table as in the papers: a row per method and quantizer, a column per code length,
    each plug-in with its relative change over the method's original term at the same bits."""
    best = best_lambda_runs(records)
    bits = sorted({key[2] for key in best})
    lines = [
        f"| {metric} | " + " | ".join(f"{b} bits" for b in bits) + " |",
        "|---|" + "---:|" * len(bits),
    ]
    for method, quantizer in _variants(records):
        cells = []
        for b in bits:
            value = _mean([run.metric(metric) for run in best.get((method, quantizer, b), [])])
            original = _mean([run.metric(metric) for run in best.get((method, "original", b), [])])
            cell = "–" if value is None else f"{value:.4f}"
            if value is not None and original and quantizer != "original":
                cell += f" ({100 * (value - original) / original:+.1f}%)"
            cells.append(cell)
        lines.append(f"| {variant_label(method, quantizer)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def runs_table(records: Sequence[RunRecord]) -> str:
    """A Markdown table of the runs: variant, bits, λ, final mAP and its stage, and where the run is."""
    lines = ["| run | bits | λ | mAP | stage | folder |", "|---|---:|---:|---:|---|---|"]
    for record in sorted(records, key=lambda r: (_variant_order(r.variant), r.bits, r.quantization_weight)):
        value = record.metric("mAP")
        lines.append(
            f"| {variant_label(*record.variant)} | {record.bits} | {record.quantization_weight:g} "
            f"| {value:.4f} | {record.stage} | {record.name} |"
        )
    return "\n".join(lines)


def _styles(variants: Sequence[Variant]) -> dict[Variant, dict[str, Any]]:
    """A colour per quantizer, a line style per method."""
    quantizers = sorted({q for _, q in variants}, key=lambda q: _variant_order(("", q)))
    methods = sorted({m for m, _ in variants})
    linestyles = ("-", "--", ":", "-.")
    return {
        (m, q): {
            "color": f"C{quantizers.index(q) % 10}",
            "linestyle": linestyles[methods.index(m) % len(linestyles)],
        }
        for m, q in variants
    }


def _empty(ax: Axes, title: str, message: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="gray")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_metric_vs_bits(
    ax: Axes, records: Sequence[RunRecord], metric: str = "mAP", title: str | None = None
) -> None:
    """``metric`` against code length per method × quantizer (best λ at each length)."""
    best = best_lambda_runs(records)
    variants = _variants(records)
    styles = _styles(variants)
    for variant in variants:
        points = sorted(
            (bits, _mean([run.metric(metric) for run in runs]))
            for (method, quantizer, bits), runs in best.items()
            if (method, quantizer) == variant
        )
        points = [(b, v) for b, v in points if v is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=variant_label(*variant), **styles[variant])
    all_bits = sorted({key[2] for key in best})
    ax.set_xscale("log", base=2)
    ax.set_xticks(all_bits, [str(b) for b in all_bits])
    ax.minorticks_off()
    ax.set(xlabel="bits", ylabel=metric, title=title or f"{metric} vs bits (best λ)")


def plot_lambda_sensitivity(ax: Axes, records: Sequence[RunRecord], bits: int) -> None:
    """mAP against λ at ``bits`` per method × quantizer (mean over repeated runs)."""
    curves = lambda_curves(records, bits)
    title = f"λ sensitivity, {bits} bits"
    if not curves:
        _empty(ax, title, "no runs vary λ")
        return
    styles = _styles(list(curves))
    for variant in sorted(curves, key=_variant_order):
        lambdas, values = zip(*curves[variant], strict=True)
        ax.plot(lambdas, values, marker="o", label=variant_label(*variant), **styles[variant])
    positive = [lam for points in curves.values() for lam, _ in points if lam > 0]
    if positive:
        ax.set_xscale("symlog", linthresh=min(positive))
    ax.set(xlabel="λ (quantization_weight)", ylabel="mAP", title=title)


def _best_run_per_variant(records: Sequence[RunRecord], bits: int) -> dict[Variant, RunRecord]:
    best: dict[Variant, RunRecord] = {}
    for record in records:
        if record.bits == bits and record.final_curves:
            current = best.get(record.variant)
            if current is None or (record.metric("mAP") or 0.0) > (current.metric("mAP") or 0.0):
                best[record.variant] = record
    return best


def plot_best_pr_curves(ax: Axes, records: Sequence[RunRecord], bits: int) -> None:
    """The PR curve of each variant's best run at ``bits``."""
    best = _best_run_per_variant(records, bits)
    if not best:
        _empty(ax, f"PR, {bits} bits", "no curves")
        return
    styles = _styles(list(best))
    for variant in sorted(best, key=_variant_order):
        plot_pr_curve(ax, best[variant].final_curves, label=variant_label(*variant), **styles[variant])
    ax.set_title(f"PR (Hamming ball), best run, {bits} bits")


def plot_best_hamming_histograms(ax: Axes, records: Sequence[RunRecord], bits: int) -> None:
    """Relevant vs irrelevant Hamming distances of each variant's best run at ``bits``."""
    best = _best_run_per_variant(records, bits)
    if not best:
        _empty(ax, f"Hamming distances, {bits} bits", "no curves")
        return
    styles = _styles(list(best))
    for variant in sorted(best, key=_variant_order):
        color = styles[variant]["color"]
        plot_hamming_histograms(ax, best[variant].final_curves, label=variant_label(*variant), color=color)
    ax.set_title(f"Hamming distances, {bits} bits (— relevant, -- irrelevant)")


def comparison_figure(records: Sequence[RunRecord], bits: int | None = None) -> Figure:
    """The main figure: mAP vs bits, λ sensitivity, PR curves; bit entropy and quantization error vs
    bits, Hamming-distance histograms. ``bits``: the code length of the per-length panels (default:
    the most common)."""
    bits = bits or most_common(record.bits for record in records) or 0
    figure = Figure(figsize=(16, 9.5), layout="constrained")
    axes = figure.subplots(2, 3)
    plot_metric_vs_bits(axes[0, 0], records)
    plot_lambda_sensitivity(axes[0, 1], records, bits)
    plot_best_pr_curves(axes[0, 2], records, bits)
    plot_metric_vs_bits(axes[1, 0], records, "bit_entropy", "bit entropy vs bits (higher: balanced bits)")
    plot_metric_vs_bits(
        axes[1, 1], records, "quantization_error", "quantization error vs bits (radians to sign(h))"
    )
    plot_best_hamming_histograms(axes[1, 2], records, bits)
    for ax in axes.flat:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    datasets = ", ".join(sorted({record.dataset for record in records}))
    figure.suptitle(f"{datasets}: {len(records)} runs", fontsize="large")
    return figure
