"""Packed binary codes in a FAISS binary index, searched by Hamming distance.

Codes are ``sign(h)`` with sign(0) = +1, bit-packed as ``uint8`` ``(N, ceil(bits/8))``, most significant
bit first (``numpy.packbits``, :func:`hashbench.metrics.pack_codes`). A length that is not a multiple of 8
is padded with zero bits, in the database and the queries alike, so the padding adds nothing to a distance.
FAISS is imported inside the functions that use it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hashbench.errors import UserError

DEFAULT_INDEX = "BFlat"
"""Exact search: a linear popcount scan (FAISS ``IndexBinaryFlat``)."""


def n_bytes(bits: int) -> int:
    return (bits + 7) // 8


def check_packed(codes: np.ndarray, bits: int, what: str = "codes") -> np.ndarray:
    """``codes`` as C-contiguous uint8 ``(N, ceil(bits/8))`` with zero padding bits, or a UserError."""
    codes = np.ascontiguousarray(codes)
    if codes.dtype != np.uint8 or codes.ndim != 2 or codes.shape[1] != n_bytes(bits):
        raise UserError(
            f"{what} must be packed uint8 of shape (N, {n_bytes(bits)}) for {bits} bits, got "
            f"{codes.dtype} {codes.shape}"
        )
    pad = n_bytes(bits) * 8 - bits
    if pad and len(codes) and np.any(codes[:, -1] & ((1 << pad) - 1)):
        raise UserError(f"{what}: the {pad} padding bits of the last byte must be zero (MSB-first packing)")
    return codes


def pack_signs(values: np.ndarray) -> np.ndarray:
    """Real ``(N, bits)`` codes → packed uint8 ``(N, ceil(bits/8))``: entries >= 0 are bit 1, zero padding."""
    return np.packbits(np.asarray(values) >= 0, axis=1)


class CodeIndex:
    """Packed codes with ids and optional multi-hot labels, in a FAISS binary index.

    Exact search (``BFlat``) ranks by ascending Hamming distance, ties by insertion order (the project's
    rule). FAISS's flat scan keeps, at equal distance, the item met first (its heaps break ties by id)
    and its results are sorted here by (distance, position), so the top k equals a stable sort of all
    distances (tested against brute force). Approximate indexes (``BHNSW32``, ``BIVF1024``, ``BHash4x16``,
    any ``faiss.index_binary_factory`` string) return their candidates in the same order; an IVF index
    is trained on the first codes added.

    Args:
        bits: code length m.
        factory: FAISS binary index factory string.
    """

    def __init__(self, bits: int, factory: str = DEFAULT_INDEX) -> None:
        if bits < 1:
            raise UserError(f"bits must be >= 1, got {bits}")
        self.bits = int(bits)
        self.factory = factory
        self.index = self._new_index(factory, bits)
        self.codes = np.zeros((0, n_bytes(bits)), dtype=np.uint8)
        self.ids: list[str] = []
        self.labels: np.ndarray | None = None

    @staticmethod
    def _new_index(factory: str, bits: int) -> Any:
        import faiss

        try:
            return faiss.index_binary_factory(n_bytes(bits) * 8, factory)
        except RuntimeError:
            raise UserError(
                f"{factory!r} is not a FAISS binary index: use BFlat (exact), BHNSW<M> (e.g. BHNSW32), "
                "BIVF<nlist> (e.g. BIVF1024) or BHash<tables>x<bits> (multi-index hashing, e.g. BHash4x16)"
            ) from None

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, codes: np.ndarray, ids: list[str], labels: np.ndarray | None = None) -> None:
        """Append packed codes ``(n, ceil(bits/8))`` with their ``ids`` and labels ``(n, C)`` 0/1."""
        codes = check_packed(codes, self.bits)
        if len(ids) != len(codes):
            raise UserError(f"{len(codes)} codes but {len(ids)} ids")
        if labels is not None:
            labels = (np.asarray(labels) != 0).astype(np.uint8)
            if labels.ndim != 2 or len(labels) != len(codes):
                raise UserError(f"labels must be (N={len(codes)}, classes) 0/1, got shape {labels.shape}")
        if len(self) and (labels is None) != (self.labels is None):
            raise UserError("give labels for every item added to an index, or for none")
        if self.labels is not None and labels is not None and labels.shape[1] != self.labels.shape[1]:
            raise UserError(f"labels have {labels.shape[1]} classes, the index {self.labels.shape[1]}")
        if not self.index.is_trained:
            self._train(codes)
        self.index.add(codes)
        self.codes = np.concatenate([self.codes, codes])
        self.ids.extend(map(str, ids))
        if labels is not None:
            self.labels = labels if self.labels is None else np.concatenate([self.labels, labels])

    def _train(self, codes: np.ndarray) -> None:
        needed = getattr(self.index, "nlist", 1)
        if len(codes) < needed:
            raise UserError(
                f"{self.factory} needs at least {needed} codes to train its {needed} lists, got "
                f"{len(codes)}: use fewer lists (BIVF{max(1, len(codes) // 39)}) or BFlat"
            )
        self.index.train(codes)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions ``(Q, k)`` int64 (insertion order) and Hamming distances ``(Q, k)`` int32 of the top k.

        Rows are sorted by (distance, position). An approximate index that finds fewer than k items
        pads its row with position -1 and distance ``bits + 1``.
        """
        queries = check_packed(queries, self.bits, "query codes")
        if not 1 <= k <= len(self):
            raise UserError(f"k must be between 1 and the index size {len(self)}, got {k}")
        distances, positions = self.index.search(queries, k)
        found = positions >= 0
        distances = np.where(found, distances, self.bits + 1).astype(np.int32)
        positions = np.where(found, positions, len(self)).astype(np.int64)
        order = np.lexsort((positions, distances), axis=1)  # last key first: distance, then position
        distances = np.take_along_axis(distances, order, 1)
        positions = np.take_along_axis(positions, order, 1)
        return np.where(positions < len(self), positions, -1), distances

    # ---------------------------------------------------------------------------------- files
    def save(self, folder: Path, metadata: dict[str, Any]) -> None:
        """Write ``codes.npy``, ``ids.json``, ``labels.npy`` (if any), ``faiss.index`` and ``index.json``."""
        import faiss

        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "codes.npy", self.codes)
        (folder / "ids.json").write_text(json.dumps(self.ids) + "\n")
        labels = folder / "labels.npy"
        if self.labels is not None:
            np.save(labels, self.labels)
        elif labels.exists():
            labels.unlink()
        faiss.write_index_binary(self.index, str(folder / "faiss.index"))
        meta = {"bits": self.bits, "index": self.factory, "count": len(self), **metadata}
        (folder / "index.json").write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> tuple[CodeIndex, dict[str, Any]]:
        """The index saved in ``folder`` and its ``index.json`` metadata."""
        import faiss

        meta_file = folder / "index.json"
        if not meta_file.is_file():
            raise UserError(f"{folder} holds no index (index.json); build one with `hashbench index RUN_DIR`")
        meta = json.loads(meta_file.read_text())
        self = cls.__new__(cls)
        self.bits, self.factory = int(meta["bits"]), meta["index"]
        self.codes = np.load(folder / "codes.npy")
        self.ids = json.loads((folder / "ids.json").read_text())
        labels = folder / "labels.npy"
        self.labels = np.load(labels) if labels.is_file() else None
        self.index = faiss.read_index_binary(str(folder / "faiss.index"))
        if self.index.ntotal != len(self.codes) or len(self.ids) != len(self.codes):
            raise UserError(f"the index in {folder} is inconsistent (its files differ in length): rebuild it")
        return self, meta
