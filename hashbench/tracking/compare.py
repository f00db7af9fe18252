"""Compare runs: load them from local run folders or a W&B project, then tables and figures across runs.

A run is grouped by its description (method, quantizer, bits, dataset, λ) — ``run.json`` in a run
folder, the ``run.*`` config keys in W&B. Where several runs share method, quantizer and bits, the λ is
chosen on the VALIDATION mAP (mean over the runs at that λ, i.e. over seeds) and the tables and figures
report the TEST metrics of the runs at that λ (the validation metrics when a run has no test metrics),
as a mean with its 95% t interval over seeds. Nothing is ever chosen on a test metric.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hashbench.runs.folder import RunFolder
from hashbench.tracking.aggregate import Estimate, estimate, paired_difference, select
from hashbench.tracking.describe import variant_label
from hashbench.tracking.plots import plot_hamming_histograms, plot_pr_curve

QUANTIZER_ORDER = ("original", "none", "SWD", "HSWD")
"""Row and colour order of the quantizers; others follow alphabetically."""

Variant = tuple[str, str]  # (method, quantizer)
Spread = Literal["ci", "std"]
Setting = tuple[str, str, int]  # (method, quantizer, bits)


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
        """The reported stage: ``test`` when the run has test metrics, else ``val``."""
        return "test" if any(key.startswith("test/mAP@") for key in self.metrics) else "val"

    def value(self, key: str) -> float | None:
        """The final metric ``key`` (``val/mAP@all``) as a finite float, else None."""
        value = self.metrics.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return None
        return float(value)

    def key(self, name: str, stage: str | None = None) -> str:
        """The logged key of ``name`` at ``stage`` (default :attr:`stage`); ``mAP`` is the logged mAP@K."""
        stage = stage or self.stage
        if name == "mAP":
            name = next(
                (k.split("/", 1)[1] for k in self.metrics if k.startswith(("val/mAP@", "test/mAP@"))), name
            )
        return f"{stage}/{name}"

    def metric(self, name: str, stage: str | None = None) -> float | None:
        """A final metric of ``stage`` (default: the reported :attr:`stage`): ``mAP`` or a logged name."""
        return self.value(self.key(name, stage))

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
    def seed(self) -> int | None:
        """``seed_everything`` of the run's config (the pairing key of :func:`paired_table`)."""
        seed = self.config.get("seed_everything")
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else None

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


def _selection_key(records: Sequence[RunRecord]) -> str:
    """``val/mAP@K``: the validation mAP the runs logged."""
    return next((r.key("mAP", "val") for r in records if r.key("mAP", "val") != "val/mAP"), "val/mAP@all")


def best_lambda_runs(records: Sequence[RunRecord]) -> dict[Setting, list[RunRecord]]:
    """Per (method, quantizer, bits): the runs at the λ whose mean VALIDATION mAP is best.

    Only ``val/`` metrics are read; settings whose runs have no validation mAP are left out.
    """
    settings: dict[Setting, dict[float, list[RunRecord]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        settings[(*record.variant, record.bits)][record.quantization_weight].append(record)
    metric = _selection_key(records)
    best: dict[Setting, list[RunRecord]] = {}
    for setting, by_lambda in settings.items():
        readers = {lam: [run.value for run in runs] for lam, runs in by_lambda.items()}
        chosen = select(readers, metric)
        if chosen is not None:
            best[setting] = by_lambda[chosen]
    return best


def lambda_curves(records: Sequence[RunRecord], bits: int) -> dict[Variant, list[tuple[float, Estimate]]]:
    """Per variant with at least two λ at ``bits``: ``[(λ, reported mAP over seeds), …]`` sorted by λ."""
    settings: dict[Variant, dict[float, list[float | None]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record.bits == bits:
            settings[record.variant][record.quantization_weight].append(record.metric("mAP"))
    curves = {}
    for variant, by_lambda in settings.items():
        points = [(lam, found) for lam, values in by_lambda.items() if (found := estimate(values))]
        if len(points) >= 2:
            curves[variant] = sorted(points, key=lambda point: point[0])
    return curves


def _variant_order(variant: Variant) -> tuple[str, int, str]:
    method, quantizer = variant
    rank = QUANTIZER_ORDER.index(quantizer) if quantizer in QUANTIZER_ORDER else len(QUANTIZER_ORDER)
    return method, rank, quantizer


def _variants(records: Iterable[RunRecord]) -> list[Variant]:
    return sorted({record.variant for record in records}, key=_variant_order)


def _reported(runs: Sequence[RunRecord], metric: str) -> Estimate | None:
    return estimate([run.metric(metric) for run in runs])


def paper_table(records: Sequence[RunRecord], metric: str = "mAP", spread: Spread = "ci") -> str:
    """A Markdown table as in the papers: a row per method and quantizer, a column per code length.

    Each cell: the reported (test) ``metric`` at the λ chosen on validation mAP, as mean ± the half-width
    of its 95% t interval over seeds (``spread="std"``: ± the seeds' sample standard deviation and the
    number of seeds, the header says so), each plug-in with its relative change over the method's original
    term at the same bits.
    """
    best = best_lambda_runs(records)
    bits = sorted({key[2] for key in best})
    label = metric if spread == "ci" else f"{metric} (mean ± std over seeds)"
    lines = [
        f"| {label} | " + " | ".join(f"{b} bits" for b in bits) + " |",
        "|---|" + "---:|" * len(bits),
    ]
    for method, quantizer in _variants(records):
        cells = []
        for b in bits:
            value = _reported(best.get((method, quantizer, b), []), metric)
            original = _reported(best.get((method, "original", b), []), metric)
            cell = "–" if value is None else f"{value.mean:.4f}"
            width = None if value is None else value.half_width if spread == "ci" else value.std
            if width is not None:
                cell += f" ± {width:.4f}"
            if value is not None and spread == "std":
                cell += f" (n={value.n})"
            if value is not None and original and original.mean and quantizer != "original":
                cell += f" ({100 * (value.mean - original.mean) / original.mean:+.1f}%)"
            cells.append(cell)
        lines.append(f"| {variant_label(method, quantizer)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_table(records: Sequence[RunRecord], metric: str = "mAP") -> str:
    """A Markdown table of each quantizer against its method's original term on the same seeds.

    Both sides at their own λ chosen on validation mAP; a row per method, quantizer and bits: the number
    of paired seeds, the mean difference of the reported (test) ``metric`` and its 95% t interval (an
    interval that excludes 0: the difference is not seed noise).
    """
    best = best_lambda_runs(records)
    lines = [
        f"| {metric}: quantizer − original | bits | seeds | mean difference | 95% interval |",
        "|---|---:|---:|---:|---|",
    ]
    for (method, quantizer, bits), runs in sorted(
        best.items(), key=lambda i: (_variant_order(i[0][:2]), i[0][2])
    ):
        baseline = best.get((method, "original", bits))
        if quantizer == "original" or baseline is None:
            continue
        found = paired_difference(
            {r.seed: r.metric(metric) for r in runs if r.seed is not None},
            {r.seed: r.metric(metric) for r in baseline if r.seed is not None},
        )
        if found is None:
            continue
        interval = "–" if found.low is None else f"[{found.low:+.4f}, {found.high:+.4f}]"
        lines.append(
            f"| {variant_label(method, quantizer)} | {bits} | {found.n} | {found.mean:+.4f} | {interval} |"
        )
    return "\n".join(lines)


def runs_table(records: Sequence[RunRecord]) -> str:
    """A Markdown table of the runs: variant, bits, λ, seed, validation and reported mAP, where it is."""
    lines = [
        "| run | bits | λ | seed | val mAP | mAP | stage | folder |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for record in sorted(records, key=lambda r: (_variant_order(r.variant), r.bits, r.quantization_weight)):
        val, value = record.metric("mAP", "val"), record.metric("mAP")
        lines.append(
            f"| {variant_label(*record.variant)} | {record.bits} | {record.quantization_weight:g} "
            f"| {'' if record.seed is None else record.seed} | {'–' if val is None else f'{val:.4f}'} "
            f"| {'–' if value is None else f'{value:.4f}'} | {record.stage} | {record.name} |"
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


def _error(found: Estimate) -> float:
    return found.half_width or 0.0


def plot_metric_vs_bits(
    ax: Axes, records: Sequence[RunRecord], metric: str = "mAP", title: str | None = None
) -> None:
    """``metric`` against code length per method × quantizer at the λ chosen on validation mAP: the
    mean over seeds with its 95% interval as error bars."""
    best = best_lambda_runs(records)
    variants = _variants(records)
    styles = _styles(variants)
    for variant in variants:
        points = sorted(
            (bits, found)
            for (method, quantizer, bits), runs in best.items()
            if (method, quantizer) == variant and (found := _reported(runs, metric)) is not None
        )
        if points:
            xs = [bits for bits, _ in points]
            ys = [found.mean for _, found in points]
            errors = [_error(found) for _, found in points]
            ax.errorbar(
                xs, ys, yerr=errors, marker="o", capsize=3, label=variant_label(*variant), **styles[variant]
            )
    all_bits = sorted({key[2] for key in best})
    ax.set_xscale("log", base=2)
    ax.set_xticks(all_bits, [str(b) for b in all_bits])
    ax.minorticks_off()
    ax.set(xlabel="bits", ylabel=metric, title=title or f"{metric} vs bits (λ chosen on val)")


def plot_lambda_sensitivity(ax: Axes, records: Sequence[RunRecord], bits: int) -> None:
    """Reported mAP against λ at ``bits`` per method × quantizer: mean over seeds, 95% error bars."""
    curves = lambda_curves(records, bits)
    title = f"λ sensitivity, {bits} bits"
    if not curves:
        _empty(ax, title, "no runs vary λ")
        return
    styles = _styles(list(curves))
    for variant in sorted(curves, key=_variant_order):
        lambdas = [lam for lam, _ in curves[variant]]
        means = [found.mean for _, found in curves[variant]]
        errors = [_error(found) for _, found in curves[variant]]
        ax.errorbar(
            lambdas,
            means,
            yerr=errors,
            marker="o",
            capsize=3,
            label=variant_label(*variant),
            **styles[variant],
        )
    positive = [lam for points in curves.values() for lam, _ in points if lam > 0]
    if positive:
        ax.set_xscale("symlog", linthresh=min(positive))
    ax.set(xlabel="λ (quantization_weight)", ylabel="mAP", title=title)


def _best_run_per_variant(records: Sequence[RunRecord], bits: int) -> dict[Variant, RunRecord]:
    """Per variant at ``bits``: among the runs at the λ chosen on validation, the one with the best
    validation mAP (its curves are shown)."""
    best: dict[Variant, RunRecord] = {}
    for (method, quantizer, b), runs in best_lambda_runs(records).items():
        with_curves = {index: run for index, run in enumerate(runs) if run.final_curves}
        if b != bits or not with_curves:
            continue
        chosen = select({i: [run.value] for i, run in with_curves.items()}, _selection_key(runs))
        if chosen is not None:
            best[(method, quantizer)] = with_curves[chosen]
    return best


def plot_best_pr_curves(ax: Axes, records: Sequence[RunRecord], bits: int) -> None:
    """The PR curve of each variant's best run at ``bits`` (chosen on validation)."""
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


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m hashbench.tracking.compare RUNS_ROOT``: the paper-style table and the paired table of
    every run folder under RUNS_ROOT (λ chosen on validation, test reported, over seeds)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m hashbench.tracking.compare", description=main.__doc__)
    parser.add_argument("root", type=Path, help="a folder of run folders (e.g. runs/methods)")
    parser.add_argument("--metric", default="mAP", help="reported metric (default: mAP at the dataset's K)")
    parser.add_argument(
        "--spread",
        choices=("ci", "std"),
        default="ci",
        help="± in the paper-style table: half the 95%% t interval (ci, default) or the seeds' std",
    )
    args = parser.parse_args(argv)
    records = load_local_runs(args.root)
    print(paper_table(records, args.metric, args.spread), end="\n\n")
    print(paired_table(records, args.metric))


if __name__ == "__main__":
    main()
