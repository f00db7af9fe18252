"""Weights & Biases logging that works with or without an account."""

from __future__ import annotations

import netrc
import os
from typing import Any, Literal
from urllib.parse import urlparse

from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.utilities import rank_zero_info


def wandb_credentials_found() -> bool:
    """Whether W&B has an API key: ``WANDB_API_KEY`` or a netrc entry for the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host or "") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


class AutoOfflineWandbLogger(LightningWandbLogger):
    """Lightning's W&B logger, offline by itself when no credentials are found.

    Offline runs are written under ``save_dir/wandb/`` and can be uploaded later with
    ``wandb sync``, checkpoint artifacts included. ``WANDB_MODE`` set in the environment is respected as
    it is. Through the CLI, ``project``, ``group``, ``tags`` and ``name`` left unset are derived from the
    run (:mod:`hashbench.tracking.describe`), ``save_dir`` is the run folder, and the resolved config is
    logged under the CLI's dotted keys.

    Args:
        project: W&B project (default: ``WANDB_PROJECT``, else ``hashbench``; the CLI:
            ``hashbench-<dataset>``).
        name: run name shown in W&B (default: W&B's; the CLI: the run folder).
        group: run group (the CLI: ``<dataset>-<method>-<quantizer>-<bits>b``).
        tags: run tags (the CLI: dataset, method, quantizer, ``<bits>bits``).
        entity: W&B user or team.
        save_dir: where W&B writes its files (hashbench sets it to the run folder).
        offline: ``None`` = offline exactly when no credentials are found.
        log_model: upload checkpoints as artifacts (``True`` at the end, ``"all"`` as they are saved).
    """

    def __init__(
        self,
        project: str | None = None,
        name: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        entity: str | None = None,
        save_dir: str = ".",
        offline: bool | None = None,
        log_model: bool | Literal["all"] = False,
    ) -> None:
        if offline is None:
            offline = "WANDB_MODE" not in os.environ and not wandb_credentials_found()
            if offline:
                rank_zero_info(
                    f"W&B: no credentials found, logging offline to {save_dir}/wandb/; "
                    f"upload later with `wandb sync {save_dir}/wandb/offline-run-*`."
                )
        # offline through wandb.init(mode=...): Lightning's own offline flag refuses log_model, but W&B
        # keeps an offline run's artifacts and `wandb sync` uploads them
        offline_mode: dict[str, Any] = {"mode": "offline"} if offline else {}
        super().__init__(
            project=project or os.environ.get("WANDB_PROJECT") or "hashbench",
            name=name,
            group=group,
            tags=tags,
            entity=entity,
            save_dir=save_dir,
            log_model=log_model,
            **offline_mode,
        )
