"""Use a trained model: encode a database once, answer queries by Hamming ranking (FAISS binary indexes).

``Retriever`` (images or codes in, ids and Hamming distances out), the ``index`` / ``search`` / ``serve``
commands (:mod:`hashbench.retrieval.commands`), the result grid picture and its test-end callback. Names
are imported on first use, so ``import hashbench.retrieval`` loads neither torch nor FAISS.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CodeIndex": "hashbench.retrieval.codes",
    "Encoder": "hashbench.retrieval.encoder",
    "Retriever": "hashbench.retrieval.retriever",
    "SearchResult": "hashbench.retrieval.retriever",
    "RetrievalGrid": "hashbench.retrieval.callback",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hashbench.retrieval' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
