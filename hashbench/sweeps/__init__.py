"""Sweeps: a W&B sweep file's runs on this machine, one by one, with no W&B server.

* :mod:`~hashbench.sweeps.spec` — the sweep file (W&B's format): method, parameters, seeds, metric, command.
* :mod:`~hashbench.sweeps.check` — every parameter value through the CLI's config resolution.
* :mod:`~hashbench.sweeps.sampling` — the configurations: the grid, or Optuna's samplers (random, bayes).
* :mod:`~hashbench.sweeps.runner` — each run in a subprocess, failures and Ctrl-C, resuming.
* :mod:`~hashbench.sweeps.summary` — ``summary.csv`` (a row per run) and ``aggregate.csv`` (a row per
  configuration over seeds, the one chosen on the validation metric marked).
* :mod:`~hashbench.sweeps.command` — ``hashbench sweep``: the typed entry point.

Nothing here imports :mod:`hashbench.cli`: the CLI passes its config resolver in.
"""
