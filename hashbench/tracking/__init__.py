"""Experiment tracking: run descriptions, W&B plots and the comparison of runs.

* :mod:`~hashbench.tracking.describe` — a run's resolved config as the CLI's dotted keys and what it is
  (method, quantizer, bits, dataset); W&B project, group and tags derived from it.
* :mod:`~hashbench.tracking.plots` — matplotlib plots of a run's curves (PR, bit balance, Hamming histograms).
* :mod:`~hashbench.tracking.callbacks` — :class:`~hashbench.tracking.callbacks.WandbPlots`.
* :mod:`~hashbench.tracking.aggregate` — means and 95% t intervals over seeds, paired differences, and
  the choice of a configuration on a validation metric only.
* :mod:`~hashbench.tracking.compare` — load runs from run folders or W&B; tables and figures across runs.
* :mod:`~hashbench.tracking.diagnostics` — :class:`~hashbench.tracking.diagnostics.TrainingDiagnostics`:
  the HSWD paper's per-epoch distances and epoch times.
* :mod:`~hashbench.tracking.codes_figure` — database codes of runs in 2-D, coloured by class.
* :mod:`~hashbench.tracking.study` — the quantizer study's report (``python -m hashbench.tracking.study``).
"""
