"""What a run is: its resolved config under the CLI's dotted keys, and method / quantizer / bits / dataset."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PAPER_SUFFIX = {"SWD": "S", "HSWD": "C"}
"""Plug-in quantizers named as in the HSWD paper: DSDH with SWD is "DSDH-S", with HSWD "DSDH-C"."""


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as ``{dotted key: value}`` with the CLI's keys (``--model.quantization_weight``).

    A class given as ``{class_path, init_args}`` puts its class path under its own key, as
    ``--model.quantizer=hashbench.quantizers.HSWD`` sets it, and its arguments under
    ``<key>.init_args.<name>``. Lists are values.
    """
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and "class_path" in value:
            flat[name] = value["class_path"]
            flat.update(flatten_config(value.get("init_args") or {}, f"{name}.init_args."))
        elif isinstance(value, Mapping):
            flat.update(flatten_config(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _class_name(spec: Any) -> str | None:
    """``{class_path: a.b.C, …}`` or ``"a.b.C"`` → ``"C"``."""
    path = spec.get("class_path") if isinstance(spec, Mapping) else spec
    return str(path).rsplit(".", 1)[-1] if path else None


def describe_run(config: Mapping[str, Any]) -> dict[str, Any]:
    """Method (loss class; a fitted baseline's head class, e.g. ``ITQHead``), quantizer (``original``,
    ``none`` or the plug-in's class), bits, dataset (data class), backbone and λ of a resolved config (the
    dict of a run's ``config.yaml``)."""
    model = config.get("model") or {}
    head = model.get("head") or {}
    quantizer = model.get("quantizer")
    return {
        "method": _class_name(head)
        if str(head.get("class_path")).startswith("hashbench.baselines.")
        else _class_name(model.get("loss")),
        "quantizer": "none"
        if quantizer is None
        else "original"
        if quantizer == "original"
        else _class_name(quantizer),
        "bits": (head.get("init_args") or head).get("bits"),
        "dataset": _class_name(config.get("data")),
        "backbone": _class_name(model.get("backbone")),
        "quantization_weight": model.get("quantization_weight"),
    }


def variant_label(method: str | None, quantizer: str | None) -> str:
    """``DPSH`` (its original term), ``DPSH-S`` (SWD), ``DPSH-C`` (HSWD), ``DPSH+OT``, ``DPSH (no term)``."""
    if quantizer == "original":
        return f"{method}"
    if quantizer == "none":
        return f"{method} (no term)"
    suffix = PAPER_SUFFIX.get(str(quantizer))
    return f"{method}-{suffix}" if suffix else f"{method}+{quantizer}"


def wandb_project(description: Mapping[str, Any]) -> str:
    """``hashbench-<dataset>``: one W&B project per dataset."""
    return f"hashbench-{str(description['dataset']).lower()}"


def wandb_group(description: Mapping[str, Any]) -> str:
    """``<dataset>-<method>-<quantizer>-<bits>b``: the runs that differ only in λ, seed or schedule."""
    return (
        "-".join(str(description[k]) for k in ("dataset", "method", "quantizer")) + f"-{description['bits']}b"
    )


def wandb_tags(description: Mapping[str, Any]) -> list[str]:
    """The dataset, the method, the quantizer and ``<bits>bits``."""
    return [str(description[k]) for k in ("dataset", "method", "quantizer")] + [f"{description['bits']}bits"]
