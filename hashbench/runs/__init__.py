"""The run folder: one folder per run, whatever the logger, written and read by one owner.

* :mod:`~hashbench.runs.folder` — :class:`~hashbench.runs.folder.RunFolder`: the file names, and typed
  reading and writing of a run's config, description, status, metrics and curves (no heavy imports).
* :mod:`~hashbench.runs.dirs` — where a run's folder is created (fresh per run, shared by a DDP job).
* :mod:`~hashbench.runs.writer` — :class:`~hashbench.runs.writer.RunWriter`, the Lightning callback that
  fills the folder during a run.
"""

from hashbench.runs.dirs import create_run_dir, fresh_dir, safe_name
from hashbench.runs.folder import RunFolder, RunStatus

__all__ = ["RunFolder", "RunStatus", "create_run_dir", "fresh_dir", "safe_name"]
